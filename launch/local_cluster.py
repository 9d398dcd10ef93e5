"""A multi-node Ray cluster on ONE machine (several raylets, `ray.cluster_utils.Cluster`), for
trying placement, node loss and `spark-rl ctl` without real nodes. Same layout as
tests/test_cluster.py: head {train}, node A {rollout, reward}, node B {rollout}.

    python launch/local_cluster.py            # prints the address, runs until Ctrl-C
    spark-rl train-rl configs/demo/rl_elastic.yaml cluster.address=ADDRESS \\
        rollout.resources.resources='{rollout: 1}' reward.resources.resources='{reward: 1}' \\
        learner.resources.resources='{train: 1}'

(Ray's CLI can also start several `ray start` nodes on one host, but each needs its own set of
ports; Ray's own multi-node tests use `Cluster`, as here.)
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpus", type=int, default=2, help="logical CPUs per node")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0: until Ctrl-C)")
    args = p.parse_args()
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": args.cpus + 1, "resources": {"train": 1},
                                                            "include_dashboard": False})
    cluster.add_node(num_cpus=args.cpus, resources={"rollout": 1, "reward": 1})
    cluster.add_node(num_cpus=args.cpus, resources={"rollout": 1})
    cluster.wait_for_nodes()
    print(f"3-node Ray cluster up: cluster.address={cluster.address}", flush=True)
    try:
        deadline = time.time() + args.seconds if args.seconds else None
        while deadline is None or time.time() < deadline:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
