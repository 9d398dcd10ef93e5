"""Turn a `ResourceSpec` into Ray actor options and placement groups."""

from __future__ import annotations

from typing import Any

import ray
from ray.util.placement_group import PlacementGroup, placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from spark_rl.config.resources import ONE_CORE_EACH, ResourceSpec
from spark_rl.engines.threads import ENGINE_CORES_ENV


def bundle(spec: ResourceSpec) -> dict[str, float]:
    b = {"CPU": spec.num_cpus, **spec.resources}
    if spec.num_gpus:
        b["GPU"] = spec.num_gpus
    return {k: v for k, v in b.items() if v}


def combined(a: ResourceSpec, b: ResourceSpec | None) -> ResourceSpec:
    """One bundle that holds a worker of `a` and a colocated worker of `b` (e.g. learner + reference)."""
    if b is None:
        return a
    res = dict(a.resources)
    for k, v in b.resources.items():
        res[k] = res.get(k, 0) + v
    return ResourceSpec(num_cpus=a.num_cpus + b.num_cpus, num_gpus=a.num_gpus + b.num_gpus, resources=res,
                        strategy=a.strategy, cpu_threads_bind=a.cpu_threads_bind)


def worker_options(spec: ResourceSpec, env: dict[str, str] | None = None, max_restarts: int = 0) -> dict[str, Any]:
    """Options for one independently scheduled worker (rollout, reward, reference): each worker is
    placed on its own, so a group can grow and shrink one worker at a time."""
    opts: dict[str, Any] = {
        "num_cpus": spec.num_cpus,
        "num_gpus": spec.num_gpus,
        "resources": dict(spec.resources),
        "max_restarts": max_restarts,
        "runtime_env": {"env_vars": dict(env or {})},
    }
    if spec.strategy in ("SPREAD", "STRICT_SPREAD"):
        opts["scheduling_strategy"] = "SPREAD"
    return opts


def gang_placement_group(spec: ResourceSpec, n: int, name: str | None = None, timeout_s: float = 120) -> PlacementGroup:
    """One bundle per rank, reserved together (learner ranks must all start or none)."""
    pg = placement_group([bundle(spec) for _ in range(n)], strategy=spec.strategy, name=name or "")
    ready, _ = ray.wait([pg.ready()], timeout=timeout_s)
    if not ready:
        ray.util.remove_placement_group(pg)
        raise TimeoutError(f"placement group {name!r}: {n} x {bundle(spec)} could not be reserved in "
                           f"{timeout_s:.0f}s; cluster resources: {ray.cluster_resources()}")
    return pg


def in_bundle(pg: PlacementGroup, index: int) -> dict[str, Any]:
    return {"scheduling_strategy": PlacementGroupSchedulingStrategy(
        placement_group=pg, placement_group_bundle_index=index, placement_group_capture_child_tasks=True)}


def engine_cores_env(spec: ResourceSpec, worker_index: int) -> dict[str, str]:
    """The environment that tells worker `worker_index`'s CPU engine its cores (its entry of
    `cpu_threads_bind`; `spark_rl.engines.threads.bind_to_cores` applies it). With "percore" the
    worker picks its core itself, from the cores its own process may use (they are the node's, not
    the driver's)."""
    if spec.cpu_threads_bind.strip() == ONE_CORE_EACH:
        return {ENGINE_CORES_ENV: f"{ONE_CORE_EACH}:{worker_index}"}
    binds = spec.cpu_threads_bind.split("|")
    return {ENGINE_CORES_ENV: binds[worker_index % len(binds)]}
