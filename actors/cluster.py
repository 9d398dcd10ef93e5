"""Connecting to (or starting) the Ray cluster a run uses."""

from __future__ import annotations

import json
import logging
import os

import ray

from spark_rl.config.cluster import ClusterConfig

log = logging.getLogger(__name__)


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


# Ray hands a submitted job's runtime env to its driver in this variable (ray job submit, KubeRay).
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def job_env_vars() -> dict[str, str]:
    """The env vars the Ray job this driver runs in already sets ({} outside a job)."""
    raw = os.environ.get(JOB_CONFIG_ENV)
    if not raw:
        return {}
    try:
        runtime_env = json.loads(raw).get("runtime_env") or {}
    except (json.JSONDecodeError, AttributeError):
        raise ValueError(f"{JOB_CONFIG_ENV} is not the JSON object Ray writes: {raw[:200]!r}") from None
    return dict(runtime_env.get("env_vars") or {})


def runtime_env_for_job(env: dict[str, str]) -> dict:
    """`{"env_vars": env}` less the keys the job already sets: Ray refuses to merge a job's and
    ray.init's runtime envs when both set one key ("Failed to merge the Job's runtime env"), even
    to the same value. The job's own values win; they reach every actor of the job anyway."""
    taken = job_env_vars()
    dropped = {k: v for k, v in env.items() if k in taken and taken[k] != v}
    if dropped:
        log.info("the job's runtime env sets %s; keeping its values", sorted(dropped))
    return {"env_vars": {k: v for k, v in env.items() if k not in taken}}


def init_ray(cfg: ClusterConfig | None = None) -> None:
    cfg = cfg or ClusterConfig()
    if ray.is_initialized():
        return
    env = actor_env()
    if cfg.address:
        ray.init(address=cfg.address, runtime_env=runtime_env_for_job(env), log_to_driver=cfg.log_to_driver)
    else:
        # address="local": a fresh instance owned by this process. Without it ray.init() joins
        # whatever cluster the machine last started (RAY_ADDRESS, or the address file a
        # `ray start --head` left behind, even a dead one) and then refuses num_cpus/num_gpus.
        ray.init(
            address="local",
            num_cpus=cfg.num_cpus,
            num_gpus=cfg.num_gpus,
            object_store_memory=int(cfg.object_store_gib * (1 << 30)),
            include_dashboard=False,
            runtime_env={"env_vars": env},
            log_to_driver=cfg.log_to_driver,
            # Ray would start one idle Python worker per logical CPU for the first driver; our actors
            # start their own and the idle ones only compete for the stage's core (~2 s a start on one)
            _system_config={"prestart_worker_first_driver": False},
        )
    log.info("ray resources: %s", ray.cluster_resources())
