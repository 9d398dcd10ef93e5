import itertools

import pytest

from spark_rl.metrics import (
    first_error_index,
    maj_at_k,
    majority_answer,
    pass_at_k,
    processbench_report,
    processbench_scores,
)

LABELS = [-1, -1, 0, 2, 1]


def test_all_minus_one():
    s = processbench_scores([-1] * 5, LABELS)
    assert (s["acc_ok"], s["acc_err"], s["f1"]) == (1.0, 0.0, 0.0)


def test_perfect():
    assert processbench_scores(list(LABELS), LABELS)["f1"] == 1.0


def test_worked_mixed_case():
    # ok samples: preds -1, 3 -> acc_ok = 1/2; err samples: 0 right, 1 (label 2) wrong, None wrong -> 1/3
    # F1 = 2 * (1/2 * 1/3) / (1/2 + 1/3) = (1/3) / (5/6) = 0.4
    s = processbench_scores([-1, 3, 0, 1, None], LABELS)
    assert s["acc_ok"] == pytest.approx(0.5) and s["acc_err"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx(0.4) and s["n_unparsed"] == 1


def test_report_means_over_subsets():
    rows = [{"subset": "a", "pred": p, "label": lab} for p, lab in zip(LABELS, LABELS)]
    rows += [{"subset": "b", "pred": -1, "label": lab} for lab in LABELS]
    rep = processbench_report(rows)
    assert rep["subsets"]["a"]["f1"] == 1.0 and rep["subsets"]["b"]["f1"] == 0.0 and rep["mean_f1"] == 0.5
    assert processbench_report([])["mean_f1"] == 0.0


def test_first_error_index():
    assert first_error_index([True, True]) == -1
    assert first_error_index([True, False, True]) == 1
    assert first_error_index([True, None]) == 1


@pytest.mark.parametrize("n,c,k", [(5, 2, 1), (5, 2, 2), (6, 3, 3), (4, 0, 2), (4, 4, 1), (7, 1, 7)])
def test_pass_at_k_matches_enumeration(n, c, k):
    items = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    brute = sum(any(items[i] for i in s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(brute)


def test_majority():
    assert majority_answer(["3", " 4", "4", None, "3"]) == "3"      # tie -> first seen
    assert majority_answer([None, " "]) is None
    assert maj_at_k(["1", "2", "2", "1", "1"], 3, lambda a: a == "2")
    assert not maj_at_k(["1", "2", "2"], 1, lambda a: a == "2")


def test_by_error_kind_counts_where_each_kind_lands():
    from spark_rl.metrics.processbench import CORRECT_KIND, by_error_kind

    rows = [{"error_kind": None, "label": -1, "pred": -1},                 # correct, called correct
            {"error_kind": None, "label": -1, "pred": 1},                  # a false alarm
            {"error_kind": "wrong_final_answer", "label": 2, "pred": -1},  # missed
            {"error_kind": "wrong_final_answer", "label": 2, "pred": 2},   # found
            {"error_kind": "arithmetic_slip", "label": 1, "pred": 0},      # flagged too early
            {"error_kind": "arithmetic_slip", "label": 1, "pred": None},   # unparsable
            {"label": 0, "pred": 0}]                                       # a real ProcessBench row: no kind
    got = by_error_kind(rows)
    assert list(got) == [CORRECT_KIND, "arithmetic_slip", "wrong_final_answer"]   # correct first, then by name
    assert got[CORRECT_KIND] == {"n": 2, "right": 1, "all_correct": 0, "wrong_step": 1, "unparsed": 0}
    assert got["wrong_final_answer"] == {"n": 2, "right": 1, "all_correct": 1, "wrong_step": 0, "unparsed": 0}
    assert got["arithmetic_slip"] == {"n": 2, "right": 0, "all_correct": 0, "wrong_step": 1, "unparsed": 1}
    assert by_error_kind([{"label": 0, "pred": 0}]) == {}          # no row names a kind: nothing to break down
