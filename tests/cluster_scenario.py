"""A GRPO run on a 3-node `ray.cluster_utils.Cluster` (several Ray nodes on this machine), run as
its own process by test_cluster.py: a driver can join one Ray instance at a time, and the test
session already holds one. Writes what happened to OUT/result.json; the test asserts on it.

    python tests/cluster_scenario.py MODEL_DIR OUT_DIR

Nodes (custom resources): head {train}, node A {rollout, reward}, node B {rollout}. Config asks
for learner + colocated reference on `train`, one rollout worker per `rollout` node (SPREAD),
the reward worker on `reward`. While step 3 generates, node B is removed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

STEPS, REMOVE_AT = 4, 3


def config(out_dir: Path, address: str):
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import EASY

    from spark_rl.config.cluster import ClusterConfig
    from spark_rl.config.resources import ResourceSpec
    from spark_rl.config.rl import RLConfig
    from spark_rl.tasks.domain import DomainConfig

    cfg = RLConfig()
    cfg.run.output_dir, cfg.run.tensorboard, cfg.run.export_final = str(out_dir / "run"), False, False
    cfg.cluster = ClusterConfig(address=address, log_to_driver=False)
    cfg.data.domain = DomainConfig(**EASY)
    cfg.data.train_size, cfg.data.eval_size = 64, 0
    cfg.rollout.num_workers = 2
    cfg.rollout.resources = ResourceSpec(num_cpus=1, resources={"rollout": 1}, strategy="SPREAD")
    cfg.rollout.engine.max_model_len = 256
    cfg.reward.kind = "rlvr"
    cfg.reward.resources = ResourceSpec(num_cpus=0.5, resources={"reward": 1})
    cfg.learner.resources = ResourceSpec(num_cpus=1, resources={"train": 1})
    cfg.reference.colocate_with_learner = True
    cfg.reference.resources = ResourceSpec(num_cpus=0.5)
    cfg.learner.engine.lr, cfg.learner.engine.micro_batch_size = 5e-4, 8
    g = cfg.grpo
    g.steps, g.prompts_per_step, g.group_size, g.max_new_tokens = STEPS, 3, 2, 8
    g.eval_every, g.checkpoint_every = 0, 0
    cfg.elastic.replace_timeout_s = 20.0
    return cfg


def main(model_dir: str, out_dir: str) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from actors.cluster import init_ray
    from spark_rl.config.cluster import ClusterConfig
    from spark_rl.trainer.data import build_problems
    from spark_rl.trainer.grpo import GRPOTrainer

    out = Path(out_dir)
    t0 = time.time()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 3, "resources": {"train": 1}, "include_dashboard": False,
                                                            "object_store_memory": 300 << 20})
    node_a = cluster.add_node(num_cpus=2, resources={"rollout": 1, "reward": 1}, object_store_memory=200 << 20)
    node_b = cluster.add_node(num_cpus=2, resources={"rollout": 1}, object_store_memory=200 << 20)
    cluster.wait_for_nodes()
    nodes = {"head": cluster.head_node.node_id, "a": node_a.node_id, "b": node_b.node_id}
    result: dict = {"nodes": nodes, "cluster_start_s": time.time() - t0}
    cfg = config(out, cluster.address)
    init_ray(ClusterConfig(address=cluster.address, log_to_driver=False))
    train, evalset = build_problems(cfg.data)
    trainer = GRPOTrainer(cfg, model_dir, train, evalset)
    try:
        result["placement"] = {
            "learner": [p["node_id"] for p in trainer.learner.placement],
            "reference": [p["node_id"] for p in trainer.reference.placement()],
            "rollout": [p["node_id"] for p in trainer.rollout.placement()],
            "reward": [p["node_id"] for p in trainer.reward.placement()],
        }

        def remove_node_b(group, method, dispatched):
            if method == "generate" and trainer.step + 1 == REMOVE_AT and "removed_at" not in result:
                result["removed_at"] = time.time()
                cluster.remove_node(node_b)
                result["remove_node_s"] = time.time() - result["removed_at"]

        trainer.rollout.hooks.append(remove_node_b)
        trainer.fit(progress=False)
        result["final_step"] = trainer.step
        result["rollout_after"] = [p["node_id"] for p in trainer.rollout.placement()]
        result["pending_after"] = len(trainer.rollout.pending)
    finally:
        trainer.shutdown()
        ray.shutdown()
        cluster.shutdown()
    result["total_s"] = time.time() - t0
    (out / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
