"""The embedded verifier reasons before it judges (pure logic): its training traces recompute each
step from the problem's operation and its own previous result, compare, then give the verdict;
mistaken traces keep the verdict consistent with the (wrong) visible comparison; the policy's
trailing-text habit; the PRM's agreement with the ground truth; bootstrap intervals of F1."""

import random
import re

import pytest

from spark_rl.formats import extract_answer, format_gate, parse_verification, split_steps
from spark_rl.metrics import f1_diff_interval, f1_interval, processbench_scores
from spark_rl.rewards.agreement import prm_agreement
from spark_rl.tasks.arith import (
    ERROR_KINDS,
    apply_op,
    check_solution,
    early_stop_solution,
    inject_error,
    operations_line,
    reference_solution,
)
from spark_rl.tasks.domain import DomainConfig
from spark_rl.tasks.sft_data import policy_examples, verification_target, verifier_examples

_REDO = re.compile(r"^\((\d+)\) (?:Add|Subtract|Multiply by) \d+: (-?\d+) ([+\-*]) (\d+) makes (-?\d+)"
                   r"(?:; the step has (?:(?:-?\d+ [+\-*] \d+ = )?(-?\d+)|no result)\. "
                   r"It (matches|does not match|builds on an earlier error)\.)")
_OPS = {"Add": "+", "Subtract": "-", "Multiply by": "*"}


def test_operations_line_lists_the_problems_operations_in_order():
    p = DomainConfig().problems(1, 5)[0]
    line = operations_line(p)
    assert line.startswith("Operations: ") and line.count("(") == len(p.ops)
    for k, (op, b) in enumerate(p.ops, start=1):
        assert f"({k}) {({'+': 'Add', '-': 'Subtract', '*': 'Multiply by'}[op])} {b}." in line
    assert all(f"{({'+': 'Add', '-': 'Subtract', '*': 'Multiply by'}[op])} {b}." in p.question for op, b in p.ops)


@pytest.mark.parametrize("kind", ("clean", *ERROR_KINDS, "stopped_early"))
def test_exact_traces_recompute_then_compare_then_judge(kind):
    rng = random.Random(3)
    for p in DomainConfig().problems(200, 11):
        if kind == "clean":
            text = reference_solution(p)
        elif kind == "stopped_early":
            text = early_stop_solution(p)
        else:
            text = inject_error(p, kind, rng)[0]
        t = verification_target(p, text)
        rendered = t.render()
        v = parse_verification(rendered)
        assert v.ok and v.step_labels == t.labels == check_solution(p, text).step_correct
        assert rendered.startswith(operations_line(p))
        prev, broken = p.start, False
        for k, (analysis, ok) in enumerate(zip(t.analyses, t.labels), start=1):
            m = _REDO.search(analysis)
            if m is None:        # only a step past the problem's operations has no computation
                assert k > len(p.ops) and not ok
                break
            n, a, op, b, c, says, verdict = m.groups()
            # the grader's own computation: its own previous result and the problem's k-th operation
            # (looked up by number), never the student's numbers; the heading copies the student's step
            assert int(n) == k and int(a) == prev and (op, int(b)) == p.ops[k - 1]
            assert int(c) == apply_op(prev, op, int(b))
            word = {"+": "Add", "-": "Subtract", "*": "Multiply by"}[op]
            assert analysis.startswith(f"({k}) {word} {b}: ")
            eq = parse_equation_of(t.steps[k - 1])
            if eq is not None:
                assert t.titles[k - 1].startswith(f"{eq[0]} {eq[1]} {eq[2]} = {eq[3]}")
                assert says is None or int(says) == eq[3]       # the student's number, as the heading shows it
            if broken:
                assert verdict == "builds on an earlier error" and not ok       # propagation
            else:
                assert (verdict == "matches") == (eq == (prev, op, int(b), int(c)))
                if verdict != "matches":
                    assert not ok
                    broken = True
            prev = int(c)
        if kind == "stopped_early":
            assert t.analyses[-1].endswith(f"Op {len(t.steps) + 1} is not done.") and not t.labels[-1]
        if kind == "wrong_final_answer":
            assert "The answer should be" in t.analyses[-1] and not t.labels[-1]
        if kind == "clean":
            assert t.analyses[-1].endswith(f"The answer {p.answer} is right.") and all(t.labels)
        # the last heading says it is the last step: where the answer and a missing operation are checked
        assert t.titles[-1].endswith("(last step)") and not any(x.endswith("(last step)") for x in t.titles[:-1])
        assert "\\boxed{" in t.shown.splitlines()[-1]


def parse_equation_of(step):
    from spark_rl.tasks.arith import parse_equation

    return parse_equation(step)


