"""`ReferenceWorker`: a Ray actor around the frozen reference-policy `Scorer`."""

from __future__ import annotations

import os

import ray

from spark_rl.engines.scorer import Scorer, ScorerConfig


@ray.remote
class ReferenceWorker:
    def __init__(self, cfg: ScorerConfig, worker_index: int = 0):
        self.worker_index = worker_index
        self.scorer = Scorer(cfg)

    def ready(self) -> dict:
        return {"worker_index": self.worker_index, "pid": os.getpid(),
                "node_id": ray.get_runtime_context().get_node_id()}

    def logprobs(self, seqs: list[list[int]]) -> list[list[float]]:
        return self.scorer.logprobs(seqs)
