import json
import random
import subprocess
import sys

import pytest

from spark_rl.tasks.arith import (
    ERROR_KINDS,
    check_solution,
    generate_problems,
    inject_error,
    reference_solution,
    step_analyses,
)
from spark_rl.tasks.processbench import label_distribution, make_arith_processbench, recheck_label


def test_generator_is_seeded_and_bounded():
    a = generate_problems(200, seed=3, word_share=0.5)
    assert a == generate_problems(200, seed=3, word_share=0.5)
    assert a != generate_problems(200, seed=4, word_share=0.5)
    assert len({p.question for p in a}) == 200
    for p in a:
        assert 3 <= len(p.ops) <= 6
        assert all(0 <= v <= 99 for v in p.values) and p.values[-1] == p.answer


def test_reference_solutions_are_fully_correct():
    for p in generate_problems(300, seed=0, word_share=0.3):
        c = check_solution(p, reference_solution(p))
        assert c.first_error == -1 and all(c.step_correct) and c.answer_correct and c.complete


@pytest.mark.parametrize("kind", ERROR_KINDS)
def test_injected_errors_have_the_labels_the_checker_finds(kind):
    rng = random.Random(1)
    for seed in range(150):
        for p in generate_problems(4, seed=seed):
            text, label = inject_error(p, kind, rng)
            c = check_solution(p, text)
            assert c.first_error == label, (kind, text, label, c)
            assert 0 <= label < len(p.ops)


def test_checker_rules_on_odd_text():
    p = generate_problems(1, seed=5)[0]
    assert check_solution(p, "").first_error == 0
    assert check_solution(p, "I don't know").first_error == 0
    ref = reference_solution(p)
    extra = ref.replace("<answer>", "<step>Step 9: 1 + 1 = 2</step>\n<answer>")
    c = check_solution(p, extra)
    assert c.first_error == len(p.ops)          # the extra step is the error
    lines = ref.splitlines()
    short = "\n".join(lines[:1] + [lines[-1]])  # stops after one right step, with the right answer
    assert check_solution(p, short).first_error == 0 and not check_solution(p, short).complete


def test_analyses_explain_the_error():
    p = generate_problems(1, seed=2)[0]
    text, label = inject_error(p, "arithmetic_slip", random.Random(0))
    from spark_rl.formats import extract_answer, split_steps

    notes = step_analyses(p, split_steps(text).steps, extract_answer(text))
    assert "does not match" in notes[label] and all("It matches." in n for n in notes[:label])
    # it recomputes before it judges: the error step shows the grader's own, right computation
    vals = p.values
    op, b = p.ops[label]
    assert f": {vals[label]} {op} {b} makes {vals[label + 1]}; the step has " in notes[label]


def test_synthetic_processbench_independent_recheck():
    rows = make_arith_processbench(1000, seed=0, word_share=0.3)
    assert len(rows) == 1000
    assert all(recheck_label(r) == r["label"] for r in rows)
    dist = label_distribution(rows)
    assert 0.3 < dist["share_correct"] < 0.5
    assert all(("\\boxed" in r["steps"][-1]) for r in rows)


def test_cli_writes_rows(tmp_path):
    out = subprocess.run([sys.executable, "-m", "spark_rl.cli", "data", "arith-processbench", "--n", "1000",
                          "--seed", "0", "--out", str(tmp_path)], capture_output=True, text=True, check=True)
    rows = [json.loads(x) for x in (tmp_path / "arith.jsonl").read_text().splitlines()]
    assert len(rows) == 1000 and "share of label -1" in out.stdout
    assert sum(recheck_label(r) == r["label"] for r in rows) == 1000
