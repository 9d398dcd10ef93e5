"""`RolloutWorker`: a Ray actor around `spark_rl.engines.generator.Generator`."""

from __future__ import annotations

import os
import time

import ray
import torch

from spark_rl.engines.generator import Completion, Generator, GeneratorConfig


@ray.remote
class RolloutWorker:
    def __init__(self, cfg: GeneratorConfig, worker_index: int = 0):
        self.worker_index = worker_index
        self.cfg = cfg
        self.engine = Generator(cfg)
        self.busy_s = 0.0

    def ready(self) -> dict:
        return {"worker_index": self.worker_index, "pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
                "weights_version": self.engine.weights_version}

    def generate(self, prompts, n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                 max_new_tokens: int = 256, stop=None, seed: int | None = None,
                 logprobs: bool = True) -> list[list[Completion]]:
        t = time.perf_counter()
        out = self.engine.generate(prompts, n=n, temperature=temperature, top_p=top_p,
                                   max_new_tokens=max_new_tokens, stop=stop, seed=seed, logprobs=logprobs)
        self.busy_s += time.perf_counter() - t
        return out

    def sequence_logprobs(self, sequences) -> list[list[float]]:
        return self.engine.sequence_logprobs(sequences)

    def stage_weights(self, bucket: list[tuple[str, torch.Tensor]]) -> int:
        return self.engine.stage_weights(bucket)

    def commit_weights(self, version: int | None = None) -> int:
        n = self.engine.commit_weights()
        if version is not None:
            self.engine.weights_version = version
        return n

    def weights_version(self) -> int:
        return self.engine.weights_version
