"""ActorGroup recovery when replacements die while starting (real Ray actors, no engines): the
group keeps starting replacements within its budget and says which limit it met when it gives up."""

import os

import pytest
import ray

from actors.group import ActorGroup


@ray.remote(num_cpus=0)
class Flaky:
    """Worker `i`: dies inside __init__ when `die_in_init`; worker 0 dies in its first `double`."""

    def __init__(self, i: int, die_in_init: bool):
        if die_in_init:
            os._exit(1)
        self.i = i

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
