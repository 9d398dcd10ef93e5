"""Multi-node placement and node loss on a 3-node `ray.cluster_utils.Cluster` (issue #8).

The cluster and its driver run in a child process (tests/cluster_scenario.py): one process joins
one Ray instance, and this test session's Ray (`ray_session`) may already be up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster_run(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cluster")
    script = Path(__file__).with_name("cluster_scenario.py")
    proc = subprocess.run([sys.executable, str(script), tiny_model_dir, str(out)], cwd=script.parent.parent,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads((out / "result.json").read_text())
    rows = {}
    for line in (out / "run" / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        rows[r["step"]] = r
    events = [json.loads(x) for x in (out / "run" / "events.jsonl").read_text().splitlines()]
    return result, rows, events


def test_actors_land_on_the_nodes_the_config_asks_for(cluster_run):
    result, _, _ = cluster_run
    nodes, placed = result["nodes"], result["placement"]
    assert len(set(nodes.values())) == 3
    assert placed["learner"] == [nodes["head"]]           # resources {train: 1}
    assert placed["reference"] == [nodes["head"]]         # colocated in the learner rank's bundle
    assert placed["reward"] == [nodes["a"]]               # resources {reward: 1}
    assert sorted(placed["rollout"]) == sorted([nodes["a"], nodes["b"]])   # {rollout: 1}, one per node


def test_node_removal_mid_run_training_continues_on_survivors(cluster_run):
    result, rows, events = cluster_run
    nodes = result["nodes"]
    steps = sorted(s for s, r in rows.items() if "train/loss" in r)
    assert result["final_step"] == 4 and steps == [1, 2, 3, 4]
    assert "removed_at" in result
    r3 = rows[3]   # node B went away while step 3 generated: its shard was re-dispatched
    assert r3["ledger/rollout/failures"] == 1 and r3["ledger/rollout/redispatched"] >= 1
    assert r3["consumed/exactly_once"] == 1.0
    # the step after the removal runs on the remaining worker (node A); the replacement waits
    # for a node with a free `rollout` resource (pending), it does not block training
    r4 = rows[4]
    assert r4["ledger/rollout/size"] == 1 and r4["ledger/rollout/workers_used"] == 1
    assert r4["ledger/rollout/pending"] == 1 and r4["consumed/exactly_once"] == 1.0
    assert result["rollout_after"] == [nodes["a"]]
    assert [rows[s]["ledger/rollout/workers_used"] for s in (1, 2)] == [2, 2]
    assert any(e["kind"] == "group_replace_pending" and e["step"] == 3 for e in events)
