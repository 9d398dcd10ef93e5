"""Clipped policy-gradient loss with a KL term, and the loss-aggregation modes.

Aggregation takes its denominators as arguments: the learner passes counts over the GLOBAL batch
(all micro-batches, all data-parallel ranks), so the sum of micro-batch losses equals the loss of
the whole batch, however it is split."""

from __future__ import annotations

import torch

from spark_rl.algos.kl import kl_estimate
from spark_rl.config.algos import AGG_MODES, GRPOLossConfig


def aggregate_loss(loss_mat: torch.Tensor, mask: torch.Tensor, mode: str = "token-mean", num_tokens: float | None = None,
              num_seqs: float | None = None, norm_len: float | None = None) -> torch.Tensor:
    mask = mask.to(loss_mat.dtype)
    if mode not in AGG_MODES:
        raise ValueError(f"unknown loss aggregation {mode!r}; choose one of {AGG_MODES}")
    masked = loss_mat * mask
    if mode == "token-mean":
        denom = mask.sum() if num_tokens is None else torch.tensor(float(num_tokens))
        return masked.sum() / denom.clamp(min=1)
    seqs = float(loss_mat.shape[0]) if num_seqs is None else float(num_seqs)
    seqs = max(seqs, 1.0)
    if mode == "seq-mean-token-mean":
        per_seq = masked.sum(-1) / mask.sum(-1).clamp(min=1)
        return per_seq.sum() / seqs
    if mode == "seq-mean-token-sum":
        return masked.sum() / seqs
    length = float(loss_mat.shape[-1]) if norm_len is None else float(norm_len)
    return masked.sum() / (seqs * max(length, 1.0))


def policy_loss(logp, old_logp, advantages, mask, clip_low=0.2, clip_high=None, agg_mode="token-mean",
                num_tokens=None, num_seqs=None, norm_len=None):
    """PPO clipped surrogate. Returns (loss, metrics); `approx_kl` is the mean k3(old || new)."""
    clip_high = clip_low if clip_high is None else clip_high
    mask_f = mask.to(logp.dtype)
    log_ratio = (logp - old_logp).clamp(-20, 20)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip_low, 1 + clip_high)
    loss_tok = torch.maximum(unclipped, clipped)
    loss = aggregate_loss(loss_tok, mask_f, agg_mode, num_tokens, num_seqs, norm_len)
    n = mask_f.sum().clamp(min=1)
    with torch.no_grad():
        clip_frac = ((clipped > unclipped).to(logp.dtype) * mask_f).sum() / n
        approx_kl = ((torch.exp(-log_ratio) + log_ratio - 1) * mask_f).sum() / n
        ratio_mean = (ratio * mask_f).sum() / n
    return loss, {"clip_frac": clip_frac.item(), "approx_kl": approx_kl.item(), "ratio_mean": ratio_mean.item()}


def grpo_loss(logp, old_logp, ref_logp, advantages, mask, cfg: GRPOLossConfig, entropy=None,
              num_tokens=None, num_seqs=None):
    """Policy loss + kl_coef * KL(policy || reference) as a loss term (not in the reward)
    - entropy_coef * entropy. All terms aggregated the same way."""
    if advantages.dim() == 1:
        advantages = advantages[:, None].expand_as(logp)
    old_logp = logp.detach() if old_logp is None else old_logp
    agg = dict(num_tokens=num_tokens, num_seqs=num_seqs, norm_len=cfg.norm_len)
    pg, metrics = policy_loss(logp, old_logp, advantages, mask, cfg.clip_low, cfg.clip_high, cfg.agg_mode, **agg)
    loss = pg
    metrics["pg_loss"] = pg.item()
    mask_f = mask.to(logp.dtype)
    n = mask_f.sum().clamp(min=1)
    if ref_logp is not None and cfg.kl_coef > 0:
        kl_mat = kl_estimate(logp, ref_logp, cfg.kl_kind, cfg.kl_clamp)
        loss = loss + cfg.kl_coef * aggregate_loss(kl_mat, mask_f, cfg.agg_mode, **agg)
        metrics["kl"] = ((kl_mat * mask_f).sum() / n).item()
    if entropy is not None:
        metrics["entropy"] = ((entropy * mask_f).sum() / n).item()
        if cfg.entropy_coef:
            loss = loss - cfg.entropy_coef * aggregate_loss(entropy, mask_f, cfg.agg_mode, **agg)
    return loss, metrics
