"""Prompt builders for the verifier (Stage 1), its meta-critique passes, and the reward-model
formats (Stage 2). Pure string functions: one place defines every prompt the models see, so the
bootstrap's training data and the pipelines' inference prompts cannot drift apart."""

from __future__ import annotations

import re
from dataclasses import dataclass

VERIFIER_INSTRUCTION = (
    "Grade the student solution step by step. For each step write '## Step k: <title>', a short "
    "analysis, then **This step is correct.** or **This step is incorrect.** Once a step is wrong, "
    "every later step is incorrect. End with **Verification: Is the answer correct (Yes/No)? X**"
)
CRITIQUE_INSTRUCTION = (
    "Review the teacher verification. Look for missed errors, steps wrongly marked incorrect, wrong "
    "reasoning, and a final verdict inconsistent with the step verdicts. List each fault, or write "
    "'No issues found.'"
)
MERGE_INSTRUCTION = (
    "Rewrite the teacher verification as one improved verification in exactly the same format, "
    "fixing every step verdict the critique found at fault."
)
PRM_SUFFIX = "Let's verify step by step."
ORM_SUFFIX = "Is the answer correct (Yes/No)?"

_STEP_PREFIX = re.compile(r"^\s*Step\s+\d+\s*:\s*", re.IGNORECASE)


def present_solution(steps: list[str], answer: str | None = None) -> str:
    """One line per step, `Step k: ...`, numbered from 1 whatever the source numbering; the final
    answer (when known and not already in the last step) closes the last step."""
    lines = []
    for k, step in enumerate(steps, start=1):
        body = _STEP_PREFIX.sub("", " ".join(step.split()))
        lines.append(f"Step {k}: {body}")
    if answer is not None and lines and "\\boxed" not in lines[-1]:
        lines[-1] += f". The answer is \\boxed{{{answer}}}."
    return "\n".join(lines)


@dataclass(frozen=True)
class FewShotExample:
    question: str
    solution: str       # as `present_solution` renders it
    verification: str   # in the Stage 1 output format


def verifier_prompt(question: str, solution: str, expected_answer: str | None = None,
                    few_shot: tuple[FewShotExample, ...] = ()) -> str:
    """The 'teacher grading' prompt. With `expected_answer` it is the reference-guided variant."""
    parts = [VERIFIER_INSTRUCTION, ""]
    for ex in few_shot:
        parts += [f"Question: {ex.question}", "Student Solution:", ex.solution, "Teacher Verification:",
                  ex.verification, ""]
    parts += [f"Question: {question}", "Student Solution:", solution]
    if expected_answer is not None:
        parts.append(f"Expected Answer: {expected_answer}")
    parts.append("Teacher Verification:")
    return "\n".join(parts) + "\n"


def critique_prompt(question: str, solution: str, verification: str) -> str:
    return "\n".join([CRITIQUE_INSTRUCTION, "", f"Question: {question}", "Student Solution:", solution,
                      "Teacher Verification:", verification.strip(), "Critique:"]) + "\n"


def merge_prompt(question: str, solution: str, verification: str, critique: str) -> str:
    return "\n".join([MERGE_INSTRUCTION, "", f"Question: {question}", "Student Solution:", solution,
                      "Teacher Verification:", verification.strip(), "Critique:", critique.strip(),
                      "Improved Verification:"]) + "\n"


# ---- Stage 2 reward-model formats (SPARK_SPEC Stage 2) ------------------------------------
def orm_prompt(question: str, solution: str) -> str:
    return f"Problem: {question}\n\nSolution: {solution}\n\n{ORM_SUFFIX}\n"


def prm_prompt(question: str, solution: str) -> str:
    """Shared by the PRM, PRM-CoT and ThinkPRM formats (only the response format differs): the
    verifier's own prompt. The Stage 2 students start from the verifier and learn its verdicts; in
    another layout (`Problem: ... Student Solution: ... Let's verify step by step.`) the tiny
    verifier no longer finds the student's numbers (zero-shot: 3 of 60 correct solutions called
    correct, against 60 of 60 in its own layout), which ~300 training examples do not teach back."""
    return verifier_prompt(question, solution)


def _paper_prm_prompt(question: str, solution: str) -> str:
    """The paper-style PRM prompt layout; kept in the tokenizer corpus (which fixes the tokenizer
    of every shipped model) so that corpus does not change."""
    return f"Problem: {question}\n\nStudent Solution: {solution}\n\n{PRM_SUFFIX}\n"


def prompt_templates_for_corpus() -> list[str]:
    """Instruction texts, so the domain tokenizer learns them as a few tokens each."""
    sol = "Step 1: 3 + 4 = 7 The answer is \\boxed{7}."
    return [VERIFIER_INSTRUCTION, CRITIQUE_INSTRUCTION, MERGE_INSTRUCTION,
            verifier_prompt("Start with 3. Add 4. What is the result?", sol, expected_answer="7"),
            critique_prompt("Q", sol, "V"), merge_prompt("Q", sol, "V", "No issues found."),
            orm_prompt("Q", sol), _paper_prm_prompt("Q", sol)] * 20
