"""`RolloutWorker`: a Ray actor around `spark_rl.engines.generator.Generator`."""

from __future__ import annotations

import os
import time

import ray
import torch

from actors.group import ActorGroup
from actors.placement import engine_cores_env, worker_options
from spark_rl.config.engines import GeneratorConfig
from spark_rl.config.resources import ResourceSpec
from spark_rl.engines.generator import Completion, Generator
from spark_rl.engines.weight_transfer import FlatBucket, SharedWeightFile


def rollout_group(name: str, engine: GeneratorConfig, resources: ResourceSpec, size: int, first_core_entry: int = 0,
                  **group_kwargs) -> ActorGroup:
    """An `ActorGroup` of `size` rollout workers on `engine`, each placed by `resources` (its vLLM
    CPU threads bound per worker index: worker i takes entry `first_core_entry + i` of
    `cpu_threads_bind`, so groups that run side by side can take different cores); `group_kwargs`
    go to `ActorGroup`."""
    def start(i: int):
        env = engine_cores_env(resources, first_core_entry + i)
        return RolloutWorker.options(**worker_options(resources, env)).remote(engine, i)

    return ActorGroup(name, start, size, **group_kwargs)


@ray.remote
class RolloutWorker:
    def __init__(self, cfg: GeneratorConfig, worker_index: int = 0):
        self.worker_index = worker_index
        self.cfg = cfg
        self.generator = Generator(cfg)
        self.busy_s = 0.0
        self._shm: SharedWeightFile | None = None

    def ready(self) -> dict:
        return {"worker_index": self.worker_index, "pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
                "weights_version": self.generator.weights_version, "torch_threads": torch.get_num_threads(),
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "cores": sorted(os.sched_getaffinity(0)),
                "cpu_engine": not torch.cuda.is_available()}

    def generate(self, prompts, n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                 max_new_tokens: int = 256, stop=None, seed: int | None = None,
                 logprobs: bool = True, seed_offset: int = 0) -> list[list[Completion]]:
        """`seed_offset`: index of this shard's first prompt in the whole batch, so prompt i of the
        batch is sampled with `seed + i` however the batch was split over workers."""
        t = time.perf_counter()
        out = self.generator.generate(prompts, n=n, temperature=temperature, top_p=top_p,
                                   max_new_tokens=max_new_tokens, stop=stop,
                                   seed=None if seed is None else seed + seed_offset, logprobs=logprobs)
        self.busy_s += time.perf_counter() - t
        return out

    def sequence_logprobs(self, sequences) -> list[list[float]]:
        return self.generator.sequence_logprobs(sequences)

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def stage_weights(self, bucket: list[tuple[str, torch.Tensor]]) -> int:
        return self.generator.stage_weights(bucket)

    def stage_flat(self, bucket: FlatBucket) -> int:
        return self.generator.stage_weights(bucket.tensors())

    def load_shared(self, path: str, nbytes: int, slots: list, version: int | None = None) -> int:
        """Load every weight from the learner's /dev/shm file (same node), then commit."""
        if self._shm is None or str(self._shm.path) != path:
            if self._shm is not None:
                self._shm.close()
            self._shm = SharedWeightFile(path, nbytes, create=False)
        self.generator.stage_weights(self._shm.views(slots))
        return self.commit_weights(version)

    def commit_weights(self, version: int | None = None) -> int:
        n = self.generator.commit_weights()
        if version is not None:
            self.generator.weights_version = version
        return n

    def weights_version(self) -> int:
        return self.generator.weights_version

    def load_checkpoint(self, model_path: str) -> int:
        """Another checkpoint of the same model in place (eval-prm's next model)."""
        return self.generator.load_checkpoint(model_path)
