"""The tokenizer's training corpus: texts of every kind the tiny models read and write."""

from __future__ import annotations

import random

FORMAT_MARKERS = [
    "<step>Step 1: 12 + 7 = 19</step>", "<answer>\\boxed{19}</answer>",
    "## Step 1: ", "**This step is correct.**", "**This step is incorrect.**",
    "**Verification: Is the answer correct (Yes/No)? Yes**",
    "**Verification: Is the answer correct (Yes/No)? No**",
    "Problem: ", "Solution: ", "Student Solution: ", "Let's verify step by step.",
    "Is the answer correct (Yes/No)?", "Step 1: Correct", "Step 2: Incorrect", "Answer: 42",
    "<think>", "</think>", "<paragraph_0>", "</paragraph_0>", "\\boxed{-1}", "\\frac{1}{2}",
]


def domain_corpus(seed: int = 0, n_problems: int = 400) -> list[str]:
    """Deterministic corpus: domain problems, reference and erroneous solutions, verifications,
    and the prompt templates of every stage."""
    from spark_rl.formats import render_verification, split_steps
    from spark_rl.tasks.arith import (
        ERROR_KINDS,
        generate_problems,
        inject_error,
        policy_prompt,
        reference_solution,
    )
    from spark_rl.verification.prompts import prompt_templates_for_corpus

    rng = random.Random(seed)
    texts: list[str] = list(FORMAT_MARKERS) + prompt_templates_for_corpus()
    for p in generate_problems(n_problems, seed=seed, word_share=0.5):
        ref = reference_solution(p)
        texts += [policy_prompt(p), ref]
        bad, err = inject_error(p, rng.choice(ERROR_KINDS), rng)
        steps = split_steps(bad).steps
        labels = [i < err for i in range(len(steps))]
        texts += [bad, render_verification(steps, labels, final=False)]
    return texts
