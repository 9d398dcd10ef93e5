"""Per-token KL estimators between the policy and the reference (Schulman's k1, k2, k3)."""

from __future__ import annotations

import torch

from spark_rl.config.algos import KL_ESTIMATORS


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str = "k3", clamp: float | None = 10.0) -> torch.Tensor:
    """k1 = log(p/q); k2 = 0.5 log(p/q)^2; k3 = q/p - log(q/p) - 1 (unbiased, >= 0, low variance).
    The log-ratio is clamped before exponentiating and the result to [-clamp, clamp]."""
    if kind not in KL_ESTIMATORS:
        raise ValueError(f"unknown KL estimator {kind!r}; choose one of {KL_ESTIMATORS}")
    log_ratio = logp - ref_logp
    if clamp is not None:
        log_ratio = log_ratio.clamp(-clamp, clamp)
    if kind == "k1":
        kl = log_ratio
    elif kind == "k2":
        kl = 0.5 * log_ratio ** 2
    else:
        kl = torch.exp(-log_ratio) + log_ratio - 1.0
    return kl.clamp(-clamp, clamp) if clamp is not None else kl
