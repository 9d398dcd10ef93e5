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
    # CPU cores of the vLLM engines inside rollout and PRM workers, one entry per worker separated by
    # "|" (worker i takes entry i mod len): a core list such as "0-3,8" pins the worker to those
    # cores and runs one engine thread per core; "auto" (or "all", "nobind") keeps every core the
    # worker may use. Several CPU engines on one node need core lists: on "auto" each one runs a
    # thread per core of the node, and their threads spin against each other. "percore" (the whole
    # value) gives each worker one core of those it may use, worker i the i-th: core lists without
    # core ids, which stay right under `taskset` or a demo stage pinned to its share of the cores.
    cpu_threads_bind: str = "auto"

    def validate(self) -> None:
        require(self.num_cpus >= 0, "num_cpus", "must be >= 0")
        require(self.num_gpus >= 0, "num_gpus", "must be >= 0")
        require_choice(self.strategy, "strategy", {"PACK", "SPREAD", "STRICT_SPREAD", "STRICT_PACK"})
        if self.cpu_threads_bind.strip() == ONE_CORE_EACH:
            return
        for entry in self.cpu_threads_bind.split("|"):
            try:
                core_list(entry)
            except ValueError as e:
                require(False, "cpu_threads_bind", str(e))


KEEP_ALL_CORES = ("auto", "all", "nobind")
ONE_CORE_EACH = "percore"


def core_list(entry: str) -> list[int] | None:
    """One worker's entry of `cpu_threads_bind`: the cores of a list such as `0-3,8` (sorted, no
    repeats), or None for an entry that keeps every core (`auto`, `all`, `nobind`)."""
    text = entry.strip()
    if text.lower() in KEEP_ALL_CORES:
        return None
    cores: set[int] = set()
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()) or (sep and int(hi) < int(lo)):
            raise ValueError(f"{entry!r} is not a core list like '0-3,8' (nor one of {', '.join(KEEP_ALL_CORES)})")
        cores.update(range(int(lo), int(hi if sep else lo) + 1))
    return sorted(cores)
