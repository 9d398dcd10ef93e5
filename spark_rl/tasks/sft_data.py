"""Supervised data for the bootstrap of the embedded models (pure: no torch, no engines).

* policy: (prompt, solution) pairs; a share of the solutions carry an injected error so the
  bootstrapped policy errs the way a real one does and RL has something to fix.
* verifier: (verification prompt, verification trace) pairs in the Stage 1 format, from exact
  step labels; with `label_noise` a share of traces carries a wrong verdict, so one verification
  is imperfect and self-consistency has something to gain.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from spark_rl.formats import split_steps
from spark_rl.formats.verification import render_verification
from spark_rl.tasks.arith import (
    ERROR_KINDS,
    ArithProblem,
    check_solution,
    inject_error,
    policy_prompt,
    reference_solution,
    step_analyses,
)
from spark_rl.verification.prompts import present_solution, verifier_prompt


@dataclass(frozen=True)
class SFTExample:
    prompt: str
    response: str
    kind: str = ""      # "clean", an error kind, "noisy" ... (for data statistics)


def policy_examples(problems: list[ArithProblem], slip_share: float, seed: int) -> list[SFTExample]:
    rng = random.Random(seed)
    out = []
    for p in problems:
        if rng.random() < slip_share:
            kind = rng.choice(ERROR_KINDS)
            text, _ = inject_error(p, kind, rng)
            out.append(SFTExample(policy_prompt(p), text, kind))
        else:
            out.append(SFTExample(policy_prompt(p), reference_solution(p), "clean"))
    return out


def verification_target(p: ArithProblem, solution: str) -> tuple[list[str], list[bool], bool, list[str], str]:
    """Exact step labels of a solution in the policy format: (steps, labels, final verdict,
    per-step analyses, solution as the verifier sees it)."""
    split = split_steps(solution)
    check = check_solution(p, solution)
    labels = [bool(x) for x in check.step_correct]
    final = bool(check.answer_correct) and all(labels)
    analyses = step_analyses(p, split.steps, check.answer)
    return split.steps, labels, final, analyses, present_solution(split.steps, check.answer)


def noisy_labels(labels: list[bool], rng: random.Random) -> list[bool]:
    """One plausible grading mistake: miss the first error, or flag a correct step early; the
    verdicts after the (new) first error follow the 'once wrong, all later wrong' rule."""
    first = next((i for i, ok in enumerate(labels) if not ok), None)
    if first is not None and rng.random() < 0.5:
        # miss the first error: call it correct, and flag a later step (or none) instead
        later = rng.randrange(first + 1, len(labels) + 1)
    else:
        later = rng.randrange(0, len(labels)) if first is None else rng.randrange(0, first + 1)
    return [i < later for i in range(len(labels))]


def verifier_examples(problems: list[ArithProblem], share_correct: float, label_noise: float,
                      seed: int) -> list[SFTExample]:
    rng = random.Random(seed)
    out = []
    for p in problems:
        if rng.random() < share_correct:
            solution, kind = reference_solution(p), "clean"
        else:
            kind = rng.choice(ERROR_KINDS)
            solution, _ = inject_error(p, kind, rng)
        steps, labels, final, analyses, shown = verification_target(p, solution)
        if not steps:
            continue
        if rng.random() < label_noise:
            new = noisy_labels(labels, rng)
            if new != labels:
                analyses = [a if old == ok else ("The step checks out." if ok else "The step does not hold.")
                            for a, old, ok in zip(analyses, labels, new)]
                kind, labels, final = "noisy", new, all(new)
        out.append(SFTExample(verifier_prompt(p.question, shown), render_verification(steps, labels, final, analyses),
                              kind))
    return out
