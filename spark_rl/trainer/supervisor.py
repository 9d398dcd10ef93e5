"""Learner-death supervisor: a dead learner rank ends the DeepSpeed world (its peers cannot go on
without it), so the run is rebuilt - fresh learner group, fresh workers - and resumed from its
latest checkpoint, with bounded retries. Rollout, reward and reference deaths never get here:
their `ActorGroup`s replace the worker and re-dispatch its work inside the step."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spark_rl.trainer.grpo import checkpoint_path

log = logging.getLogger(__name__)


def _learner_died(trainer, exc: BaseException) -> list[int]:
    """Ranks that are dead (or hung behind a dead peer) after `exc` escaped `fit`; [] when the
    learner is healthy (then the failure is someone else's and is raised)."""
    learner = getattr(trainer, "learner", None)
    if learner is None or not learner.workers:
        return []
    return learner.dead_ranks(timeout_s=5.0)


def _record(run_dir: Path, rec: dict) -> None:
    with (run_dir / "events.jsonl").open("a") as f:
        f.write(json.dumps({"time": time.time(), **rec}, default=str) + "\n")


def fit_supervised(build: Callable[[], Any], max_restarts: int, progress: bool = True,
                   resume: str | Path | None = None,
                   on_trainer: Callable[[Any, int], None] | None = None) -> tuple[list[dict], Any]:
    """`build()` returns a new `GRPOTrainer`; run its `fit`, and when a learner rank dies, shut it
    down, build a new one, hand it what the run changed at run time (`ElasticController.live_state`)
    and `resume()` from the run's latest checkpoint (at most `max_restarts` times). `resume`: where the first attempt continues from (as `train-rl --resume`).
    `on_trainer(trainer, attempt)` is called before each `fit` (tests, monitoring).
    Returns (history of the last attempt, the last trainer, shut down)."""
    attempt = 0
    source = resume
    carry = None            # what the run changed at run time (group sizes, reward): the rebuilt trainer keeps it
    while True:
        trainer = build()
        run_dir = Path(trainer.run_dir)
        try:
            if source is not None and not trainer.resume(source):
                if attempt == 0:
                    log.warning("no checkpoint in %s/checkpoints; starting from step 0", source)
                trainer.metrics.truncate_after(-1)   # a restart from scratch redoes every step
            if carry is not None:
                trainer.elastic.adopt(carry)
            if on_trainer is not None:
                on_trainer(trainer, attempt)
            return trainer.fit(progress=progress), trainer
        except Exception as e:
            dead = _learner_died(trainer, e)
            if not dead:
                raise
            ckpt_path = checkpoint_path(run_dir)
            ckpt = ckpt_path.name if ckpt_path is not None else None
            if attempt >= max_restarts:
                log.error("learner rank(s) %s died at step %d (%s); %d restart(s) used up: giving up",
                          dead, trainer.step, type(e).__name__, max_restarts)
                _record(run_dir, {"step": trainer.step + 1, "kind": "learner_failed", "dead_ranks": dead,
                                  "error": f"{type(e).__name__}: {str(e)[:300]}", "restarts": attempt})
                raise
            attempt += 1
            log.error("learner rank(s) %s died during step %d (%s); restarting from %s (restart %d/%d)",
                      dead, trainer.step + 1, type(e).__name__, ckpt or "step 0 (no checkpoint yet)",
                      attempt, max_restarts)
            _record(run_dir, {"step": trainer.step + 1, "kind": "learner_restart", "dead_ranks": dead,
                              "error": f"{type(e).__name__}: {str(e)[:300]}", "resume_from": ckpt,
                              "restart": attempt, "max_restarts": max_restarts})
            source = run_dir
            carry = trainer.elastic.live_state()
        finally:
            trainer.shutdown()
