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


VERIFIER_PHRASES = [
    "Operations: (1) Add 3. (2) Subtract 4. (3) Multiply by 2. (4) Add 9.",
    "## Step 1: Add 3", "## Step 2: Subtract 4", "## Step 3: Multiply by 2 (last step)",
    "12 - 7 = 5; the step says 5. It matches.", "9 + 4 = 13; the step says 15. It does not match.",
    "15 * 2 = 30; the step says 28. It builds on an earlier error.", "It matches. Op 4 is not done.",
    "The answer should be 13, not 12.", "The answer 13 is right.", "The problem has no op 5.",
    "the step has no result.", "There is no final answer.", "So the answer is 14.",
    "Step 2 is marked correct, but 9 + 4 = 13; the step says 15. It does not match.",
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
    # the phrases of the recomputing verifier's analyses and the policy's trailing text, fixed here
    # (not drawn from the SFT data code) so the tokenizer does not change when that code does
    texts += VERIFIER_PHRASES * 20
    return texts
