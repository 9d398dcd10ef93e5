"""The four Stage 2 reward-model formats (SPARK_SPEC, Stage 2): SFT pairs from a Stage 1 row, and
the prediction a generated output implies. Pure logic: no torch, ray or vllm.

    orm      Problem/Solution prompt -> `Yes` | `No`
    prm      PRM prompt -> `Step k: Correct|Incorrect` per step + the final verdict line
    prm-cot  PRM prompt -> the full Stage 1 verification (analysis + verdict per step + final)
    think    PRM prompt -> `<think>` one check per step `</think>` then `Step k: \\boxed{correct}` per step

A ProcessBench prediction is the 0-based index of the first step the output marks incorrect, -1 if
it marks all correct, None (unparsable, scored wrong) when its verdicts do not decide that: a
verdict missing before the first incorrect one, or fewer verdicts than steps and none incorrect.
A truncated output that already named the earliest error still decides it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spark_rl.formats.verification import (
    _HEADING,
    _VERDICT,
    parse_step_labels,
    parse_verification,
    render_step_labels,
    strip_think,
)
from spark_rl.verification.prompts import orm_prompt, present_solution, prm_prompt

FORMATS = ("orm", "prm", "prm-cot", "think")
_THINK_VERDICT = re.compile(r"^[ \t]*Step[ \t]+(\d{1,6})[ \t]*:[^\n]*?\\boxed\{\s*(correct|incorrect)\s*\}",
                            re.MULTILINE | re.IGNORECASE)
_ORM = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


@dataclass(frozen=True)
class PRMExample:
    prompt: str
    response: str


def step_analyses(verification: str, n_steps: int) -> list[str]:
    """The analysis text of each `## Step k` block of a verification (empty where missing)."""
    body = strip_think(verification)
    heads = list(_HEADING.finditer(body))
    out = [""] * n_steps
    for i, m in enumerate(heads):
        k = int(m.group(1)) - 1 if len(m.group(1)) < 7 else -1
        if not 0 <= k < n_steps:
            continue
        stop = heads[i + 1].start() if i + 1 < len(heads) else len(body)
        block = body[m.end():stop].split("\n", 1)[1] if "\n" in body[m.end():stop] else ""
        lines = [ln.strip() for ln in block.splitlines() if ln.strip() and not _VERDICT.search(ln)
                 and "Verification" not in ln]
        out[k] = " ".join(lines)
    return out


def render_think(labels: list[bool], analyses: list[str]) -> str:
    checks = [f"Checking step {k}: {a or ('it holds.' if ok else 'it does not hold.')}"
              for k, (ok, a) in enumerate(zip(labels, analyses), start=1)]
    verdicts = [f"Step {k}: \\boxed{{{'correct' if ok else 'incorrect'}}}" for k, ok in enumerate(labels, start=1)]
    return "<think>\n" + "\n".join(checks) + "\n</think>\n" + "\n".join(verdicts)


def sft_example(row: dict, fmt: str) -> PRMExample:
    """One SFT pair from a Stage 1 dataset row (`problem`, `solution`, `labels`, `final`, `target`)."""
    if fmt == "orm":
        return PRMExample(orm_prompt(row["problem"], row["solution"]), "Yes" if row["final"] else "No")
    prompt = prm_prompt(row["problem"], row["solution"])
    labels = [bool(x) for x in row["labels"]]
    if fmt == "prm":
        return PRMExample(prompt, render_step_labels(labels, bool(row["final"])))
    if fmt == "prm-cot":
        return PRMExample(prompt, row["target"])
    if fmt == "think":
        return PRMExample(prompt, render_think(labels, step_analyses(row["target"], len(labels))))
    raise ValueError(f"unknown PRM format {fmt!r}; known: {', '.join(FORMATS)}")


def eval_prompt(problem: str, steps: list[str], fmt: str, answer: str | None = None) -> str:
    """The prompt a trained PRM gets for a ProcessBench sample or a policy response (steps shown as
    `Step k: ...`; `answer`, when the steps do not box it already, closes the last step)."""
    shown = present_solution(steps, answer)
    return orm_prompt(problem, shown) if fmt == "orm" else prm_prompt(problem, shown)


def step_verdicts(text: str, fmt: str) -> list[bool | None]:
    """Per-step verdicts in output order (None: a step block without a verdict)."""
    if fmt == "prm-cot":
        return parse_verification(text).step_labels
    if fmt == "prm":
        return parse_step_labels(text).step_labels
    if fmt == "think":
        body = strip_think(text if isinstance(text, str) else "")
        return [v.lower() == "correct" for _, v in _THINK_VERDICT.findall(body)]
    raise ValueError(f"format {fmt!r} has no step verdicts")


def first_error_prediction(verdicts: list[bool | None], n_steps: int) -> int | None:
    for i, v in enumerate(verdicts[:n_steps]):
        if v is None:
            return None
        if v is False:
            return i
    return -1 if len(verdicts) >= n_steps else None


def predict(text: str, fmt: str, n_steps: int) -> int | None:
    """ProcessBench prediction of one output. An ORM's `No` names no step, so ORMs are refused."""
    if fmt == "orm":
        raise ValueError("an ORM names no step; ProcessBench-style evaluation needs prm, prm-cot or think")
    return first_error_prediction(step_verdicts(text, fmt), n_steps)


def orm_verdict(text: str) -> bool | None:
    m = _ORM.match(text if isinstance(text, str) else "")
    return None if m is None else m.group(1).lower() == "yes"
