"""Turning rollouts + rewards into the learner's batch (pure logic: no Ray, no vLLM)."""

from __future__ import annotations

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
