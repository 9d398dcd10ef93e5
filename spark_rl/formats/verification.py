"""The Stage 1 verifier output format: parse it into verdicts, render it from verdicts.

    ## Step 1: <short title>
    <analysis of the step>
    **This step is correct.**        (or: **This step is incorrect.**)
    ...
    **Verification: Is the answer correct (Yes/No)? Yes**
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]*Step[ \t]+(\d+)\b", re.MULTILINE | re.IGNORECASE)
_VERDICT = re.compile(r"this\s+step\s+is\s+(in)?correct", re.IGNORECASE)
_FINAL = re.compile(r"Verification\s*:?\s*\**\s*Is\s+the\s+answer\s+correct\s*\(\s*Yes\s*/\s*No\s*\)\s*\?\s*\**\s*(Yes|No)\b",
                    re.IGNORECASE)

FLAGS = ("no_steps", "missing_verdict", "duplicate_step", "non_sequential", "missing_final", "missing_steps",
         "extra_steps")


def strip_think(text: str) -> str:
    """Remove `<think>...</think>` blocks, and an unclosed think prefix up to a lone `</think>`."""
    text = _THINK_BLOCK.sub("", text)
    close = text.lower().rfind("</think>")
    if close >= 0:
        text = text[close + len("</think>"):]
    return text


@dataclass
class ParsedVerification:
    step_labels: list[bool | None] = field(default_factory=list)   # None: the step had no verdict
    step_numbers: list[int] = field(default_factory=list)
    final: bool | None = None
    flags: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.flags

    @property
    def first_incorrect(self) -> int:
        for i, lab in enumerate(self.step_labels):
            if lab is False:
                return i
        return -1


def parse_verification(text: str, expected_steps: int | None = None) -> ParsedVerification:
    if not isinstance(text, str):
        text = ""
    body = strip_think(text)
    final_matches = list(_FINAL.finditer(body))
    final = None if not final_matches else final_matches[-1].group(1).lower() == "yes"
    end_of_steps = final_matches[-1].start() if final_matches else len(body)
    heads = [m for m in _HEADING.finditer(body) if m.start() < end_of_steps]
    labels: list[bool | None] = []
    numbers: list[int] = []
    for i, m in enumerate(heads):
        stop = heads[i + 1].start() if i + 1 < len(heads) else end_of_steps
        verdicts = _VERDICT.findall(body[m.end():stop])
        labels.append(None if not verdicts else verdicts[-1] == "")
        try:
            numbers.append(int(m.group(1)))
        except ValueError:   # absurdly long digit runs
            numbers.append(-1)
    return ParsedVerification(labels, numbers, final, _flags(labels, numbers, final, expected_steps))


def _flags(labels: list[bool | None], numbers: list[int], final: bool | None,
           expected_steps: int | None) -> tuple[str, ...]:
    """What is wrong with a parsed verification, in both formats (the step numbers as written)."""
    flags = []
    if not numbers:
        flags.append("no_steps")
    if any(lab is None for lab in labels):
        flags.append("missing_verdict")
    if len(set(numbers)) != len(numbers):
        flags.append("duplicate_step")
    elif numbers and numbers != list(range(1, len(numbers) + 1)):
        flags.append("non_sequential")
    if final is None:
        flags.append("missing_final")
    if expected_steps is not None and numbers:
        if len(numbers) < expected_steps:
            flags.append("missing_steps")
        elif len(numbers) > expected_steps:
            flags.append("extra_steps")
    return tuple(flags)


def _title(step: str, limit: int = 48) -> str:
    t = re.sub(r"^\s*Step\s+\d+\s*:\s*", "", " ".join(step.split()), flags=re.IGNORECASE)
    t = t.replace("<step>", "").replace("</step>", "")
    return t if len(t) <= limit else t[: limit - 3] + "..."


def render_verification(steps: list[str], labels: list[bool], final: bool,
                        analyses: list[str] | None = None, preamble: str | None = None) -> str:
    """The inverse of `parse_verification`: text in the exact verifier format. A `preamble` (the
    embedded verifier's list of the problem's operations) stands before the first step; the parser
    ignores it."""
    if len(labels) != len(steps):
        raise ValueError(f"render_verification: {len(steps)} steps but {len(labels)} labels")
    if analyses is not None and len(analyses) != len(steps):
        raise ValueError(f"render_verification: {len(steps)} steps but {len(analyses)} analyses")
    lines = [preamble] if preamble else []
    for k, (step, ok) in enumerate(zip(steps, labels), start=1):
        analysis = analyses[k - 1] if analyses else ("The step follows and checks out." if ok
                                                      else "The step does not hold.")
        lines += [f"## Step {k}: {_title(step)}", analysis,
                  "**This step is correct.**" if ok else "**This step is incorrect.**"]
    lines.append(f"**Verification: Is the answer correct (Yes/No)? {'Yes' if final else 'No'}**")
    return "\n".join(lines)


def render_step_labels(labels: list[bool], final: bool) -> str:
    """The plain PRM format (Stage 2): one `Step k: Correct|Incorrect` line per step + verdict."""
    lines = [f"Step {k}: {'Correct' if ok else 'Incorrect'}" for k, ok in enumerate(labels, start=1)]
    lines.append(f"**Verification: Is the answer correct (Yes/No)? {'Yes' if final else 'No'}**")
    return "\n".join(lines)


_PLAIN = re.compile(r"^[ \t]*Step[ \t]+(\d+)[ \t]*:[ \t]*(Correct|Incorrect)\b", re.MULTILINE | re.IGNORECASE)


def parse_step_labels(text: str, expected_steps: int | None = None) -> ParsedVerification:
    """Parse the plain PRM format into the same structure as a full verification."""
    if not isinstance(text, str):
        text = ""
    body = strip_think(text)
    found = _PLAIN.findall(body)
    final_matches = _FINAL.findall(body)
    final = None if not final_matches else final_matches[-1].lower() == "yes"
    numbers = [int(n) if len(n) < 9 else -1 for n, _ in found]
    labels: list[bool | None] = [v.lower() == "correct" for _, v in found]
    return ParsedVerification(labels, numbers, final, _flags(labels, numbers, final, expected_steps))
