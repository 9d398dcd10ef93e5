"""The SPARK format gate (SPARK_SPEC Stage 3): reward 0 unless the response is well formed.

Truncate at the first `</answer>`; pass iff the truncated text has exactly one `\\boxed{...}` and
exactly one `<answer>...</answer>` block, and nothing but whitespace follows `</answer>` in the
full response. The hacking indicators (what follows the answer, block counts) come back too."""

from __future__ import annotations

import re
from dataclasses import dataclass

from spark_rl.formats.answers import count_boxed

_OPEN, _CLOSE = "<answer>", "</answer>"


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reason: str            # "ok", "empty", "no_answer_block", "multiple_answer_blocks", "no_boxed",
                           # "multiple_boxed", "text_after_answer"
    text: str              # the response truncated after the first </answer> (what a PRM may see)
    after_answer: str      # everything after the first </answer> in the full response
    n_boxed: int           # in the full response
    n_answer_blocks: int   # in the full response


def format_gate(response: str) -> GateResult:
    if not isinstance(response, str) or not response.strip():
        return GateResult(False, "empty", "", "", 0, 0)
    n_blocks_all = len(re.findall(r"<answer>.*?</answer>", response, re.DOTALL))
    n_boxed_all = count_boxed(response)
    end = response.find(_CLOSE)
    if end < 0:
        return GateResult(False, "no_answer_block", response, "", n_boxed_all, n_blocks_all)
    cut = end + len(_CLOSE)
    text, after = response[:cut], response[cut:]

    def fail(reason: str) -> GateResult:
        return GateResult(False, reason, text, after, n_boxed_all, n_blocks_all)

    if text.count(_OPEN) == 0:
        return fail("no_answer_block")
    if text.count(_OPEN) > 1:
        return fail("multiple_answer_blocks")
    boxed = count_boxed(text)
    if boxed == 0:
        return fail("no_boxed")
    if boxed > 1:
        return fail("multiple_boxed")
    if after.strip():
        return fail("text_after_answer")
    return GateResult(True, "ok", text, after, n_boxed_all, n_blocks_all)
