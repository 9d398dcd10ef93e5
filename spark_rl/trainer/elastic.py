"""Distributed operations between GRPO steps: elastic group sizes, reward hot swap, health checks,
fault injection, and the control surface a running job listens to.

Control surface: `spark-rl ctl ... --run RUN_DIR` writes one JSON command file into
`RUN_DIR/control/` (written to a temporary name, then renamed: the driver never sees half a
file). The driver polls that folder between steps, applies the commands in the order they were
queued, and moves each to `control/applied/` or `control/rejected/` with the outcome. A schedule
in the config (`elastic.schedule`) does the same at fixed steps. Every change is logged with the
step it takes effect at: in `RUN_DIR/events.jsonl`, in that step's row of `metrics.jsonl`
(`elastic/changes`) and in the log. The driver's state (step, group sizes, reward kind) is in
`control/status.json`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import socket
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray

from spark_rl.config import ConfigError
from spark_rl.trainer.config import ELASTIC_GROUPS, ChaosSection, RewardSection, derive_reward_section

if TYPE_CHECKING:
    from actors.group import ActorGroup
    from spark_rl.trainer.grpo import GRPOTrainer

log = logging.getLogger(__name__)


# ---- commands (shared by `spark-rl ctl` and the driver) -----------------------------------------
def parse_sizes(pairs: list[str]) -> dict[str, int]:
    """`["rollout=4", "reward=2"]` -> {"rollout": 4, "reward": 2}; bad input is a `ConfigError`."""
    if not pairs:
        raise ConfigError(f"scale: give GROUP=N, GROUP one of {', '.join(ELASTIC_GROUPS)}")
    sizes: dict[str, int] = {}
    for p in pairs:
        name, sep, value = p.partition("=")
        if not sep:
            raise ConfigError(f"scale: {p!r} is not GROUP=N")
        sizes[name.strip()] = value.strip()   # type: ignore[assignment]
    return validate_sizes(sizes)


def validate_sizes(sizes: dict[str, Any]) -> dict[str, int]:
    out = {}
    for name, value in sizes.items():
        if name == "learner":
            raise ConfigError("scale: the learner cannot be resized mid-run (its ranks form one DeepSpeed world); "
                              "restart with learner.num_ranks=N and --resume RUN_DIR")
        if name not in ELASTIC_GROUPS:
            raise ConfigError(f"scale: unknown group {name!r}; groups: {', '.join(ELASTIC_GROUPS)}")
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"scale: {name}={value!r}: size must be an integer >= 1") from None
        if str(value).strip() not in (str(n), f"{n}.0") or n < 1:
            raise ConfigError(f"scale: {name}={value!r}: size must be an integer >= 1")
        out[name] = n
    return out


def validate_command(cmd: dict, base_reward: RewardSection | None = None) -> dict:
    """A command as `ctl` writes it: {"op": "scale", "sizes": {...}} or
    {"op": "swap_reward", "kind": K, "overrides": [...]}. Returns it normalized."""
    op = cmd.get("op")
    if op == "scale":
        return {"op": "scale", "sizes": validate_sizes(dict(cmd.get("sizes") or {}))}
    if op == "swap_reward":
        kind, overrides = cmd.get("kind"), list(cmd.get("overrides") or [])
        if not isinstance(kind, str) or not kind:
            raise ConfigError("swap-reward: give a reward KIND")
        derive_reward_section(base_reward or RewardSection(), kind, overrides)
        return {"op": "swap_reward", "kind": kind, "overrides": overrides}
    raise ConfigError(f"unknown control command {op!r} (scale, swap_reward)")


class ControlQueue:
    """`RUN_DIR/control/`: command files (`<ns>-<id>.json`), `applied/`, `rejected/`, `status.json`."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir) / "control"

    @staticmethod
    def _write_atomic(path: Path, data: dict) -> None:
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:6]}.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)

    def submit(self, cmd: dict) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
        self._write_atomic(path, {**cmd, "submitted": time.time(), "by": f"{socket.gethostname()}:{os.getpid()}"})
        return path

    def pending(self) -> list[tuple[Path, dict | None]]:
        """Queued commands, oldest first; an unreadable file comes back as (path, None)."""
        if not self.dir.is_dir():
            return []
        out = []
        for p in sorted(self.dir.glob("*.json")):
            if p.name == "status.json":
                continue
            try:
                out.append((p, json.loads(p.read_text())))
            except (OSError, ValueError):
                out.append((p, None))
        return out

    def finish(self, path: Path, cmd: dict | None, ok: bool, **outcome) -> Path:
        dest_dir = self.dir / ("applied" if ok else "rejected")
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / path.name
        self._write_atomic(dest, {**(cmd or {"raw": _read_raw(path)}), **outcome})
        path.unlink(missing_ok=True)
        return dest

    def outcome(self, name: str) -> dict | None:
        for sub in ("applied", "rejected"):
            p = self.dir / sub / name
            if p.exists():
                return {"status": sub, **json.loads(p.read_text())}
        return None

    def write_status(self, status: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write_atomic(self.dir / "status.json", status)

    def status(self) -> dict | None:
        p = self.dir / "status.json"
        return json.loads(p.read_text()) if p.exists() else None


def _read_raw(path: Path) -> str:
    try:
        return path.read_text()[:2000]
    except OSError:
        return ""


# ---- fault injection ---------------------------------------------------------------------------
class ChaosMonkey:
    """Fault injection into the groups' calls (seeded: the same calls see the same decisions; only
    while a training step runs):

    - random kills (`kill_prob` per call, up to `max_kills`): right after a call's shards are
      dispatched, one worker holding a shard is killed. Whether it dies mid-computation (its shard
      fails and is re-dispatched) or just after answering (the next health check finds it dead)
      is a race, as in real life.
    - targeted kills (`kill_at`: step, group): deterministic. The group's call has started (every
      other shard is out) when the worker about to get the last shard is killed; its shard then
      fails and is re-dispatched. Steps in `kill_at` get no random kills."""

    def __init__(self, cfg: ChaosSection, step_of, on_kill=None):
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.step_of = step_of              # () -> the running step, or None between steps
        self.kills: list[dict] = []
        self.on_kill = on_kill
        self._targets = {(k.step, k.group) for k in cfg.kill_at}
        self._target_steps = {k.step for k in cfg.kill_at}
        self._random_kills = 0

    def attach(self, group: ActorGroup) -> None:
        if self.hook not in group.hooks:
            group.hooks.append(self.hook)
            group.before_send.append(self.before_send)

    def before_send(self, group: ActorGroup, method: str, handle, shard: int, n_shards: int) -> None:
        step = self.step_of()
        if step is None or shard != n_shards - 1 or (step, group.name) not in self._targets:
            return
        from actors.group import kill_and_wait

        self._targets.discard((step, group.name))
        kill_and_wait(handle)
        self._record(group, method, shard, step, "kill_at")

    def hook(self, group: ActorGroup, method: str, dispatched: list[tuple[Any, int]]) -> None:
        step = self.step_of()
        if step is None or not dispatched or step in self._target_steps or group.name not in self.cfg.groups:
            return
        if self._random_kills >= self.cfg.max_kills or self.rng.random() >= self.cfg.kill_prob:
            return
        self._random_kills += 1
        # one draw whatever the group's size, so which (step, group) calls lose a worker does not
        # depend on how many workers happened to be up
        handle, n = dispatched[min(int(self.rng.random() * len(dispatched)), len(dispatched) - 1)]
        ray.kill(handle, no_restart=True)
        self._record(group, method, n, step, "random")

    def _record(self, group, method, n_or_shard, step, why) -> None:
        kill = {"group": group.name, "method": method, "why": why, "kill_step": step}
        kill["shard" if why == "kill_at" else "shard_items"] = n_or_shard
        self.kills.append(kill)
        if self.on_kill is not None:
            self.on_kill(kill)


# ---- the controller the driver calls between steps ---------------------------------------------
class ElasticController:
    def __init__(self, trainer: GRPOTrainer):
        self.tr = trainer
        self.cfg = trainer.cfg.elastic
        self.queue = ControlQueue(trainer.run_dir)
        self.events_path = Path(trainer.run_dir) / "events.jsonl"
        self.in_step = False
        self.chaos = ChaosMonkey(self.cfg.chaos, step_of=lambda: self.upcoming_step if self.in_step else None,
                                 on_kill=lambda k: self.event("chaos_kill", **k)) if self.cfg.chaos.active else None
        self._schedule_done_upto = 0          # schedule entries up to this step have been applied
        self._changes: list[str] = []
        self._kills_seen = 0
        self._ledger_seen: dict[int, int] = {}
        self._health: dict[str, dict] = {}      # this step's health check per group
        self._health_log: list[str] = []
        for name in ELASTIC_GROUPS:
            self.configure(name)

    # ---- plumbing -------------------------------------------------------------------------
    def group(self, name: str) -> ActorGroup | None:
        return getattr(self.tr, name)

    def configure(self, name: str) -> None:
        """Elastic settings, resource demand and fault-injection hooks of one of the trainer's groups."""
        from actors.placement import bundle

        grp = self.group(name)
        if grp is None:
            return
        grp.replace_timeout_s = self.cfg.replace_timeout_s
        grp.max_replacements = self.cfg.max_replacements
        if not (name == "reference" and self.tr.cfg.reference.colocate_with_learner):
            grp.demand = bundle(getattr(self.tr.cfg, name).resources)
        if self.chaos is not None:
            self.chaos.attach(grp)

    @property
    def upcoming_step(self) -> int:
        return self.tr.step + 1

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
        for entry in self.tr.cfg.elastic.schedule:
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
                norm = validate_command(cmd, self.tr.cfg.reward)
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
                raise ConfigError(f"scale: this run has no {name} group (reference workers exist only with "
                                  "grpo.loss.kl_coef > 0)")
            if name == "reference" and self.tr.cfg.reference.colocate_with_learner:
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
                info["new_worker_parity"] = [self.tr.parity(h) for h in new]
                info["new_worker_weights_version"] = ray.get([h.weights_version.remote() for h in new])
                info["learner_weights_version"] = self.tr.weights_version
            getattr(self.tr.cfg, name).num_workers = n     # a rebuilt trainer (learner restart) keeps it
            self._change(f"scale {name} {before}->{n}" + (f" ({len(grp.pending)} pending)" if grp.pending else ""),
                         "scale", **info)
            result[name] = info
        return result

    def swap_reward(self, kind: str, overrides: list[str] | None = None, source: str = "api") -> dict:
        """Build the new reward group first (a failure leaves the old one serving), then switch."""
        old_section = self.tr.cfg.reward
        self._flush_ledger_events()
        section = derive_reward_section(old_section, kind, overrides)
        if section == old_section:      # e.g. a schedule entry re-applied after a restart
            return {"from": old_section.variant, "to": section.variant, "unchanged": True}
        new = self.tr._make_reward_group(section)
        old, self.tr.reward = self.tr.reward, new
        self.tr.cfg.reward = section
        self.configure("reward")
        old.kill_all()
        info = {"from": old_section.variant, "to": section.variant, "overrides": list(overrides or []),
                "workers": new.size, "source": source}
        self._change(f"reward {old_section.variant}->{section.variant}", "swap_reward", **info)
        return info

    # ---- after a step ---------------------------------------------------------------------
    def step_metrics(self) -> dict:
        """Per-step accounting (the step that just ran): per group what was dispatched, completed,
        re-dispatched after a death; whether every prompt group was generated and scored exactly
        once; what the elastic layer changed."""
        self.in_step = False
        m: dict[str, Any] = {"reward/kind": self.tr.cfg.reward.variant}
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
        problems, samples = getattr(self.tr, "last_batch", (None, None))
        if problems is not None:
            g = self.tr.cfg.grpo.group_size
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
            st = self.tr.stream.state()
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
        self._flush_ledger_events(step=self.tr.step)
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
        self.queue.write_status({"state": state, "step": self.tr.step, "steps": self.tr.cfg.grpo.steps,
                                 "pid": os.getpid(), "host": socket.gethostname(), "time": time.time(),
                                 "reward": self.tr.cfg.reward.variant, "groups": groups,
                                 "learner_ranks": self.tr.cfg.learner.num_ranks})
