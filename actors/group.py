"""`ActorGroup`: a resizable set of identical Ray actors that the driver treats as one object.

The driver never indexes workers: it calls `map_shards` (split a batch over the live workers,
concatenate results in order) or `broadcast`. That is what lets the driver add, remove and
replace workers between steps (`resize`, `reconcile`) without changing.

Fault handling: when an actor dies while holding a shard, the group replaces it (a new actor from
the same factory, brought up to date by `on_new_worker`, e.g. a weight sync) and re-dispatches the
shard, so each item is processed exactly once per call. When no replacement can start (its node is
gone, the cluster has no room), the replacement stays *pending* (it joins at a later `reconcile`
once Ray can place it) and the shard goes to a surviving worker instead. `ledger` records what
happened; `take_stats()` hands the driver the counts since its last call (per-step accounting).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayActorError

log = logging.getLogger(__name__)


def shared_cpu_cores(infos: Sequence[dict]) -> list[tuple[int, int, list[int]]]:
    """(worker index, worker index, cores) for every two CPU-engine workers on one node whose
    cores overlap, from their `ready()` infos (`cpu_engine`, `node_id`, `cores`, `worker_index`)."""
    cpu = [x for x in infos if x.get("cpu_engine") and x.get("cores")]
    out = []
    for i, a in enumerate(cpu):
        for b in cpu[i + 1:]:
            shared = sorted(set(a["cores"]) & set(b["cores"]))
            if shared and a.get("node_id") == b.get("node_id"):
                out.append((a["worker_index"], b["worker_index"], shared))
    return out

ACTOR_FAILURES = (RayActorError, ActorDiedError, ActorUnavailableError)


class GroupUnrecoverable(RuntimeError):
    """A group has no live worker and could not start one within its limits (replacement budget,
    start timeout, resources). Not a bug in the caller: the same run can succeed once the cluster
    recovers, so the run supervisor rebuilds the run and resumes it from its latest checkpoint."""


class GroupStartTimeout(GroupUnrecoverable, TimeoutError):
    """The group's first workers did not start within `start_timeout_s`."""


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
    items: int = 0                  # items whose result came back (each exactly once per call)
    redispatched_items: int = 0
    failures: int = 0               # shard calls lost to a dead actor
    replaced_workers: int = 0
    events: list[dict] = field(default_factory=list)

    def event(self, kind: str, **info) -> None:
        self.events.append({"kind": kind, "time": time.time(), **info})


@dataclass
class _Worker:
    handle: Any
    index: int                      # factory index (unique over the group's life)
    info: dict                      # what its `ready()` returned (node_id, pid, ...)


@dataclass
class _Pending:
    handle: Any
    index: int
    ready_ref: Any
    since: float


