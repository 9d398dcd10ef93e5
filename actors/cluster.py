"""Connecting to (or starting) the Ray cluster a run uses."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import ray

from spark_rl.config.loader import require

log = logging.getLogger(__name__)


@dataclass
class ClusterConfig:
    # None: start a local Ray instance in this process; "auto" or "ray://host:10001": join a cluster.
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


def actor_env() -> dict[str, str]:
    """Environment every actor inherits: CPU DeepSpeed, in-process vLLM engine, quiet logs."""
    env = {
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONWARNINGS": "ignore",
    }
    for k in ("DS_ACCELERATOR", "VLLM_CPU_KVCACHE_SPACE", "VLLM_LOGGING_LEVEL", "HF_HUB_OFFLINE"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


def init_ray(cfg: ClusterConfig | None = None) -> None:
    cfg = cfg or ClusterConfig()
    if ray.is_initialized():
        return
    env = actor_env()
    if cfg.address:
        ray.init(address=cfg.address, runtime_env={"env_vars": env}, log_to_driver=cfg.log_to_driver)
    else:
        ray.init(
            num_cpus=cfg.num_cpus,
            num_gpus=cfg.num_gpus,
            object_store_memory=int(cfg.object_store_gib * (1 << 30)),
            include_dashboard=False,
            runtime_env={"env_vars": env},
            log_to_driver=cfg.log_to_driver,
        )
    log.info("ray resources: %s", ray.cluster_resources())
