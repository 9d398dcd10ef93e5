"""Turning rollouts + rewards into the learner's batch (pure logic: no Ray, no vLLM)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Sample:
    """One sampled response of one prompt, with everything the update needs."""

    group: int                   # index of the prompt within the step
    prompt_ids: list[int]
    response_ids: list[int]
    response_text: str
    finish_reason: str
    reward: float = 0.0
    reward_reason: str = "ok"
    correct: bool = False        # ground-truth grade (always computed, whatever the reward)
    ref_logprobs: list[float] | None = None
    token_advantages: list[float] | None = None
    step_labels: list[bool] | None = None    # the PRM's per-step verdicts when the variant's step part applies
    prm_verdict: bool | None = None          # the PRM's final Yes/No (None: no PRM, or no verdict)

    @property
    def input_ids(self) -> list[int]:
        return self.prompt_ids + self.response_ids


def group_advantages(samples: list[Sample], estimator: str, eps: float = 1e-6) -> torch.Tensor:
    from spark_rl.algos import compute_advantages

    rewards = torch.tensor([s.reward for s in samples], dtype=torch.float32)
    groups = torch.tensor([s.group for s in samples], dtype=torch.long)
    return compute_advantages(estimator, rewards, groups, eps=eps)


def learner_samples(samples: list[Sample], seq_advantages: torch.Tensor) -> list[dict]:
    """The dicts `Learner.pg_step` takes. Token-level advantages (step-aware rewards) win over the
    sequence advantage when a sample carries them."""
    out = []
    for s, a in zip(samples, seq_advantages.tolist()):
        adv = s.token_advantages if s.token_advantages is not None else a
        out.append({"input_ids": s.input_ids, "prompt_len": len(s.prompt_ids), "advantages": adv,
                    "old_logprobs": None, "ref_logprobs": s.ref_logprobs})
    return out


def token_level_advantages(variant: str, samples: list[Sample], seq_advantages: torch.Tensor,
                           decode: Callable[[list[int]], str], global_step_mix: float = 0.2) -> dict[str, int]:
    """Set `token_advantages` of every sample for a token-level variant (SPARK_SPEC Stage 3;
    `selective_advantage`, `global_step`): its `token_advantages` spreads the sequence advantage
    over the steps located in each response's tokens. Samples whose step part is off keep the
    sequence advantage (or what the variant makes of it). Returns counts: step part on / off, and
    where the decoded steps disagreed with the judged ones."""
    from spark_rl.rewards.shaping import locate_steps
    from spark_rl.rewards.variants import reward_variant

    v = reward_variant(variant)
    if not v.token_level:
        raise ValueError(f"{variant!r} has no token-level advantages")
    counts = {"step_part_on": 0, "step_part_off": 0, "step_locate_mismatch": 0}
    located = {}
    for i, s in enumerate(samples):
        if s.step_labels is None:
            continue
        where, n_found = locate_steps(decode, s.response_ids)
        if n_found != len(s.step_labels) or where.n_steps != len(s.step_labels):
            counts["step_locate_mismatch"] += 1
            continue
        located[i] = where
    shaped = v.token_advantages(seq_advantages.tolist(), located, {i: samples[i].step_labels for i in located},
                                [s.group for s in samples], [len(s.response_ids) for s in samples], global_step_mix)
    for i, adv in shaped.items():
        samples[i].token_advantages = adv
    counts["step_part_on"] = len(located)
    counts["step_part_off"] = len(samples) - len(located)
    return counts
