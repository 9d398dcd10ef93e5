"""The ground-truth (RLVR) reward: 1 if the response's final answer grades equal to the gold answer."""

from __future__ import annotations

from spark_rl.rewards.base import RewardInput, RewardOutput
from spark_rl.rewards.variants import model_free_reward


def rule_reward(inp: RewardInput, use_gate: bool = False) -> RewardOutput:
    return model_free_reward("rlvr", inp, use_gate)
