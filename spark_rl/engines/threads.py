"""CPU thread count of an engine process.

Ray sets OMP_NUM_THREADS to an actor's logical `num_cpus` (often 1), and the demo declares more
logical CPUs than the machine has cores because its actors mostly wait on each other. Engines
therefore choose their intra-op threads themselves: `num_threads=0` means every core this process
may run on.

Which cores those are, a worker's entry of `cpu_threads_bind` says (`bind_to_cores`); the actor
layer hands it over in SPARK_RL_ENGINE_CORES. vLLM's own VLLM_CPU_OMP_THREADS_BIND does not do
this job: vLLM reads it only when it starts its engine in a separate process, and the engines
here run in the actor's process.
"""

from __future__ import annotations

import logging
import os

import torch

from spark_rl.config.resources import ONE_CORE_EACH, core_list

log = logging.getLogger(__name__)

ENGINE_CORES_ENV = "SPARK_RL_ENGINE_CORES"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def bind_to_cores(entry: str) -> list[int] | None:
    """Pin this process to the cores of one `cpu_threads_bind` entry (`0-3,8`); `auto`, `all` and
    `nobind` leave it as it is (None); `percore:i` (worker i of a "percore" group) takes the i-th
    core, wrapping around, of those this process may use. Cores this process may not use are left
    out with a warning; ValueError when none is left."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = os.sched_getaffinity(0)
    kind, _, index = entry.partition(":")
    if kind == ONE_CORE_EACH:
        ordered = sorted(allowed)
        if not index.isdigit():
            raise ValueError(f"{ENGINE_CORES_ENV}={entry!r}: expected {ONE_CORE_EACH}:<worker index>")
        cores = [ordered[int(index) % len(ordered)]]
    else:
        cores = core_list(entry)
    if cores is None:
        return None
    chosen = [c for c in cores if c in allowed]
    if not chosen:
        raise ValueError(f"cpu_threads_bind {entry!r}: none of these cores is one this process may use "
                         f"({sorted(allowed)})")
    if len(chosen) < len(cores):
        log.warning("cpu_threads_bind %r: cores %s are not this process's to use; bound to %s", entry,
                    sorted(set(cores) - allowed), chosen)
    os.sched_setaffinity(0, chosen)
    return chosen


def set_cpu_threads(num_threads: int = 0) -> int:
    n = num_threads if num_threads > 0 else usable_cores()
    os.environ["OMP_NUM_THREADS"] = str(n)
    # vLLM-cpu replaces torch.set_num_threads with a no-op once an engine is up; the C entry point stays.
    torch._C.set_num_threads(n)
    log.info("torch intra-op threads: %d", n)
    return n
