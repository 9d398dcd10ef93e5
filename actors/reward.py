"""Reward workers: every kind exposes `score(list[RewardInput]) -> list[RewardOutput]`, so the
driver holds a group of them without knowing what computes the reward."""

from __future__ import annotations

import os

import ray

from spark_rl.rewards.base import RewardInput, RewardOutput


@ray.remote
class RuleRewardWorker:
    """Ground-truth (RLVR) reward via math-verify."""

    def __init__(self, use_gate: bool = False, worker_index: int = 0):
        self.use_gate = use_gate
        self.worker_index = worker_index

    def ready(self) -> dict:
        return {"worker_index": self.worker_index, "pid": os.getpid(), "kind": "rule",
                "node_id": ray.get_runtime_context().get_node_id()}

    def score(self, batch: list[RewardInput]) -> list[RewardOutput]:
        from spark_rl.rewards.rule import rule_reward

        return [rule_reward(x, use_gate=self.use_gate) for x in batch]