def test_noisy_traces_judge_by_their_own_visible_comparison():
    problems = DomainConfig().problems(1500, 4)
    ex = verifier_examples(problems, share_correct=0.4, label_noise=0.3, seed=0, stopped_early_share=0.25)
    noisy = [e for e in ex if e.kind == "noisy"]
    assert 0.08 < len(noisy) / len(ex) < 0.2     # false alarms only: misses are not drawn
    for e in noisy:
        v = parse_verification(e.response)
        assert v.ok and v.final == all(v.step_labels)
        blocks = e.response.split("## Step ")[1:]
        for block, ok in zip(blocks, v.step_labels):
            if "It matches." in block:
                assert ok
            if "It does not match." in block:
                assert not ok
            if not ok:
                break


def test_policy_trailing_text_habit():
    problems = DomainConfig().problems(3000, 0)
    plain = policy_examples(problems, 0.25, 0, 0.7, 4)
    assert policy_examples(problems, 0.25, 0, 0.7, 4, trailing_share=0.0) == plain
    ex = policy_examples(problems, 0.25, 0, 0.7, 4, trailing_share=0.12)
    trailing = [e for e in ex if e.kind.endswith("+trailing")]
    assert 0.10 < len(trailing) / len(ex) < 0.14
    for e, base in zip(ex, plain):
        g = format_gate(e.response)
        if e.kind.endswith("+trailing"):
            assert not g.passed and g.after_answer.strip()
            assert e.response.startswith(base.response)         # the solution itself is unchanged
            assert extract_answer(e.response) == extract_answer(base.response)
            assert len(split_steps(e.response).steps) == len(split_steps(base.response).steps)
        else:
            assert e == base


def test_prm_agreement_counts_by_hand():
    verdicts = [True, True, False, None, True, False]
    correct = [True, False, False, True, True, True]
    m = prm_agreement(verdicts, correct)
    # judged: 5; agree: T/T, F/F, T/T -> 3; Yes: 3 of which 2 correct; correct judged: 3, called Yes 2
    assert m == {"prm/judged": 5.0, "prm/agreement": 0.6, "prm/yes_share": 0.6,
                 "prm/yes_precision": pytest.approx(2 / 3), "prm/yes_recall": pytest.approx(2 / 3)}
    assert prm_agreement([None, None], [True, False]) == {}
    assert "prm/yes_precision" not in prm_agreement([False], [True])
    with pytest.raises(ValueError):
        prm_agreement([True], [True, False])


def test_f1_interval_brackets_the_estimate_and_shrinks_with_n():
    rng = random.Random(0)

    def draw(n):
        labels = [rng.choice([-1, 0, 1, 2]) for _ in range(n)]
        preds = [lab if rng.random() < 0.7 else rng.choice([-1, 0, 1, 2, None]) for lab in labels]
        return preds, labels

    small, big = draw(100), draw(2000)
    lo_s, hi_s = f1_interval(*small)
    lo_b, hi_b = f1_interval(*big)
    assert lo_s <= processbench_scores(*small)["f1"] <= hi_s
    assert lo_b <= processbench_scores(*big)["f1"] <= hi_b
    assert hi_b - lo_b < (hi_s - lo_s) / 2          # ~1/sqrt(20) as wide
    assert f1_interval(*small) == (lo_s, hi_s)       # seeded: the report is stable
    labels = [0, -1, 1, -1] * 50
    assert f1_interval(labels, labels) == (1.0, 1.0)
    # a resample with no erroneous sample scores 0 (the metric's convention), never NaN
    lo, hi = f1_interval([0, -1], [0, -1])
    assert lo == 0.0 and hi == 1.0


def test_paired_f1_difference_of_two_models_on_the_same_items():
    """Two students that agree on most items: their separate intervals overlap widely, the paired
    interval of the difference is narrow and excludes 0 when one is better on the items they differ."""
    rng = random.Random(1)
    labels = [rng.choice([-1, 0, 1, 2]) for _ in range(400)]
    a = [lab if rng.random() < 0.75 else -1 for lab in labels]           # misses a quarter of everything
    b = [p if p == lab or rng.random() < 0.7 else lab for p, lab in zip(a, labels)]   # fixes 30% of a's misses
    diff, lo, hi = f1_diff_interval(b, a, labels)
    assert diff == pytest.approx(processbench_scores(b, labels)["f1"] - processbench_scores(a, labels)["f1"])
    assert 0 < lo <= diff <= hi
    (lo_a, hi_a), (lo_b, hi_b) = f1_interval(a, labels), f1_interval(b, labels)
    assert hi - lo < min(hi_a - lo_a, hi_b - lo_b)        # the shared items cancel
    assert f1_diff_interval(a, a, labels) == (0.0, 0.0, 0.0)
    assert f1_diff_interval(a, b, labels) == pytest.approx((-diff, -hi, -lo))   # symmetric
    with pytest.raises(ValueError, match="predictions"):
        f1_diff_interval(a, b[:-1], labels)
