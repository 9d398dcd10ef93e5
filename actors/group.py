"""`ActorGroup`: a resizable set of identical Ray actors that the driver treats as one object.

The driver never indexes workers: it calls `map_shards` (split a batch over the live workers,
concatenate results in order) or `broadcast`. That is what lets later code add, remove and
replace workers between steps without the driver changing.

Fault handling: when an actor dies while holding a shard, the group replaces it (a new actor from
the same factory, brought up to date by `on_new_worker`, e.g. a weight sync) and re-dispatches the
shard, so each item is processed exactly once per call. `ledger` records what happened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

log = logging.getLogger(__name__)

ACTOR_FAILURES = (RayActorError, ActorDiedError, ActorUnavailableError)


def shard_sizes(n_items: int, n_workers: int) -> list[int]:
    """Balanced contiguous shard sizes (first shards take the remainder)."""
    if n_workers <= 0:
        raise ValueError("no live workers in the group")
    base, extra = divmod(n_items, n_workers)
    return [base + (1 if i < extra else 0) for i in range(n_workers)]


@dataclass
class GroupLedger:
    """What a group did: dispatched shards, re-dispatches after failures, replacements."""

    calls: int = 0
    items: int = 0
    redispatched_items: int = 0
    replaced_workers: int = 0
    events: list[dict] = field(default_factory=list)

    def event(self, kind: str, **info) -> None:
        self.events.append({"kind": kind, "time": time.time(), **info})


class ActorGroup:
    def __init__(
        self,
        name: str,
        factory: Callable[[int], Any],
        size: int,
        on_new_worker: Callable[[Any], None] | None = None,
        max_replacements: int = 8,
    ):
        """`factory(worker_index)` returns a new actor handle. Workers are created in parallel and
        waited for with their `ready()` method."""
        self.name = name
        self.factory = factory
        self.on_new_worker = on_new_worker
        self.max_replacements = max_replacements
        self.ledger = GroupLedger()
        self._next_index = 0
        self.workers: list[Any] = []
        self.add(size, sync=False)

    # ---- membership -----------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.workers)

    def _spawn(self, n: int) -> list[Any]:
        handles = []
        for _ in range(n):
            handles.append(self.factory(self._next_index))
            self._next_index += 1
        ray.get([h.ready.remote() for h in handles])
        return handles

    def add(self, n: int, sync: bool = True) -> list[Any]:
        """Start `n` more workers; with `sync`, bring each up to date with `on_new_worker`."""
        new = self._spawn(n) if n > 0 else []
        if sync and self.on_new_worker is not None:
            for h in new:
                self.on_new_worker(h)
        self.workers.extend(new)
        if new:
            self.ledger.event("add", n=n, size=self.size)
        return new

    def remove(self, n: int) -> None:
        """Stop the last `n` workers (never below one)."""
        n = min(n, self.size - 1)
        for _ in range(n):
            h = self.workers.pop()
            ray.kill(h, no_restart=True)
        if n:
            self.ledger.event("remove", n=n, size=self.size)

    def resize(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"group {self.name}: size must be >= 1, got {size}")
        if size > self.size:
            self.add(size - self.size)
        elif size < self.size:
            self.remove(self.size - size)

    def kill_all(self) -> None:
        for h in self.workers:
            try:
                ray.kill(h, no_restart=True)
            except Exception:  # already dead
                pass
        self.workers = []

    def _replace(self, index: int, reason: str) -> Any:
        if self.ledger.replaced_workers >= self.max_replacements:
            raise RuntimeError(f"group {self.name}: more than {self.max_replacements} workers died; giving up")
        self.ledger.replaced_workers += 1
        new = self._spawn(1)[0]
        if self.on_new_worker is not None:
            self.on_new_worker(new)
        self.workers[index] = new
        self.ledger.event("replace", slot=index, reason=reason)
        log.warning("group %s: worker in slot %d died (%s); replaced", self.name, index, reason)
        return new

    # ---- calls ----------------------------------------------------------------------------
    def map_shards(self, method: str, items: Sequence[Any], *args, **kwargs) -> list[Any]:
        """Split `items` into contiguous shards, call `worker.method(shard, *args, **kwargs)` on each
        live worker, and return the concatenated results in item order. A worker that dies
        mid-call is replaced and its shard re-dispatched (to the replacement)."""
        items = list(items)
        self.ledger.calls += 1
        if not items:
            return []
        sizes = shard_sizes(len(items), min(self.size, len(items)))
        shards, start = [], 0
        for s in sizes:
            shards.append(items[start:start + s])
            start += s
        results: list[Any] = [None] * len(shards)
        pending = {getattr(self.workers[i], method).remote(shards[i], *args, **kwargs): i for i in range(len(shards))}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            i = pending.pop(ref)
            try:
                results[i] = ray.get(ref)
            except ACTOR_FAILURES as e:
                h = self._replace(i, type(e).__name__)
                self.ledger.redispatched_items += len(shards[i])
                pending[getattr(h, method).remote(shards[i], *args, **kwargs)] = i
        self.ledger.items += len(items)
        return [r for part in results for r in part]

    def broadcast(self, method: str, *args, **kwargs) -> list[Any]:
        """Call `method` on every worker; dead workers are replaced (and not called again)."""
        refs = [getattr(h, method).remote(*args, **kwargs) for h in self.workers]
        out = []
        for i, ref in enumerate(refs):
            try:
                out.append(ray.get(ref))
            except ACTOR_FAILURES as e:
                self._replace(i, type(e).__name__)
                out.append(None)
        return out
