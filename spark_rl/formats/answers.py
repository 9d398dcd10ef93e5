"""Final-answer extraction: the last `\\boxed{...}` (nested braces), else an `Answer:` line."""

from __future__ import annotations

import re

_ANSWER_LINE = re.compile(r"^[ \t]*\**Answer\**[ \t]*:[ \t]*(.+?)[ \t]*$", re.MULTILINE | re.IGNORECASE)
_BOXED = "\\boxed"


def _boxed_contents(text: str) -> list[str | None]:
    """Contents of every `\\boxed{...}` in order; None for one whose braces never close."""
    out: list[str | None] = []
    i = 0
    while True:
        i = text.find(_BOXED, i)
        if i < 0:
            return out
        j = i + len(_BOXED)
        while j < len(text) and text[j] == " ":
            j += 1
        if j >= len(text) or text[j] != "{":
            i = j
            continue
        depth, k = 0, j
        while k < len(text):
            if text[k] == "{":
                depth += 1
            elif text[k] == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        out.append(text[j + 1:k] if depth == 0 and k < len(text) else None)
        i = k if depth == 0 else len(text)


def count_boxed(text: str) -> int:
    return len(_boxed_contents(text)) if isinstance(text, str) else 0


def extract_boxed(text: str) -> str | None:
    if not isinstance(text, str):
        return None
    found = _boxed_contents(text)
    if not found or found[-1] is None:
        return None
    return found[-1].strip()


def extract_answer_line(text: str) -> str | None:
    if not isinstance(text, str):
        return None
    found = _ANSWER_LINE.findall(text)
    return found[-1].strip() if found else None


def extract_answer(text: str) -> str | None:
    boxed = extract_boxed(text)
    return boxed if boxed is not None else extract_answer_line(text)