class ActorGroup:
    def __init__(
        self,
        name: str,
        factory: Callable[[int], Any],
        size: int,
        on_new_worker: Callable[[Any], None] | None = None,
        max_replacements: int = 8,
        start_timeout_s: float | None = 600.0,
        replace_timeout_s: float = 120.0,
        demand: dict[str, float] | None = None,
        spec: Any = None,
    ):
        """`factory(worker_index)` returns a new actor handle. Workers are created in parallel and
        waited for with their `ready()` method (at most `start_timeout_s`, then a `TimeoutError`
        naming the group). `replace_timeout_s`: how long a replacement or added worker may take to
        start before the group goes on without it (it stays pending). `demand`: one worker's Ray
        resources (e.g. {"CPU": 1, "rollout": 1}); when the cluster has less available, the group
        does not wait for a new worker at all. `spec`: what the workers are built from (e.g. a
        reward section), for the driver to read; the group never does."""
        if size < 1:
            raise ValueError(f"group {name}: size must be >= 1, got {size}")
        self.name = name
        self.factory = factory
        self.on_new_worker = on_new_worker
        self.max_replacements = max_replacements
        self.replace_timeout_s = replace_timeout_s
        self.demand = dict(demand or {})
        self.spec = spec
        self.ledger = GroupLedger()
        # Called right after a call's shards are dispatched: hook(group, method, [(handle, n_items)]).
        # Observers and fault injection (chaos) use it; it never sees re-dispatches.
        self.hooks: list[Callable[[ActorGroup, str, list[tuple[Any, int]]], None]] = []
        # Called right before each first-time shard submission: hook(group, method, handle, shard, n_shards).
        self.before_send: list[Callable[[ActorGroup, str, Any, int, int], None]] = []
        self.target = size
        self._next_index = 0
        self._workers: list[_Worker] = []
        self.pending: list[_Pending] = []
        self._stats = self._empty_stats()
        self._warned_cores = False      # the shared-cores warning is logged once per group
        new = self._spawn(size, timeout=start_timeout_s, park=False)
        self._workers.extend(new)

    # ---- membership -----------------------------------------------------------------------
    @property
    def workers(self) -> list[Any]:
        return [w.handle for w in self._workers]

    @property
    def size(self) -> int:
        return len(self._workers)

    def placement(self) -> list[dict]:
        """`ready()` info of every live worker (node_id, pid, worker_index, ...)."""
        return [dict(w.info) for w in self._workers]

    def _create(self, n: int) -> list[_Pending]:
        out = []
        for _ in range(n):
            h = self.factory(self._next_index)
            out.append(_Pending(h, self._next_index, h.ready.remote(), time.time()))
            self._next_index += 1
        return out

    def _spawn(self, n: int, timeout: float | None, park: bool = True) -> list[_Worker]:
        """Start `n` workers and wait up to `timeout` for them. Those not ready in time are kept
        pending (`park`) or killed with a `TimeoutError`."""
        created = self._create(n)
        ready, late = self._wait_ready(created, timeout)
        if late and not park:
            for p in late:
                ray.kill(p.handle, no_restart=True)
            for w in ready:
                ray.kill(w.handle, no_restart=True)
            raise GroupStartTimeout(f"group {self.name}: {len(late)} of {n} workers did not start within {timeout:.0f}s "
                               f"(per worker {self.demand or 'see factory'}; available: {ray.available_resources()})")
        if not park and len(ready) < n:
            for w in ready:
                ray.kill(w.handle, no_restart=True)
            raise GroupUnrecoverable(f"group {self.name}: {n - len(ready)} of {n} workers died while starting")
        self.pending.extend(late)
        self._warn_shared_cores([w.info for w in self._workers + ready])
        return ready

    def _warn_shared_cores(self, infos: list[dict]) -> None:
        """Once per group: CPU engines of this group that share cores spin against each other (two
        on two shared cores: a third of one engine's tokens/s, `bench rollout --workers 2`)."""
        pairs = [] if self._warned_cores else shared_cpu_cores(infos)
        if pairs:
            self._warned_cores = True
            a, b, cores = pairs[0]
            log.warning("group %s: the CPU engines of workers %d and %d share cores %s (%d such pairs); their "
                        "threads contend. Give resources.cpu_threads_bind a core list per worker, e.g. '0-7|8-15' "
                        "(README: Running on a cluster)", self.name, a, b, cores, len(pairs))

    def _wait_ready(self, pend: list[_Pending], timeout: float | None) -> tuple[list[_Worker], list[_Pending]]:
        if not pend:
            return [], []
        refs = [p.ready_ref for p in pend]
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        done_set = set(done)
        ready, late = [], []
        for p in pend:
            if p.ready_ref not in done_set:
                late.append(p)
                continue
            try:
                info = ray.get(p.ready_ref)
            except ACTOR_FAILURES as e:   # died while starting (e.g. its node went away)
                log.warning("group %s: worker %d died while starting (%s)", self.name, p.index, type(e).__name__)
                self.ledger.event("start_failed", index=p.index, reason=type(e).__name__)
                continue
            ready.append(_Worker(p.handle, p.index, info if isinstance(info, dict) else {"ready": info}))
        return ready, late

    def can_start_now(self) -> bool:
        """Whether the cluster has the resources of one more worker available right now."""
        if not self.demand:
            return True
        avail = ray.available_resources()
        return all(avail.get(k, 0.0) + 1e-9 >= v for k, v in self.demand.items() if v)

    def _start_timeout(self) -> float:
        return self.replace_timeout_s if self.can_start_now() else 0.0

    def _welcome(self, new: list[_Worker]) -> list[_Worker]:
        """Bring new workers up to date (`on_new_worker`, e.g. the weight sync); one that dies while
        it is brought up to date counts as died while starting (logged, dropped). Returns the rest."""
        if self.on_new_worker is None:
            return new
        kept = []
        for w in new:
            try:
                self.on_new_worker(w.handle)
            except ACTOR_FAILURES as e:
                log.warning("group %s: worker %d died while joining (%s)", self.name, w.index, type(e).__name__)
                self.ledger.event("start_failed", index=w.index, reason=f"welcome: {type(e).__name__}")
                _kill_quietly(w.handle)
                continue
            kept.append(w)
        return kept

    def add(self, n: int, sync: bool = True, timeout: float | None = None) -> list[Any]:
        """Start `n` more workers; with `sync`, bring each up to date with `on_new_worker`. Workers
        that cannot start within `timeout` (default: `replace_timeout_s`, or no wait when the
        cluster lacks the resources) stay pending and join at a later `reconcile`."""
        if n <= 0:
            return []
        self.target = self.size + len(self.pending) + n
        new = self._spawn(n, timeout=self._start_timeout() if timeout is None else timeout)
        if sync:
            new = self._welcome(new)
        self._workers.extend(new)
        self.ledger.event("add", n=n, started=len(new), pending=len(self.pending), size=self.size)
        return [w.handle for w in new]

    def remove(self, n: int) -> None:
        """Stop `n` workers (pending ones first, then the newest; never below one live worker)."""
        while n > 0 and self.pending:
            p = self.pending.pop()
            ray.kill(p.handle, no_restart=True)
            n -= 1
        n = min(n, self.size - 1)
        for _ in range(n):
            ray.kill(self._workers.pop().handle, no_restart=True)
        self.target = self.size + len(self.pending)
        if n:
            self.ledger.event("remove", n=n, size=self.size)

    def resize(self, size: int) -> None:
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"group {self.name}: size must be an integer >= 1, got {size!r}")
        have = self.size + len(self.pending)
        if size > have:
            self.add(size - have)
        elif size < have:
            self.remove(have - size)
        self.target = size

    def kill_all(self) -> None:
        for h in [w.handle for w in self._workers] + [p.handle for p in self.pending]:
            _kill_quietly(h)
        self._workers, self.pending = [], []

    def reconcile(self, ping_timeout_s: float = 30.0) -> dict:
        """Between steps: drop workers that died while idle, let pending workers that Ray has
        started since join (after `on_new_worker`), and start new ones to get back to `target`.
        Returns what changed."""
        out = {"dead": 0, "joined": 0, "started": 0}
        if self._workers:
            refs = [w.handle.ready.remote() for w in self._workers]
            alive = []
            for w, ref in zip(self._workers, refs):
                try:
                    ray.get(ref, timeout=ping_timeout_s)
                    alive.append(w)
                except (*ACTOR_FAILURES, GetTimeoutError) as e:
                    out["dead"] += 1
                    self.ledger.failures += 1
                    self.ledger.event("dead", index=w.index, node_id=w.info.get("node_id"), reason=type(e).__name__)
                    log.warning("group %s: worker %d (node %s) is gone (%s)", self.name, w.index,
                                str(w.info.get("node_id"))[:8], type(e).__name__)
                    _kill_quietly(w.handle)
            self._workers = alive
        if self.pending:
            joined, late = self._wait_ready(self.pending, 0)
            self.pending = late
            room = max(0, self.target - self.size)
            for w in joined[room:]:       # the group was shrunk meanwhile
                ray.kill(w.handle, no_restart=True)
            joined = self._welcome(joined[:room])
            self._workers.extend(joined)
            out["joined"] = len(joined)
        missing = self.target - self.size - len(self.pending)
        if missing > 0:
            new = self._welcome(self._spawn(missing, timeout=self._start_timeout()))
            self._workers.extend(new)
            out["started"] = len(new)
        if not self._workers and self.pending:   # nothing live: wait for a pending one
            joined, self.pending = self._wait_ready(self.pending, self.replace_timeout_s)
            joined = self._welcome(joined)
            self._workers.extend(joined)
            out["joined"] += len(joined)
        if not self._workers:
            # every start (or its welcome) failed: keep starting within the replacement budget and
            # the timeout, as for a group whose last worker died mid-call (raises when it gives up)
            self._replace_last(_Worker(None, -1, {}), "reconcile: no live worker")
            out["started"] += 1
        if any(out.values()):
            self.ledger.event("reconcile", size=self.size, pending=len(self.pending), **out)
        return out

    def _recover(self, dead: _Worker, reason: str, busy: dict[int, int]) -> _Worker:
        """A worker died mid-call: drop it, start a replacement (bounded), and return the worker
        that takes over its shard. With survivors, the shard goes to the least busy one at once
        and the replacement starts in the background (pending: it joins at the next `reconcile`,
        brought up to date then), so a death never stalls the call on an engine start. With no
        survivor, replacements are started until one is ready (`_replace_last`)."""
        self.ledger.failures += 1
        self._workers = [w for w in self._workers if w is not dead]
        log.warning("group %s: worker %d (node %s) died mid-call (%s)", self.name, dead.index,
                    str(dead.info.get("node_id"))[:8], reason)
        if not self._workers:
            return self._replace_last(dead, reason)
        if self.ledger.replaced_workers < self.max_replacements:
            self.ledger.replaced_workers += 1
            self.pending.extend(self._create(1))
            self.ledger.event("replace_pending", index=dead.index, reason=reason)
        return min(self._workers, key=lambda w: busy.get(w.index, 0))

    def _replace_last(self, dead: _Worker, reason: str) -> _Worker:
        """The group's last worker died: start a replacement and take the first of it and the
        workers already starting that is ready and brought up to date (the rest stay pending), within
        the replacement budget (`max_replacements`) and `replace_timeout_s` (for each start: one that
        dies gives the next the whole timeout again). A replacement that dies while starting, or
        fails its welcome (the weight sync of a new worker), is counted and replaced again with back-off: on a cluster, kills and preemptions also hit workers that are
        still starting. The error, when the group gives up, says which limit it met and what the
        starts did."""
        deadline = time.monotonic() + self.replace_timeout_s
        died_starting, backoff, lost = 0, 0.5, 1       # `lost` 1: the worker that just died
        while True:
            if lost and self.ledger.replaced_workers < self.max_replacements:
                self.ledger.replaced_workers += 1
                self.pending.extend(self._create(1))
            if not self.pending:
                raise GroupUnrecoverable(
                    f"group {self.name}: every worker died and the replacement budget is spent "
                    f"({self.max_replacements} replacements, elastic.max_replacements; {died_starting} of the "
                    f"last ones died while starting)")
            done, _ = ray.wait([p.ready_ref for p in self.pending], num_returns=1,
                               timeout=max(0.0, deadline - time.monotonic()))
            done = set(done)
            finished = [p for p in self.pending if p.ready_ref in done]
            self.pending = [p for p in self.pending if p.ready_ref not in done]
            joined, _ = self._wait_ready(finished, 0)
            lost = len(finished) - len(joined)
            for w in joined:
                if not self._welcome([w]):      # died while joining: counted, replaced again
                    lost += 1
                    continue
                self._workers.append(w)
            died_starting += lost
            if self._workers:
                new = self._workers[0]
                self.ledger.event("replace", index=dead.index, new_index=new.index, reason=reason,
                                  died_starting=died_starting)
                return new
            if time.monotonic() >= deadline:
                if self.demand and not self.can_start_now():
                    why = f"not placeable: per worker {self.demand}, available {ray.available_resources()}"
                else:
                    why = f"{len(self.pending)} still starting"
                raise GroupUnrecoverable(
                    f"group {self.name}: every worker died and no replacement was ready within "
                    f"{self.replace_timeout_s:.0f}s (replace_timeout_s; {died_starting} died while starting, "
                    f"{why})")
            if lost:
                time.sleep(backoff)
                backoff = min(backoff * 2, 8.0)
                # each new start gets the whole timeout: starts that die are bounded by the budget
                deadline = time.monotonic() + self.replace_timeout_s

    # ---- calls ----------------------------------------------------------------------------
    def map_shards(self, method: str, items: Sequence[Any], *args, offset_kwarg: str | None = None,
                   **kwargs) -> list[Any]:
        """Split `items` into contiguous shards, call `worker.method(shard, *args, **kwargs)` on each
        live worker, and return the concatenated results in item order. A worker that dies
        mid-call is replaced and its shard re-dispatched (to the replacement, or a survivor).
        `offset_kwarg`: pass each shard's start index under this keyword (e.g. `seed_offset`, so a
        per-item seed does not depend on how the batch was split)."""
        items = list(items)
        self.ledger.calls += 1
        st = self._stats
        st["calls"] += 1
        if not items:
            return []
        if not self._workers:
            self.reconcile()
        sizes = shard_sizes(len(items), min(self.size, len(items)))
        shards, start = [], 0
        for s in sizes:
            shards.append((start, start + s))
            start += s
        results: list[Any] = [None] * len(shards)
        busy: dict[int, int] = {}
        pending: dict[Any, tuple[int, _Worker]] = {}

        def submit(i: int, w: _Worker) -> None:
            a, b = shards[i]
            kw = {**kwargs, offset_kwarg: a} if offset_kwarg else kwargs
            pending[getattr(w.handle, method).remote(items[a:b], *args, **kw)] = (i, w)
            busy[w.index] = busy.get(w.index, 0) + 1

        for i, w in enumerate(list(self._workers[:len(shards)])):
            for hook in list(self.before_send):
                hook(self, method, w.handle, i, len(shards))
            submit(i, w)
        for hook in list(self.hooks):
            hook(self, method, [(w.handle, shards[i][1] - shards[i][0]) for i, w in pending.values()])
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            i, w = pending.pop(ref)
            busy[w.index] -= 1
            try:
                out = ray.get(ref)
            except ACTOR_FAILURES as e:
                n = shards[i][1] - shards[i][0]
                st["failures"] += 1
                st["redispatched"] += n
                self.ledger.redispatched_items += n
                submit(i, self._recover(w, type(e).__name__, busy))
                continue
            if results[i] is not None:
                raise RuntimeError(f"group {self.name}: shard {i} of {method} returned twice")
            if len(out) != shards[i][1] - shards[i][0]:
                raise RuntimeError(f"group {self.name}: {method} returned {len(out)} results for "
                                   f"{shards[i][1] - shards[i][0]} items")
            results[i] = out
            st["workers_used"].add(w.index)
        self.ledger.items += len(items)
        st["items"] += len(items)
        st["completed"] += sum(len(r) for r in results)
        return [r for part in results for r in part]

    def broadcast(self, method: str, *args, **kwargs) -> list[Any]:
        """Call `method` on every worker; dead workers are replaced (and not called again)."""
        targets = list(self._workers)
        refs = [getattr(w.handle, method).remote(*args, **kwargs) for w in targets]
        out = []
        for w, ref in zip(targets, refs):
            try:
                out.append(ray.get(ref))
            except ACTOR_FAILURES as e:
                self._recover(w, type(e).__name__, {})
                out.append(None)
        return out

    def with_live_workers(self, fn: Callable[[list[Any]], Any], attempts: int = 3) -> Any:
        """`fn(handles)` over the current workers (e.g. a weight push to all of them). If it fails
        because a worker died, drop the dead ones (`reconcile` starts replacements, which
        `on_new_worker` brings up to date) and run `fn` again on the members then; a failure with
        every worker alive is not the group's and is raised."""
        for attempt in range(attempts):
            try:
                return fn(self.workers)
            except ACTOR_FAILURES:
                if attempt == attempts - 1 or not self.reconcile()["dead"]:
                    raise
        raise AssertionError("unreachable")

    # ---- accounting -----------------------------------------------------------------------
    @staticmethod
    def _empty_stats() -> dict:
        return {"calls": 0, "items": 0, "completed": 0, "redispatched": 0, "failures": 0,
                "workers_used": set()}

    def take_stats(self) -> dict:
        """Counts since the previous `take_stats` (the driver calls it once per step)."""
        st, self._stats = self._stats, self._empty_stats()
        return {**{k: v for k, v in st.items() if k != "workers_used"}, "workers_used": len(st["workers_used"]),
                "size": self.size, "pending": len(self.pending), "replaced_total": self.ledger.replaced_workers}


def _kill_quietly(handle: Any) -> None:
    """`ray.kill` of an actor that may already be gone."""
    try:
        ray.kill(handle, no_restart=True)
    except Exception:  # already dead
        pass


def kill_and_wait(handle: Any, timeout_s: float = 60.0) -> None:
    """`ray.kill` returns before the actor is gone; return once calls to it fail."""
    ray.kill(handle, no_restart=True)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            ray.get(handle.ready.remote(), timeout=5)
        except ACTOR_FAILURES:
            return
        except GetTimeoutError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"actor {handle} still answers {timeout_s:.0f}s after ray.kill")
