"""Fault injection into actor groups' calls (`spark-rl chaos`, tests). It works through the
groups' observer hooks (`ActorGroup.hooks`, `ActorGroup.before_send`); the group's dispatcher
knows nothing of it."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import ray

from actors.group import kill_and_wait
from spark_rl.config.rl import ChaosSection

if TYPE_CHECKING:
    from actors.group import ActorGroup


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
