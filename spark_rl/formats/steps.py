"""Splitting a solution into steps: `<step>` tags, else `## Step N` headings, else `Step N:` lines."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TAG = re.compile(r"<step\b[^>]*>(.*?)</step>", re.DOTALL | re.IGNORECASE)
_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]*Step[ \t]+(\d+)\b[^\n]*", re.MULTILINE | re.IGNORECASE)
_LABEL = re.compile(r"^[ \t]*\**Step[ \t]+(\d+)[ \t]*\**[ \t]*[:.)]", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True)
class StepSplit:
    steps: list[str] = field(default_factory=list)
    style: str = "none"          # "tag" | "heading" | "label" | "none"
    spans: list[tuple[int, int]] = field(default_factory=list)   # character span of each step in the text


def _blocks(text: str, pattern: re.Pattern) -> tuple[list[str], list[tuple[int, int]]]:
    starts = [m.start() for m in pattern.finditer(text)]
    steps, spans = [], []
    for i, s in enumerate(starts):
        e = starts[i + 1] if i + 1 < len(starts) else len(text)
        body = text[s:e]
        cut = body.find("<answer>")          # the answer block is not part of the last step
        if cut >= 0:
            e = s + cut
            body = body[:cut]
        steps.append(body.strip())
        spans.append((s, e))
    return steps, spans


def split_steps(text: str) -> StepSplit:
    if not isinstance(text, str) or not text.strip():
        return StepSplit()
    tags = list(_TAG.finditer(text))
    if tags:
        return StepSplit([m.group(1).strip() for m in tags], "tag", [m.span() for m in tags])
    for pattern, style in ((_HEADING, "heading"), (_LABEL, "label")):
        steps, spans = _blocks(text, pattern)
        if steps:
            if style == "heading":   # drop the heading marks, keep "Step k: ..."
                steps = [re.sub(r"^#{1,6}\s*", "", s) for s in steps]
            return StepSplit(steps, style, spans)
    return StepSplit()
