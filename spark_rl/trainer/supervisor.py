"""The run supervisor: one place that decides what a fatal error of a GRPO run means.

- A dead learner rank ends the DeepSpeed world (its peers cannot go on without it): the run is
  rebuilt - fresh learner group, fresh workers - and resumed from its latest checkpoint, at most
  `elastic.learner_restarts` times.
- A fault of the cluster, not of the run (a group with no live worker that could not start one
  within its limits, an actor gone where no group catches it, a PRM endpoint that failed every
  request of a step): the same rebuild and resume, after a back-off that doubles
  (`elastic.restart_backoff_s`), at most `elastic.run_restarts` times.
- Anything else (a bad config, bad data, a bug) fails at once with its own message: running it
  again would fail the same way.

Rollout, reward and reference deaths that their `ActorGroup` can heal never get here: the group
replaces the worker and re-dispatches its work inside the step. Each restart and each give-up is
an event in RUN/events.jsonl with its cause.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.exceptions import GetTimeoutError, RayTaskError

from actors.group import ACTOR_FAILURES, GroupUnrecoverable
from spark_rl.config.rl import ElasticSection
from spark_rl.engines.prm_reward import PRMEndpointDown
from spark_rl.trainer.grpo import checkpoint_path

log = logging.getLogger(__name__)

# Faults of the cluster or of a service the run depends on: a rebuilt run can get past them.
CLUSTER_FAULTS = (GroupUnrecoverable, PRMEndpointDown, GetTimeoutError, *ACTOR_FAILURES)


def _learner_died(trainer, exc: BaseException) -> list[int]:
    """Ranks that are dead (or hung behind a dead peer) after `exc` escaped `fit`; [] when the
    learner is healthy (then the failure is someone else's)."""
    learner = getattr(trainer, "learner", None)
    if learner is None or not learner.workers:
        return []
    return learner.dead_ranks(timeout_s=5.0)


def cluster_fault(exc: BaseException) -> bool:
    """Whether `exc` is a fault a rebuilt run can get past. An error raised inside a worker comes
    wrapped (`RayTaskError`): its cause decides."""
    while isinstance(exc, RayTaskError) and exc.cause is not None and exc.cause is not exc:
        exc = exc.cause
    return isinstance(exc, CLUSTER_FAULTS)


def _record(run_dir: Path, rec: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / "events.jsonl").open("a") as f:
        f.write(json.dumps({"time": time.time(), **rec}, default=str) + "\n")


def _cause(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def fit_supervised(build: Callable[[], Any], elastic: ElasticSection, run_dir: str | Path,
                   progress: bool = True, resume: str | Path | None = None,
                   on_trainer: Callable[[Any, int], None] | None = None,
                   sleep: Callable[[float], None] = time.sleep) -> tuple[list[dict], Any]:
    """`build()` returns a new `GRPOTrainer` writing to `run_dir`; run its `fit`. On a dead learner
    rank or a cluster fault (module docstring) shut it down, build a new one, hand it what the run
    changed at run time (`ElasticController.live_state`) and `resume()` from the run's latest
    checkpoint. A failing `build()` (a group that cannot start) counts as a cluster fault too.
    `resume`: where the first attempt continues from (as `train-rl --resume`).
    `on_trainer(trainer, attempt)` is called before each `fit` (tests, monitoring).
    Returns (history of the last attempt, the last trainer, shut down)."""
    run_dir = Path(run_dir)
    used = {"learner": 0, "run": 0}
    limit = {"learner": elastic.learner_restarts, "run": elastic.run_restarts}
    attempt, source, carry = 0, resume, None      # carry: group sizes, reward (what the run changed)
    while True:
        trainer = None
        try:
            trainer = build()
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
            dead = _learner_died(trainer, e) if trainer is not None else []
            kind = "learner" if dead else "run" if cluster_fault(e) else None
            if kind is None:
                raise                                 # deterministic: running again fails the same way
            step = trainer.step + 1 if trainer is not None else None
            ckpt_path = checkpoint_path(run_dir)
            ckpt = ckpt_path.name if ckpt_path is not None else None
            what = f"learner rank(s) {dead} died" if dead else f"{type(e).__name__}"
            if used[kind] >= limit[kind]:
                log.error("%s during step %s; %d %s restart(s) used up: giving up", what, step, limit[kind], kind)
                _record(run_dir, {"step": step, "kind": f"{kind}_failed", "dead_ranks": dead, "error": _cause(e),
                                  "restarts": used[kind]})
                raise
            used[kind] += 1
            attempt += 1
            wait = elastic.restart_backoff_s * 2 ** (used[kind] - 1) if kind == "run" else 0.0
            log.error("%s during step %s (%s); restarting from %s in %.0fs (%s restart %d/%d)", what, step,
                      _cause(e)[:200], ckpt or "step 0 (no checkpoint yet)", wait, kind, used[kind], limit[kind])
            _record(run_dir, {"step": step, "kind": f"{kind}_restart", "dead_ranks": dead, "error": _cause(e),
                              "resume_from": ckpt, "restart": used[kind], "max_restarts": limit[kind],
                              "backoff_s": wait})
            source = run_dir
            if trainer is not None:
                carry = trainer.elastic.live_state()
        finally:
            if trainer is not None:
                trainer.shutdown()
        if wait:
            sleep(wait)
