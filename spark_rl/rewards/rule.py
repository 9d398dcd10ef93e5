"""The ground-truth (RLVR) reward: 1 if the response's final answer grades equal to the gold answer."""

from __future__ import annotations

from spark_rl.formats import extract_answer, format_gate
from spark_rl.grading import grade
from spark_rl.rewards.base import RewardInput, RewardOutput


def rule_reward(inp: RewardInput, use_gate: bool = False) -> RewardOutput:
    if inp.answer is None or str(inp.answer).strip() == "":
        return RewardOutput(0.0, reason="no_gold_answer")
    text = inp.response
    if use_gate:
        gate = format_gate(inp.response)
        if not gate.passed:
            return RewardOutput(0.0, reason=f"gate:{gate.reason}")
        text = gate.text
    pred = extract_answer(text)
    if pred is None:
        return RewardOutput(0.0, reason="no_answer")
    ok = grade(pred, str(inp.answer))
    return RewardOutput(1.0 if ok else 0.0, reason="ok", info={"pred": pred})
