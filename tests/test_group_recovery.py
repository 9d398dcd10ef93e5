"""ActorGroup recovery when replacements die while starting (real Ray actors, no engines): the
group keeps starting replacements within its budget and says which limit it met when it gives up."""

import os

import pytest
import ray

from actors.group import ActorGroup


@ray.remote(num_cpus=0)
class Flaky:
    """Worker `i`: dies inside __init__ when `die_in_init`, inside `sync` (the welcome of a new
    worker) when `die_in_sync`; worker 0 dies in its first `double`."""

    def __init__(self, i: int, die_in_init: bool, die_in_sync: bool = False):
        if die_in_init:
            os._exit(1)
        self.i = i
        self.die_in_sync = die_in_sync
        self.synced = False

    def sync(self):
        if self.die_in_sync:
            os._exit(1)
        self.synced = True

    def is_synced(self):
        return self.synced

    def exit(self):
        os._exit(1)

    def ready(self):
        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}

    def double(self, items):
        if self.i == 0:
            os._exit(1)
        return [2 * x for x in items]


def test_replacements_that_die_while_starting_are_replaced_again(ray_session):
    group = ActorGroup("flaky", lambda i: Flaky.remote(i, 1 <= i <= 2), 1, max_replacements=5,
                       replace_timeout_s=60.0)
    try:
        assert group.map_shards("double", list(range(6))) == [0, 2, 4, 6, 8, 10]
        kinds = [e["kind"] for e in group.ledger.events]
        assert kinds.count("start_failed") == 2 and kinds[-1] == "replace"
        assert group.ledger.events[-1]["died_starting"] == 2 and group.ledger.events[-1]["new_index"] == 3
        assert group.ledger.replaced_workers == 3 and group.ledger.failures == 1
        assert group.ledger.items == 6 and group.size == 1
    finally:
        group.kill_all()


def test_a_spent_budget_is_named_with_the_starts_that_died(ray_session):
    group = ActorGroup("doomed", lambda i: Flaky.remote(i, i >= 1), 1, max_replacements=2, replace_timeout_s=60.0)
    try:
        with pytest.raises(RuntimeError, match=r"group doomed: every worker died and the replacement budget is "
                                               r"spent \(2 replacements.*2 of the last ones died while starting"):
            group.map_shards("double", [1, 2])
    finally:
        group.kill_all()


def _welcome(handle):
    ray.get(handle.sync.remote())


def _welcome_deaths(group) -> list[dict]:
    return [e for e in group.ledger.events if e["kind"] == "start_failed" and e["reason"].startswith("welcome: ")]


def test_replacements_that_die_during_their_weight_sync_are_replaced_again(ray_session):
    """The last worker dies mid-call; its replacements 1 and 2 start, then die in their welcome
    (the weight sync, `on_new_worker`): each counts as died while starting and is replaced again."""
    group = ActorGroup("syncdeath", lambda i: Flaky.remote(i, False, 1 <= i <= 2), 1, on_new_worker=_welcome,
                       max_replacements=5, replace_timeout_s=60.0)
    try:
        assert group.map_shards("double", list(range(4))) == [0, 2, 4, 6]
        assert [e["index"] for e in _welcome_deaths(group)] == [1, 2]
        last = group.ledger.events[-1]
        assert last["kind"] == "replace" and last["new_index"] == 3 and last["died_starting"] == 2
        assert group.size == 1 and ray.get(group.workers[0].is_synced.remote())
    finally:
        group.kill_all()


def test_reconcile_goes_on_starting_when_every_new_worker_dies_in_its_welcome(ray_session):
    """An idle worker dies between steps; `reconcile` starts one (dies in its sync), then, with no
    live worker left, keeps starting within the budget instead of giving up."""
    group = ActorGroup("idledeath", lambda i: Flaky.remote(i, False, 1 <= i <= 2), 1, on_new_worker=_welcome,
                       max_replacements=5, replace_timeout_s=60.0)
    try:
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(group.workers[0].exit.remote())
        out = group.reconcile()
        assert out["dead"] == 1 and group.size == 1
        assert [e["index"] for e in _welcome_deaths(group)] == [1, 2]
        replace = [e for e in group.ledger.events if e["kind"] == "replace"]
        assert [(e["new_index"], e["died_starting"]) for e in replace] == [(3, 1)]   # 1 died in _replace_last
        assert ray.get(group.workers[0].is_synced.remote())
        assert group.map_shards("double", [5, 6]) == [10, 12]
    finally:
        group.kill_all()
