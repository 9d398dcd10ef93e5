"""RL algorithms (pure torch): advantage estimators, KL estimators, clipped policy loss."""

from spark_rl.algos.advantages import (
    ADVANTAGE_ESTIMATORS,
    compute_advantages,
    expand_to_tokens,
    register_advantage,
    zero_variance_group_mask,
)
from spark_rl.algos.kl import KL_ESTIMATORS, kl_estimate
from spark_rl.algos.losses import AGG_MODES, GRPOLossConfig, aggregate_loss, grpo_loss, policy_loss

__all__ = ["ADVANTAGE_ESTIMATORS", "AGG_MODES", "GRPOLossConfig", "KL_ESTIMATORS", "aggregate_loss",
           "compute_advantages", "expand_to_tokens", "grpo_loss", "kl_estimate", "policy_loss",
           "register_advantage", "zero_variance_group_mask"]
