"""The Ray cluster a run uses (`actors.cluster.init_ray` connects to or starts it)."""

from __future__ import annotations

from dataclasses import dataclass

from spark_rl.config.checks import Schema, require


@dataclass
class ClusterConfig(Schema):
    # None: start a new local Ray instance in this process (never a cluster this machine happens to
    # run, see `init_ray`); "auto" or "ray://host:10001": join a cluster.
    address: str | None = None
    # Logical CPUs for a local instance. Actors mostly wait on each other, so a small machine can
    # declare more CPUs than it has cores (the demo does on 2 cores).
    num_cpus: int | None = None
    num_gpus: int | None = None
    object_store_gib: float = 2.0
    log_to_driver: bool = True

    def validate(self) -> None:
        require(self.num_cpus is None or self.num_cpus > 0, "num_cpus", "must be > 0")
        require(self.object_store_gib > 0, "object_store_gib", "must be > 0")
