"""Reward workers: every kind exposes `score(list[RewardInput]) -> list[RewardOutput]`, so the
driver holds a group of them without knowing what computes the reward (and can swap the group)."""

from __future__ import annotations

import os

import ray

from spark_rl.config.rl import RewardSection
from spark_rl.rewards.base import RewardInput, RewardOutput
from spark_rl.rewards.variants import model_free_reward


def _where(kind: str, worker_index: int) -> dict:
    return {"worker_index": worker_index, "pid": os.getpid(), "kind": kind,
            "node_id": ray.get_runtime_context().get_node_id(), "cores": sorted(os.sched_getaffinity(0))}


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# Both take (reward section, worker index): the driver builds either from a `RewardSection`.
@ray.remote
class RuleRewardWorker:
    """Model-free rewards: `rlvr` (math-verify against the ground truth) and `random` (a seeded
    coin flip, the control), both behind the optional format gate."""

    def __init__(self, section: RewardSection, worker_index: int = 0):
        self.use_gate, self.worker_index, self.variant, self.seed = (section.use_gate, worker_index,
                                                                      section.variant, section.seed)

    def ready(self) -> dict:
        return _where(self.variant, self.worker_index)

    def score(self, batch: list[RewardInput]) -> list[RewardOutput]:
        return [model_free_reward(self.variant, x, self.use_gate, self.seed) for x in batch]


@ray.remote
class PRMRewardWorker:
    """A generative PRM (PRM-CoT) as the reward: on an in-process vLLM engine, or, when
    `prm.remote.url` is set, an OpenAI-compatible endpoint. All samples of the worker's shard are
    verified in one batched greedy call."""

    def __init__(self, section: RewardSection, worker_index: int = 0):
        from spark_rl.engines.prm_reward import PRMReward

        self.worker_index = worker_index
        self.kind = f"prm:{section.variant}" + (":remote" if section.prm.remote.url else "")
        self.reward = PRMReward(section.variant, section.use_gate, section.prm, section.params)
        self.cpu_engine = not section.prm.remote.url and not _has_cuda()

    def ready(self) -> dict:
        return {**_where(self.kind, self.worker_index), "cpu_engine": self.cpu_engine}

    def score(self, batch: list[RewardInput]) -> list[RewardOutput]:
        return self.reward.score(batch)
