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

from spark_rl.formats import extract_answer, split_steps
from spark_rl.formats.verification import render_verification
from spark_rl.tasks.arith import (
    ERROR_KINDS,
    ArithProblem,
    check_solution,
    early_stop_solution,
    inject_error,
    mistaken_analyses,
    operations_line,
    policy_prompt,
    reference_solution,
    step_analyses,
    step_title,
)
from spark_rl.verification.critique import NO_ISSUES, apply_critique, parse_critique, render_critique
from spark_rl.verification.prompts import critique_prompt, merge_prompt, present_solution, verifier_prompt


@dataclass(frozen=True)
class SFTExample:
    prompt: str
    response: str
    kind: str = ""      # "clean", an error kind, "noisy" ... (for data statistics)


def trailing_text(answer: str, other: ArithProblem, rng: random.Random) -> str:
    """What SFT'd models often write after their answer block: the answer restated, or the start
    of another problem. The format gate gives such a response reward 0 (SPARK_SPEC, Stage 3)."""
    if rng.random() < 0.5:
        return f"\nSo the answer is {answer}."
    return "\n" + policy_prompt(other).strip()


def policy_examples(problems: list[ArithProblem], slip_share: float, seed: int, lazy_share: float = 0.0,
                    lazy_min_ops: int = 4, trailing_share: float = 0.0) -> list[SFTExample]:
    """The policy's SFT data: reference solutions, `slip_share` of them with an injected error, and
    a lazy-teacher habit: on problems with `lazy_min_ops`+ operations, `lazy_share` of the solutions
    stop one step early and box the intermediate result. Above 0.5 the habit is the policy's mode
    (greedy decoding stops early on long problems) while sampling still finishes them often: the
    kind of learned-but-wrong behaviour an outcome reward can train away (the demo's RL headroom).
    `trailing_share` of the solutions go on after `</answer>` (`trailing_text`): a small habit the
    format gate exists for, so the hacking indicators have something to show from step 0."""
    rng = random.Random(seed)
    lazy_rng = random.Random(seed + 1)     # separate streams: a knob at 0 leaves the data unchanged
    trail_rng = random.Random(seed + 3)
    out = []
    for i, p in enumerate(problems):
        if rng.random() < slip_share:
            kind = rng.choice(ERROR_KINDS)
            text, _ = inject_error(p, kind, rng)
            ex = SFTExample(policy_prompt(p), text, kind)
        else:
            ex = SFTExample(policy_prompt(p), reference_solution(p), "clean")
        if lazy_share and len(p.ops) >= lazy_min_ops and lazy_rng.random() < lazy_share:
            ex = SFTExample(ex.prompt, early_stop_solution(p), "lazy")
        if trailing_share and trail_rng.random() < trailing_share:
            answer = extract_answer(ex.response) or ""
            ex = SFTExample(ex.prompt, ex.response + trailing_text(answer, problems[(i + 1) % len(problems)], trail_rng),
                            ex.kind + "+trailing")
        out.append(ex)
    return out


@dataclass(frozen=True)
class VerificationTarget:
    """Exact grading of one solution in the policy format, and how the verifier is shown it."""
    steps: list[str]            # the solution's steps
    labels: list[bool]          # exact step labels
    final: bool                 # exact final verdict
    analyses: list[str]         # per-step analyses that recompute before they judge
    shown: str                  # the solution as the verifier's prompt shows it
    titles: list[str]           # the heading of each step check (the student's step, copied)
    preamble: str               # the verifier's list of the problem's operations
    answer: str | None

    def render(self, labels: list[bool] | None = None, final: bool | None = None,
               analyses: list[str] | None = None) -> str:
        return render_verification(self.titles, self.labels if labels is None else labels,
                                   self.final if final is None else final,
                                   self.analyses if analyses is None else analyses, self.preamble)


def verification_target(p: ArithProblem, solution: str) -> VerificationTarget:
    split = split_steps(solution)
    check = check_solution(p, solution)
    labels = [bool(x) for x in check.step_correct]
    shown = present_solution(split.steps, check.answer)
    titles = [step_title(step, k, len(split.steps)) for k, step in enumerate(split.steps, start=1)]
    return VerificationTarget(split.steps, labels, bool(check.answer_correct) and all(labels),
                              step_analyses(p, split.steps, check.answer), shown, titles,
                              operations_line(p), check.answer)


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


