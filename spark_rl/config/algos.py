"""The GRPO loss settings and the names the algorithms accept (`spark_rl.algos` implements them)."""

from __future__ import annotations

from dataclasses import dataclass

from spark_rl.config.checks import Schema, require, require_choice

AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")
KL_ESTIMATORS = ("k1", "k2", "k3")


@dataclass
class GRPOLossConfig(Schema):
    clip_low: float = 0.2
    clip_high: float | None = None       # None: same as clip_low; larger = "clip-higher"
    kl_coef: float = 0.001
    kl_kind: str = "k3"
    kl_clamp: float = 10.0
    agg_mode: str = "token-mean"
    entropy_coef: float = 0.0
    norm_len: float | None = None        # seq-mean-token-sum-norm: the constant length (Dr. GRPO)

    def validate(self) -> None:
        require(self.clip_low > 0, "clip_low", "must be > 0")
        require(self.clip_high is None or self.clip_high > 0, "clip_high", "must be > 0")
        require(self.kl_coef >= 0, "kl_coef", "must be >= 0")
        require_choice(self.kl_kind, "kl_kind", set(KL_ESTIMATORS))
        require_choice(self.agg_mode, "agg_mode", set(AGG_MODES))
