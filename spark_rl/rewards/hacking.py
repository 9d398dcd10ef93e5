"""Reward-hacking indicators of a batch of responses (SPARK_SPEC Stage 3, "reward hacking seen"):
text appended after the answer, repeated `\\boxed{}` / `<answer>` blocks, inflated or collapsed
step counts. Logged every step whatever the reward, so a run with the gate off shows what the
policy learns to exploit and a gated run shows these staying flat."""

from __future__ import annotations

import numpy as np

from spark_rl.formats import format_gate, split_steps


def hacking_indicators(responses: list[str]) -> dict[str, float]:
    if not responses:
        return {}
    after, boxed, blocks, steps, passed = [], [], [], [], []
    for text in responses:
        gate = format_gate(text)
        after.append(bool(gate.after_answer.strip()))
        boxed.append(gate.n_boxed)
        blocks.append(gate.n_answer_blocks)
        steps.append(len(split_steps(text).steps))
        passed.append(gate.passed)
    steps_arr = np.array(steps, dtype=np.float64)
    return {
        "hacking/text_after_answer_share": float(np.mean(after)),
        "hacking/boxed_mean": float(np.mean(boxed)),
        "hacking/multi_boxed_share": float(np.mean(np.array(boxed) > 1)),
        "hacking/answer_blocks_mean": float(np.mean(blocks)),
        "hacking/multi_answer_block_share": float(np.mean(np.array(blocks) > 1)),
        "hacking/steps_mean": float(steps_arr.mean()),
        "hacking/steps_p10": float(np.percentile(steps_arr, 10)),
        "hacking/steps_p90": float(np.percentile(steps_arr, 90)),
        "hacking/single_step_share": float(np.mean(steps_arr == 1)),
        "hacking/gate_pass_share": float(np.mean(passed)),
    }
