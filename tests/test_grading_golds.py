"""Acceptance: every gold answer of every benchmark file grades equal to itself with math-verify
itself (the exact-string shortcut off). ~13k golds, ~4k distinct: each distinct string is graded
once (grading a string against itself does not depend on which row it came from), split over two
processes."""

from concurrent.futures import ProcessPoolExecutor

import pytest

from spark_rl.tasks.loaders import BENCHMARK_FILES, load_benchmark

pytestmark = pytest.mark.integration


def _self_grade(answers: list[str]) -> list[str]:
    from spark_rl.grading import grade

    return [a for a in answers if not grade(a, a, exact_shortcut=False, timeout_s=10)]


def test_every_gold_grades_equal_to_itself():
    answers = [a for name in BENCHMARK_FILES for a in load_benchmark(name)["answer"]]
    assert len(answers) > 13000
    distinct = sorted(set(answers))
    chunks = [distinct[i::2] for i in range(2)]
    with ProcessPoolExecutor(2) as pool:
        failures = [a for part in pool.map(_self_grade, chunks) for a in part]
    assert failures == []
