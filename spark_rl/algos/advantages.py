"""Group-relative advantage estimators, in a registry.

Each takes per-sample scalar rewards and the group (prompt) index of each sample and returns one
advantage per sample. Groups of size 1 and groups with all-equal rewards get advantage 0."""

from __future__ import annotations

from collections.abc import Callable

import torch

AdvantageFn = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
ADVANTAGE_ESTIMATORS: dict[str, AdvantageFn] = {}


def register_advantage(name: str):
    def deco(fn: AdvantageFn) -> AdvantageFn:
        ADVANTAGE_ESTIMATORS[name] = fn
        return fn
    return deco


def _group_stats(rewards: torch.Tensor, group_index: torch.Tensor):
    """Per-sample group sum, count and unbiased std (0 for groups of one)."""
    groups, inv = torch.unique(group_index, return_inverse=True)
    n = torch.zeros(len(groups), dtype=rewards.dtype).index_add_(0, inv, torch.ones_like(rewards))
    s = torch.zeros(len(groups), dtype=rewards.dtype).index_add_(0, inv, rewards)
    mean = s / n
    sq = torch.zeros(len(groups), dtype=rewards.dtype).index_add_(0, inv, (rewards - mean[inv]) ** 2)
    std = torch.where(n > 1, torch.sqrt(sq / (n - 1).clamp(min=1)), torch.zeros_like(sq))
    return s[inv], n[inv], mean[inv], std[inv]


@register_advantage("grpo")
def grpo(rewards, group_index, eps=1e-6):
    """(r - group mean) / (group std + eps); the std is the unbiased sample std (torch.std)."""
    _, n, mean, std = _group_stats(rewards, group_index)
    adv = (rewards - mean) / (std + eps)
    return torch.where((n > 1) & (std > 0), adv, torch.zeros_like(adv))


@register_advantage("dr_grpo")
def dr_grpo(rewards, group_index, eps=1e-6):
    """r - group mean (no std normalisation: Dr. GRPO)."""
    _, n, mean, _ = _group_stats(rewards, group_index)
    return torch.where(n > 1, rewards - mean, torch.zeros_like(rewards))


@register_advantage("rloo")
def rloo(rewards, group_index, eps=1e-6):
    """r - mean of the other samples of the group (leave-one-out baseline)."""
    s, n, _, _ = _group_stats(rewards, group_index)
    others = (s - rewards) / (n - 1).clamp(min=1)
    return torch.where(n > 1, rewards - others, torch.zeros_like(rewards))


@register_advantage("reinforce_pp_baseline")
def reinforce_pp_baseline(rewards, group_index, eps=1e-6):
    """r - group mean, then whitened over the whole batch (REINFORCE++ with a group baseline)."""
    centred = dr_grpo(rewards, group_index, eps)
    if centred.numel() < 2:
        return torch.zeros_like(centred)
    return (centred - centred.mean()) / (centred.std() + eps)


def compute_advantages(name: str, rewards: torch.Tensor, group_index: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    if name not in ADVANTAGE_ESTIMATORS:
        raise ValueError(f"unknown advantage estimator {name!r}; choose one of {sorted(ADVANTAGE_ESTIMATORS)}")
    rewards = rewards.to(torch.float32)
    if rewards.numel() == 0:
        return rewards.clone()
    if not torch.isfinite(rewards).all():
        raise ValueError("compute_advantages: non-finite reward")
    return ADVANTAGE_ESTIMATORS[name](rewards, group_index, eps)


def zero_variance_group_mask(rewards: torch.Tensor, group_index: torch.Tensor) -> torch.Tensor:
    """True for samples whose group's rewards are all equal (no learning signal in GRPO)."""
    groups, inv = torch.unique(group_index, return_inverse=True)
    hi = torch.full((len(groups),), -torch.inf).scatter_reduce(0, inv, rewards.float(), "amax")
    lo = torch.full((len(groups),), torch.inf).scatter_reduce(0, inv, rewards.float(), "amin")
    return (hi == lo)[inv]


def expand_to_tokens(adv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return adv[:, None].to(mask.dtype if mask.is_floating_point() else torch.float32) * mask
