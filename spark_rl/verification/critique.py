"""Meta-critique text (SPARK Stage 1, sequential scaling): the critique format, its parser, and
what a critique implies for a verification's labels.

A critique is one line per fault, then nothing else:
    Step 2 is marked correct, but 4 * 3 = 12, not 13.
    Step 3 is marked incorrect, but 12 + 5 = 17 is right.
    The final verdict should be No.
or the single line `No issues found.` The merge pass rewrites the verification with these faults
fixed; `apply_critique` is the same rule in code (for training targets and as a check on merges).
Pure logic: no ray, vllm or torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

NO_ISSUES = "No issues found."
_FAULT = re.compile(r"^\s*Step\s+(\d+)\s+is\s+marked\s+(correct|incorrect)\b", re.IGNORECASE)
_FINAL = re.compile(r"final\s+verdict\s+should\s+be\s+(Yes|No)\b", re.IGNORECASE)


def render_critique(given: list[bool], given_final: bool, truth: list[bool], true_final: bool,
                    reasons: list[str] | None = None) -> str:
    """The critique of a verification with labels `given` of a solution whose exact labels are
    `truth`; `reasons[k]` (the grader's analysis of step k) explains each fault."""
    if len(given) != len(truth):
        raise ValueError(f"render_critique: {len(given)} given labels for {len(truth)} steps")
    lines = []
    for k, (g, t) in enumerate(zip(given, truth), start=1):
        if g == t:
            continue
        why = reasons[k - 1].rstrip(".") if reasons else ("the step does not hold" if g else "the step holds")
        why = why[0].lower() + why[1:] if why else why
        lines.append(f"Step {k} is marked {'correct' if g else 'incorrect'}, but {why}.")
    if given_final != true_final:
        lines.append(f"The final verdict should be {'Yes' if true_final else 'No'}.")
    return "\n".join(lines) or NO_ISSUES


@dataclass
class Critique:
    flips: dict[int, bool] = field(default_factory=dict)   # 0-based step -> the label it should have
    final: bool | None = None                              # the final verdict it should have, if named
    no_issues: bool = False
    parsed: bool = True                                    # False: neither faults nor "No issues found."


def parse_critique(text: str) -> Critique:
    """Tolerant: unknown lines are ignored; a text with no recognisable line is `parsed=False`."""
    text = text if isinstance(text, str) else ""
    out = Critique()
    for line in text.splitlines():
        if m := _FAULT.match(line):
            # "marked correct" -> it should be incorrect, and the other way round
            out.flips[int(m.group(1)) - 1] = m.group(2).lower() == "incorrect"
        elif m := _FINAL.search(line):
            out.final = m.group(1).lower() == "yes"
        elif line.strip().lower().startswith(NO_ISSUES.lower().rstrip(".")):
            out.no_issues = True
    out.parsed = bool(out.flips or out.final is not None or out.no_issues)
    return out


def apply_critique(labels: list[bool], final: bool, critique: Critique) -> tuple[list[bool], bool]:
    """Labels after the critique's fixes; faults naming steps beyond the solution are ignored.
    Without an explicit final verdict the final follows the fixed steps when any step changed."""
    fixed = list(labels)
    for i, ok in critique.flips.items():
        if 0 <= i < len(fixed):
            fixed[i] = ok
    if critique.final is not None:
        return fixed, critique.final
    return fixed, (all(fixed) if fixed != labels else final)
