"""Where an actor group runs: per-worker resources and placement, from config."""

from __future__ import annotations

from dataclasses import dataclass, field

from spark_rl.config.checks import Schema, require, require_choice


@dataclass
class ResourceSpec(Schema):
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    # Custom Ray node resources a worker needs, e.g. {"rollout": 0.01} to land on nodes started
    # with `--resources '{"rollout": 4}'`. Tiny amounts select nodes without limiting counts.
    resources: dict[str, float] = field(default_factory=dict)
    # "PACK" fills nodes in order, "SPREAD" spreads workers across nodes, "STRICT_SPREAD" one per node.
    strategy: str = "PACK"
    # vLLM CPU thread binding inside rollout workers: "auto", "nobind" or a core list per worker
    # separated by "|" (worker i takes entry i mod len).
    cpu_threads_bind: str = "auto"

    def validate(self) -> None:
        require(self.num_cpus >= 0, "num_cpus", "must be >= 0")
        require(self.num_gpus >= 0, "num_gpus", "must be >= 0")
        require_choice(self.strategy, "strategy", {"PACK", "SPREAD", "STRICT_SPREAD", "STRICT_PACK"})