def _graded_solution(p: ArithProblem, share_correct: float, rng: random.Random,
                     slip_weight: float = 0.0) -> tuple[str, str]:
    """A solution to grade: correct with `share_correct`, else an injected error; with `slip_weight`
    an arithmetic slip that often (the rest: the four kinds uniformly). Slips are where a grader that
    copies the student's result instead of computing it is caught: more of them teach computing."""
    if rng.random() < share_correct:
        return reference_solution(p), "clean"
    kind = "arithmetic_slip" if slip_weight and rng.random() < slip_weight else rng.choice(ERROR_KINDS)
    return inject_error(p, kind, rng)[0], kind


def _mistaken(p: ArithProblem, t: VerificationTarget, rng: random.Random) -> tuple[list[bool], list[str]] | None:
    """A grading of the same steps with one mistake: a slip in the grader's own computation that
    flags a correct step (None if the draw changed nothing or would miss an error instead: a trace
    that reads the student's wrong result as right teaches the grader to stop reading)."""
    new = noisy_labels(t.labels, rng)
    first = next((i for i, ok in enumerate(t.labels) if not ok), len(t.labels))
    new_first = next((i for i, ok in enumerate(new) if not ok), len(new))
    if new == t.labels or new_first > first:
        return None
    return new, mistaken_analyses(p, t.steps, new, rng, t.answer)


def _maybe_stopped_early(p: ArithProblem, solution: str, kind: str, share: float,
                         rng: random.Random) -> tuple[str, str]:
    """With probability `share`, an erroneous solution (of a 2+ operation problem) becomes one that
    stops a step early instead: what a lazy policy writes, so the verifier learns to count
    operations. Correct solutions stay as they are (`share_correct` keeps its meaning)."""
    if share and kind != "clean" and len(p.ops) >= 2 and rng.random() < share:
        return early_stop_solution(p), "stopped_early"
    return solution, kind


def verifier_examples(problems: list[ArithProblem], share_correct: float, label_noise: float,
                      seed: int, stopped_early_share: float = 0.0, slip_weight: float = 0.0) -> list[SFTExample]:
    rng = random.Random(seed)
    early_rng = random.Random(seed + 2)     # a separate stream: share 0 leaves the data unchanged
    out = []
    for p in problems:
        solution, kind = _maybe_stopped_early(p, *_graded_solution(p, share_correct, rng, slip_weight),
                                              stopped_early_share, early_rng)
        t = verification_target(p, solution)
        if not t.steps:
            continue
        labels, final, analyses = t.labels, t.final, t.analyses
        if rng.random() < label_noise and (m := _mistaken(p, t, rng)) is not None:
            (labels, analyses), kind = m, "noisy"
            final = all(labels)
        out.append(SFTExample(verifier_prompt(p.question, t.shown), t.render(labels, final, analyses), kind))
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
        t = verification_target(p, solution)
        if not t.steps:
            continue
        given, given_an, given_final, kind = t.labels, t.analyses, t.final, "exact"
        if rng.random() < mistake_share and (m := _mistaken(p, t, rng)) is not None:
            (given, given_an), kind = m, "mistaken"
            given_final = all(given)
        shown_ver = t.render(given, given_final, given_an)
        critique = render_critique(given, given_final, t.labels, t.final, t.analyses)
        out.append(SFTExample(critique_prompt(p.question, t.shown, shown_ver), critique, f"critique-{kind}"))
        if rng.random() < ignored_critique_share:
            critique = NO_ISSUES
        fixed, fixed_final = apply_critique(given, given_final, parse_critique(critique))
        # a merge that changed verdicts rewrites every step it now grades right with the exact analysis
        fixed_an = given_an if fixed == given else [x if ok == tr else a for a, x, ok, tr in
                                                    zip(given_an, t.analyses, fixed, t.labels)]
        out.append(SFTExample(merge_prompt(p.question, t.shown, shown_ver, critique),
                              t.render(fixed, fixed_final, fixed_an), f"merge-{kind}"))
    return out
