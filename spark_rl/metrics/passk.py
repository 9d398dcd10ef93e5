"""pass@k (unbiased estimator, Chen et al. 2021) and maj@k."""

from __future__ import annotations

from collections import Counter
from math import comb


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) is correct."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def mean_pass_at_k(correct: list[list[bool]], k: int) -> float:
    if not correct:
        return 0.0
    return sum(pass_at_k(len(c), sum(c), k) for c in correct) / len(correct)


def majority_answer(answers: list[str | None]) -> str | None:
    """Most frequent answer (exact match after strip; None answers do not vote); ties -> first seen."""
    votes = [a.strip() for a in answers if a is not None and a.strip()]
    if not votes:
        return None
    counts = Counter(votes)
    best = max(counts.values())
    return next(a for a in votes if counts[a] == best)


def maj_at_k(answers: list[str | None], k: int, is_correct) -> bool:
    """Whether the majority answer of the first k samples is correct (`is_correct(answer) -> bool`)."""
    winner = majority_answer(answers[:k])
    return winner is not None and bool(is_correct(winner))
