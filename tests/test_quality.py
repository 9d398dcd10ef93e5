"""Label quality of synthetic step labels against exact ones, on hand-computed cases."""

import pytest

from spark_rl.formats.verification import render_verification
from spark_rl.pipelines.quality import format_table, label_quality, plot_f1_vs_n, scaling_rows, votes_prefix
from spark_rl.verification.aggregate import AggregationConfig

T, F = True, False


def test_label_quality_hand_computed():
    truth = [[T, T], [T, F], [T, F, F], [T, T, T]]        # first errors: -1, 1, 1, -1
    pred = [[T, T], [F, F], [T, F, F], None]              # first errors: -1, 0, 1, unparsed
    q = label_quality(pred, truth)
    assert q["acc_ok"] == 0.5 and q["acc_err"] == 0.5 and q["f1"] == pytest.approx(0.5)
    assert q["n_unparsed"] == 1 and q["n_solutions"] == 4
    # per-step accuracy over parsed predictions of the right length: 2/2 + 1/2 + 3/3 = 6 of 7
    assert q["step_accuracy"] == pytest.approx(6 / 7)
    with pytest.raises(ValueError, match="3 predictions for 4 solutions"):
        label_quality(pred[:3], truth)


def test_votes_prefix_bounds():
    assert votes_prefix(["a", "b", "c"], 2) == ["a", "b"]
    with pytest.raises(ValueError, match="need 1 <= n <= 3"):
        votes_prefix(["a", "b", "c"], 4)


def test_scaling_rows_majority_fixes_a_lone_wrong_vote():
    steps = [["1+1=2", "2*3=6"]]
    truth = [[T, F]]
    wrong = render_verification(steps[0], [T, T], final=True)        # misses the error
    right = render_verification(steps[0], [T, F], final=False)
    texts = [[wrong, right, right, wrong, right]]
    rows = scaling_rows(texts, steps, truth, [1, 3], AggregationConfig())
    by = {(r["variant"], r["n"]): r for r in rows}
    assert by[("step-majority", 1)]["f1"] == 0.0           # one vote: the wrong one
    assert by[("step-majority", 3)]["acc_err"] == 1.0      # 2 of 3 find step 2
    assert by[("outcome-majority", 3)]["acc_err"] == 1.0
    assert by[("step-majority", 3)]["step_accuracy"] == 1.0


def test_table_and_plot(tmp_path):
    rows = [{"variant": "step-majority", "n": n, "f1": f, "acc_err": f, "acc_ok": f, "step_accuracy": f,
             "n_unparsed": 0} for n, f in [(1, 0.2), (2, 0.4)]]
    text = format_table(rows)
    assert text.splitlines()[2].split()[:3] == ["step-majority", "1", "0.200"]
    png = plot_f1_vs_n(rows, tmp_path / "p" / "f1.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
