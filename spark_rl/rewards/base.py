"""The reward interface every reward worker implements, whatever computes the score."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class RewardInput:
    sample_id: str
    problem: str                 # the question, as the PRM should see it
    response: str                # the policy's full response text
    answer: str | None = None    # ground truth; only the rule reward and validation read it


@dataclass
class RewardOutput:
    reward: float
    reason: str = "ok"                         # why this value: "ok", "gate:<reason>", "unparsable", ...
    step_labels: list[bool] | None = None      # the judge's per-step verdicts, aligned to policy steps
    num_policy_steps: int | None = None
    info: dict = field(default_factory=dict)   # raw judge text, verdict, timings: for logs only


def sanitize(outputs: list[RewardOutput], expected: int) -> tuple[list[RewardOutput], dict[str, int]]:
    """The driver's guard on whatever a reward worker returned: the right count, finite numbers.
    Non-finite rewards become 0 with reason "nonfinite" (counted, never a silent NaN)."""
    if len(outputs) != expected:
        raise RuntimeError(f"reward worker returned {len(outputs)} results for {expected} samples")
    counts: dict[str, int] = {}
    for o in outputs:
        if not isinstance(o.reward, (int, float)) or not math.isfinite(o.reward):
            o.info["raw_reward"] = repr(o.reward)
            o.reward, o.reason = 0.0, "nonfinite"
        counts[o.reason] = counts.get(o.reason, 0) + 1
    return outputs, counts
