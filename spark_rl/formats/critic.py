"""ProcessBench critic prompting: paragraph-tagged prompt; the answer is the earliest wrong
paragraph index (0-based) in `\\boxed{}`, -1 if all are correct."""

from __future__ import annotations

import re

from spark_rl.formats.answers import _boxed_contents

_INT = re.compile(r"^\s*(-?\d{1,6})\s*$")


def parse_critic_answer(text: str) -> int | None:
    """The last `\\boxed{...}` whose content is an integer; None when there is none."""
    if not isinstance(text, str):
        return None
    for content in reversed(_boxed_contents(text)):
        if content is None:
            continue
        m = _INT.match(content)
        if m:
            return int(m.group(1))
    return None


def critic_prompt(problem: str, steps: list[str]) -> str:
    tagged = "\n\n".join(f"<paragraph_{i}>\n{s}\n</paragraph_{i}>" for i, s in enumerate(steps))
    return (
        "The following is a math problem and a solution (split into paragraphs, enclosed with tags "
        "and indexed from 0):\n\n"
        f"[Math Problem]\n\n{problem}\n\n[Solution]\n\n{tagged}\n\n"
        "Your task is to review and critique the solution paragraph by paragraph. Once you identify "
        "an error in a paragraph, return the index of the paragraph where the earliest error occurs. "
        "Otherwise, return the index of -1 (which typically denotes \"not found\").\n\n"
        "Please put your final answer (i.e., the index) in \\boxed{}.\n"
    )
