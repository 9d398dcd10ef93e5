"""Elastic operations between GRPO steps: group sizes, reward hot swap, health checks, and
applying what `spark-rl ctl` queued (`spark_rl.trainer.control`) or the config schedules
(`elastic.schedule`). Fault injection is `spark_rl.trainer.chaos`.

The controller works on the driver's actor groups and a narrow view of the driver (`Driver`:
its step, weights version and the parity probe), never on the trainer's internals. It changes
no config: group sizes live on the groups (`target`), the current reward section on the reward
group (`spec`). Every change is logged with the step it takes effect at: in
`RUN_DIR/events.jsonl`, in that step's row of `metrics.jsonl` (`elastic/changes`) and in the log;
the driver's state (step, group sizes, reward kind) is in `control/status.json`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import ray

from spark_rl.config import ConfigError
from spark_rl.config.rl import ELASTIC_GROUPS, RewardSection, RLConfig, derive_reward_section
from spark_rl.trainer.chaos import ChaosMonkey
from spark_rl.trainer.control import ControlQueue, validate_command, validate_sizes

if TYPE_CHECKING:
    from actors.group import ActorGroup

log = logging.getLogger(__name__)


class Driver(Protocol):
    """What the controller needs of the driver, and all it sees of it."""

    step: int                   # steps done
    weights_version: int        # the learner's weights the rollout workers hold

    def parity(self, handle) -> float:
        """max |logprob diff| between a rollout worker and the learner on a probe."""


class ElasticController:
    def __init__(self, cfg: RLConfig, groups: dict[str, ActorGroup | None], driver: Driver,
                 make_reward_group: Callable[[RewardSection], ActorGroup], run_dir: str | Path):
        """`groups`: the driver's groups by name (rollout, reward, reference; None where the run
        has none), shared with the driver: a reward swap replaces `groups["reward"]`.
        `make_reward_group(section)`: a new reward group (its `spec` the section)."""
        self.run_cfg = cfg                      # read only
        self.cfg = cfg.elastic
        self.groups = groups
        self.driver = driver
        self.make_reward_group = make_reward_group
        self.queue = ControlQueue(run_dir)
        self.events_path = Path(run_dir) / "events.jsonl"
        self.in_step = False
        self.chaos = ChaosMonkey(self.cfg.chaos, step_of=lambda: self.upcoming_step if self.in_step else None,
                                 on_kill=lambda k: self.event("chaos_kill", **k)) if self.cfg.chaos.active else None
        self._schedule_done_upto = 0          # schedule entries up to this step have been applied
        self._changes: list[str] = []
        self._kills_seen = 0
        self._ledger_seen: dict[int, int] = {}
        self._health: dict[str, dict] = {}      # this step's health check per group
        self._health_log: list[str] = []
        if self.chaos is not None:
            for grp in groups.values():
                if grp is not None:
                    self.chaos.attach(grp)

    # ---- plumbing -------------------------------------------------------------------------
    def group(self, name: str) -> ActorGroup | None:
        return self.groups.get(name)

    @property
    def reward_section(self) -> RewardSection:
        """The reward section the reward group runs (the config's until a swap), with its current
        size: a swap keeps the number of workers a `scale` set."""
        grp = self.groups["reward"]
        return dataclasses.replace(grp.spec, num_workers=grp.target)

    @property
    def upcoming_step(self) -> int:
        return self.driver.step + 1

    def event(self, kind: str, step: int | None = None, **info) -> dict:
        """Append to events.jsonl; `step` defaults to the step that runs next (or is running)."""
        rec = {"time": time.time(), "step": self.upcoming_step if step is None else step, "kind": kind, **info}
        with self.events_path.open("a") as f:
            f.write(json.dumps(rec, default=str) + "\n")
        return rec

    def _change(self, text: str, kind: str, **info) -> None:
        self._changes.append(text)
        self.event(kind, change=text, **info)
        log.info("elastic: step %d: %s", self.upcoming_step, text)

    def live_state(self) -> dict:
        """What this run changed at run time (group sizes, reward section): a rebuilt driver
        (`fit_supervised` after a learner death) takes it over with `adopt`."""
        return {"sizes": {n: g.target for n, g in self.groups.items() if g is not None},
                "reward": self.reward_section}

    def adopt(self, state: dict) -> None:
        if dataclasses.replace(state["reward"], num_workers=self.reward_section.num_workers) != self.reward_section:
            self._flush_ledger_events()
            self._swap_to(state["reward"], [], source="restart")
        colocated = self.run_cfg.reference.colocate_with_learner   # those follow the learner ranks
        sizes = {n: v for n, v in state["sizes"].items()
                 if self.group(n) is not None and not (n == "reference" and colocated)}
        if sizes:
            self.scale(sizes, source="restart")

    # ---- between steps --------------------------------------------------------------------
    def before_step(self) -> None:
        """Health check, then scheduled changes for the coming step, then queued `ctl` commands."""
        for name in ELASTIC_GROUPS:
            grp = self.group(name)
            if grp is not None:
                grp.take_stats()   # what happened since the last step (eval, reconcile) is not this step's
                if self.cfg.health_check:
                    out = self._health[name] = grp.reconcile()
                    if any(out.values()):   # membership changed by itself (deaths, replacements joining)
                        text = f"{name}: {out['dead']} dead, {out['joined']} joined, {out['started']} started, " \
                               f"size {grp.size}"
                        self._health_log.append(text)
                        self.event("health", change=text, group=name, **out, size=grp.size, pending=len(grp.pending))
                        log.info("elastic: step %d: %s", self.upcoming_step, text)
        for entry in self.cfg.schedule:
            if self._schedule_done_upto < entry.step <= self.upcoming_step:
                self.apply_entry(entry)
        self._schedule_done_upto = max(self._schedule_done_upto, self.upcoming_step)
        if self.cfg.control:
            self.poll_control()
        self.in_step = True

    def apply_entry(self, entry) -> None:
        sizes = {k: getattr(entry, a) for k, a in (("rollout", "rollout"), ("reward", "reward_workers"),
                                                   ("reference", "reference")) if getattr(entry, a) is not None}
        if entry.reward is not None:
            self.swap_reward(entry.reward, list(entry.reward_overrides), source=f"schedule@{entry.step}")
        if sizes:
            self.scale(sizes, source=f"schedule@{entry.step}")

    def poll_control(self) -> None:
        for path, cmd in self.queue.pending():
            try:
                if cmd is None:
                    raise ConfigError(f"unreadable command file {path.name}")
                norm = validate_command(cmd, self.reward_section)
                if norm["op"] == "scale":
                    result = self.scale(norm["sizes"], source=f"ctl:{path.name}")
                else:
                    result = self.swap_reward(norm["kind"], norm["overrides"], source=f"ctl:{path.name}")
            except (ConfigError, ValueError, RuntimeError, TimeoutError) as e:
                self.queue.finish(path, cmd, ok=False, step=self.upcoming_step, error=str(e))
                self.event("ctl_rejected", file=path.name, command=cmd, error=str(e))
                log.error("elastic: rejected control command %s: %s", path.name, e)
                continue
            self.queue.finish(path, cmd, ok=True, step=self.upcoming_step, result=result)

    def scale(self, sizes: dict[str, int], source: str = "api") -> dict:
        sizes = validate_sizes(sizes)
        result = {}
        for name, n in sizes.items():
            grp = self.group(name)
            if grp is None:
                if name == "reference" and self.run_cfg.reference.in_learner:
                    raise ConfigError("scale: the reference runs inside the learner ranks (reference.in_learner=true); "
                                      "it follows learner.num_ranks")
                raise ConfigError(f"scale: this run has no {name} group (reference workers exist only with "
                                  "grpo.loss.kl_coef > 0)")
            if name == "reference" and self.run_cfg.reference.colocate_with_learner:
                raise ConfigError("scale: reference workers are colocated with the learner ranks "
                                  "(reference.colocate_with_learner=true); they follow learner.num_ranks")
            before_handles = list(grp.workers)
            before = grp.size
            if n == grp.target and n == before + len(grp.pending):
                result[name] = {"group": name, "size": before, "unchanged": True}
                continue
            grp.resize(n)
            new = [h for h in grp.workers if not any(h is b for b in before_handles)]
            info: dict[str, Any] = {"group": name, "from": before, "to": n, "size": grp.size,
                                    "pending": len(grp.pending), "source": source}
            if name == "rollout" and new:
                # new rollout workers were synced by `on_new_worker`; prove it on each of them
                info["new_worker_parity"] = [self.driver.parity(h) for h in new]
                info["new_worker_weights_version"] = ray.get([h.weights_version.remote() for h in new])
                info["learner_weights_version"] = self.driver.weights_version
            self._change(f"scale {name} {before}->{n}" + (f" ({len(grp.pending)} pending)" if grp.pending else ""),
                         "scale", **info)
            result[name] = info
        return result

    def swap_reward(self, kind: str, overrides: list[str] | None = None, source: str = "api") -> dict:
        """Build the new reward group first (a failure leaves the old one serving), then switch."""
        self._flush_ledger_events()
        return self._swap_to(derive_reward_section(self.reward_section, kind, overrides), overrides, source)

    def _swap_to(self, section: RewardSection, overrides: list[str] | None, source: str) -> dict:
        old_section = self.reward_section
        if section == old_section:      # e.g. a schedule entry re-applied after a restart
            return {"from": old_section.variant, "to": section.variant, "unchanged": True}
        new = self.make_reward_group(section)
        old, self.groups["reward"] = self.groups["reward"], new
        if self.chaos is not None:
            self.chaos.attach(new)
        old.kill_all()
        info = {"from": old_section.variant, "to": section.variant, "overrides": list(overrides or []),
                "workers": new.size, "source": source}
        self._change(f"reward {old_section.variant}->{section.variant}", "swap_reward", **info)
        return info

    # ---- after a step ---------------------------------------------------------------------
    def step_metrics(self, problems: list | None = None, samples: list | None = None,
                     stream_state: dict | None = None) -> dict:
        """Per-step accounting of the step that just ran (its `problems`, `samples` and the prompt
        stream's state after it): per group what was dispatched, completed, re-dispatched after a
        death; whether every prompt group was generated and scored exactly once; what the elastic
        layer changed."""
        self.in_step = False
        m: dict[str, Any] = {"reward/kind": self.reward_section.variant}
        stats = {}
        for name in ELASTIC_GROUPS:
            grp = self.group(name)
            if grp is None:
                continue
            st = stats[name] = grp.take_stats()
            for k in ("items", "completed", "redispatched", "failures", "workers_used", "size", "pending",
                      "replaced_total"):
                m[f"ledger/{name}/{k}"] = st[k]
            m[f"ledger/{name}/dead_found"] = self._health.pop(name, {}).get("dead", 0)   # died while idle
        if problems is not None:
            g = self.run_cfg.grpo.group_size
            per_group: dict[int, int] = {}
            for s in samples:
                per_group[s.group] = per_group.get(s.group, 0) + 1
            complete = sum(1 for gi in range(len(problems)) if per_group.get(gi) == g)
            ro, rw = stats["rollout"], stats["reward"]
            m["consumed/prompt_groups"] = complete
            m["consumed/samples_scored"] = rw["completed"]
            m["consumed/exactly_once"] = float(
                complete == len(problems) == ro["completed"] == ro["items"]
                and rw["completed"] == rw["items"] == len(samples) == g * len(problems))
            st = stream_state
            m["consumed/prompts_total"] = st["epoch"] * st["size"] + st["pos"]
            m["consumed/prompt_digest"] = hashlib.sha1("\n".join(p.id for p in problems).encode()).hexdigest()[:12]
        if self.chaos is not None:
            m["chaos/kills"] = len(self.chaos.kills) - self._kills_seen
            self._kills_seen = len(self.chaos.kills)
        if self._changes:       # what was asked for (ctl, schedule)
            m["elastic/changes"] = list(self._changes)
            self._changes = []
        if self._health_log:    # what happened by itself (deaths found, replacements joined)
            m["elastic/health"] = list(self._health_log)
            self._health_log = []
        self._flush_ledger_events(step=self.driver.step)
        return m

    def _flush_ledger_events(self, step: int | None = None) -> None:
        """Group-level events (replacements, deaths, pending workers) into events.jsonl."""
        for name in ELASTIC_GROUPS:
            grp = self.group(name)
            if grp is None:
                continue
            seen = self._ledger_seen.get(id(grp), 0)
            for ev in grp.ledger.events[seen:]:
                self.event(f"group_{ev['kind']}", step=step, group=name,
                           **{k: v for k, v in ev.items() if k not in ("kind", "step")})
            self._ledger_seen[id(grp)] = len(grp.ledger.events)

    def write_status(self, state: str = "running") -> None:
        groups = {n: {"size": g.size, "pending": len(g.pending), "target": g.target}
                  for n in ELASTIC_GROUPS if (g := self.group(n)) is not None}
        self.queue.write_status({"state": state, "step": self.driver.step, "steps": self.run_cfg.grpo.steps,
                                 "pid": os.getpid(), "host": socket.gethostname(), "time": time.time(),
                                 "reward": self.reward_section.variant, "groups": groups,
                                 "learner_ranks": self.run_cfg.learner.num_ranks})
