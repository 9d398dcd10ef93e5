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
    early_stop_solution,
    inject_error,
    policy_prompt,
    reference_solution,
    step_analyses,
)
from spark_rl.verification.critique import NO_ISSUES, apply_critique, parse_critique, render_critique
from spark_rl.verification.prompts import critique_prompt, merge_prompt, present_solution, verifier_prompt


@dataclass(frozen=True)
class SFTExample:
    prompt: str
    response: str
    kind: str = ""      # "clean", an error kind, "noisy" ... (for data statistics)


def policy_examples(problems: list[ArithProblem], slip_share: float, seed: int, lazy_share: float = 0.0,
                    lazy_min_ops: int = 4) -> list[SFTExample]:
    """The policy's SFT data: reference solutions, `slip_share` of them with an injected error, and
    a lazy-teacher habit: on problems with `lazy_min_ops`+ operations, `lazy_share` of the solutions
    stop one step early and box the intermediate result. Above 0.5 the habit is the policy's mode
    (greedy decoding stops early on long problems) while sampling still finishes them often: the
    kind of learned-but-wrong behaviour an outcome reward can train away (the demo's RL headroom)."""
    rng = random.Random(seed)
    lazy_rng = random.Random(seed + 1)     # a separate stream: lazy_share=0 leaves the data unchanged
    out = []
    for p in problems:
        if rng.random() < slip_share:
            kind = rng.choice(ERROR_KINDS)
            text, _ = inject_error(p, kind, rng)
            ex = SFTExample(policy_prompt(p), text, kind)
        else:
            ex = SFTExample(policy_prompt(p), reference_solution(p), "clean")
        if lazy_share and len(p.ops) >= lazy_min_ops and lazy_rng.random() < lazy_share:
            ex = SFTExample(ex.prompt, early_stop_solution(p), "lazy")
        out.append(ex)
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


def _graded_solution(p: ArithProblem, share_correct: float, rng: random.Random) -> tuple[str, str]:
    if rng.random() < share_correct:
        return reference_solution(p), "clean"
    kind = rng.choice(ERROR_KINDS)
    return inject_error(p, kind, rng)[0], kind


def _mistaken(labels: list[bool], analyses: list[str], rng: random.Random) -> tuple[list[bool], list[str]] | None:
    """A grading of the same steps with one mistake (None if the draw changed nothing)."""
    new = noisy_labels(labels, rng)
    if new == labels:
        return None
    return new, [a if old == ok else ("The step checks out." if ok else "The step does not hold.")
                 for a, old, ok in zip(analyses, labels, new)]


def _maybe_stopped_early(p: ArithProblem, solution: str, kind: str, share: float,
                         rng: random.Random) -> tuple[str, str]:
    """With probability `share`, an erroneous solution (of a 2+ operation problem) becomes one that
    stops a step early instead: what a lazy policy writes, so the verifier learns to count
    operations. Correct solutions stay as they are (`share_correct` keeps its meaning)."""
    if share and kind != "clean" and len(p.ops) >= 2 and rng.random() < share:
        return early_stop_solution(p), "stopped_early"
    return solution, kind


def verifier_examples(problems: list[ArithProblem], share_correct: float, label_noise: float,
                      seed: int, stopped_early_share: float = 0.0) -> list[SFTExample]:
    rng = random.Random(seed)
    early_rng = random.Random(seed + 2)     # a separate stream: share 0 leaves the data unchanged
    out = []
    for p in problems:
        solution, kind = _maybe_stopped_early(p, *_graded_solution(p, share_correct, rng), stopped_early_share,
                                              early_rng)
        steps, labels, final, analyses, shown = verification_target(p, solution)
        if not steps:
            continue
        if rng.random() < label_noise and (m := _mistaken(labels, analyses, rng)) is not None:
            (labels, analyses), kind = m, "noisy"
            final = all(labels)
        out.append(SFTExample(verifier_prompt(p.question, shown), render_verification(steps, labels, final, analyses),
                              kind))
    return out


def meta_critique_examples(problems: list[ArithProblem], share_correct: float, mistake_share: float,
                           ignored_critique_share: float, seed: int,
                           stopped_early_share: float = 0.0) -> list[SFTExample]:
    """Two examples per problem for the sequential-scaling passes of the verifier:
    * critique: (verification with a grading mistake in `mistake_share` of cases) -> the list of
      its faults against the exact labels, or "No issues found.";
    * merge: (verification, critique) -> the verification with the critique's fixes applied. In
      `ignored_critique_share` of cases the critique shown is "No issues found." whatever the faults,
      and the target keeps the verification as it is: merge applies the critique, it does not regrade.
    """
    rng = random.Random(seed)
    early_rng = random.Random(seed + 2)
    out = []
    for p in problems:
        solution, _ = _maybe_stopped_early(p, *_graded_solution(p, share_correct, rng), stopped_early_share,
                                           early_rng)
        steps, labels, final, analyses, shown = verification_target(p, solution)
        if not steps:
            continue
        given, given_an, given_final, kind = labels, analyses, final, "exact"
        if rng.random() < mistake_share and (m := _mistaken(labels, analyses, rng)) is not None:
            (given, given_an), kind = m, "mistaken"
            given_final = all(given)
        shown_ver = render_verification(steps, given, given_final, given_an)
        critique = render_critique(given, given_final, labels, final, analyses)
        out.append(SFTExample(critique_prompt(p.question, shown, shown_ver), critique, f"critique-{kind}"))
        if rng.random() < ignored_critique_share:
            critique = NO_ISSUES
        fixed, fixed_final = apply_critique(given, given_final, parse_critique(critique))
        fixed_an = [a if ok == g else t for a, t, ok, g in zip(given_an, analyses, fixed, given)]
        out.append(SFTExample(merge_prompt(p.question, shown, shown_ver, critique),
                              render_verification(steps, fixed, fixed_final, fixed_an), f"merge-{kind}"))
    return out
