"""Pure pieces of train-prm / eval-prm: splits, length bucketing, held-out NLL, votes, scoring."""

import random

import pytest

from spark_rl.prm.evaluate import PRMModel, score_rows, vote
from spark_rl.prm.train import length_bucketed_batches, padding_share, response_nll, split_by_problem


def test_split_by_problem_keeps_problems_whole():
    rows = [{"problem_id": f"p{i // 3}", "k": i} for i in range(30)]          # 10 problems x 3 solutions
    train, held = split_by_problem(rows, 0.2, seed=1)
    assert len(held) == 6 and len(train) == 24
    assert not {r["problem_id"] for r in train} & {r["problem_id"] for r in held}
    assert split_by_problem(rows, 0.2, seed=1) == (train, held)
    assert split_by_problem(rows[:3], 0.5, seed=1) == (rows[:3], [])         # one problem: nothing held out


def test_length_bucketing_cuts_padding_and_covers_every_row_once():
    rng = random.Random(0)
    lengths = [rng.randint(20, 400) for _ in range(256)]
    bucketed = length_bucketed_batches(lengths, 16, 8, random.Random(3))
    plain = length_bucketed_batches(lengths, 16, 1, random.Random(3))
    for b in (bucketed, plain):
        assert sorted(i for batch in b for i in batch) == list(range(256))
    assert padding_share(bucketed, lengths) < padding_share(plain, lengths) / 2
    assert padding_share([[0, 1]], [10, 30]) == pytest.approx(1 - 40 / 60)


def test_response_nll_counts_only_response_tokens():
    samples = [{"prompt_ids": [1, 2, 3], "response_ids": [4, 5]}, {"prompt_ids": [1], "response_ids": [9]}]
    # logprobs[t] is of token t + 1: sample 0 -> response tokens at logprob positions 2, 3
    lps = [[-9.0, -9.0, -1.0, -3.0], [-2.0]]
    assert response_nll(samples, lps) == pytest.approx((1 + 3 + 2) / 3)


def test_vote_majority_ties_and_nothing_parsed():
    assert vote([2, 2, -1, None]) == 2
    assert vote([3, -1, None, 3, -1]) == -1          # tie -> the smallest index
    assert vote([None, None]) is None and vote([]) is None


def test_score_rows_counts_unparsed_and_too_long_per_subset():
    rows = [{"subset": "a", "label": -1, "pred": -1, "why": "ok"},
            {"subset": "a", "label": 1, "pred": None, "why": "unparsable"},
            {"subset": "b", "label": 0, "pred": 0, "why": "ok"},
            {"subset": "b", "label": -1, "pred": None, "why": "prompt_too_long"}]
    rep = score_rows(rows)
    a, b = rep["subsets"]["a"], rep["subsets"]["b"]
    assert (a["acc_ok"], a["acc_err"], a["f1"], a["n_unparsed"], a["n_too_long"]) == (1.0, 0.0, 0.0, 1, 0)
    assert (b["acc_ok"], b["acc_err"], b["n_unparsed"], b["n_too_long"]) == (0.0, 1.0, 1, 1)
    assert rep["mean_f1"] == 0.0


def test_model_entry_validation():
    with pytest.raises(ValueError, match="ORM names no step"):
        PRMModel(name="x", path="/m", format="orm").validate()
    with pytest.raises(ValueError, match="mode"):
        PRMModel(name="x", path="/m", mode="judge").validate()


def test_students_one_per_variant_and_format():
    from spark_rl.prm.train import PRMDataSection, students

    one = PRMDataSection(variants=["single", "step-consistency"])
    assert students(one) == [("single", "single", "prm-cot"), ("step-consistency", "step-consistency", "prm-cot")]
    two = PRMDataSection(variants=["single", "step-consistency"], formats=["prm-cot", "prm"])
    assert students(two) == [("single", "single", "prm-cot"), ("step-consistency", "step-consistency", "prm-cot"),
                             ("single.prm", "single", "prm"), ("step-consistency.prm", "step-consistency", "prm")]
    three = PRMDataSection(variants=["single", "step-consistency"], formats=["prm-cot", "prm"],
                           format_variants={"prm": ["step-consistency"]})
    assert [n for n, _, _ in students(three)] == ["single", "step-consistency", "step-consistency.prm"]
    import pytest

    from spark_rl.config import ConfigError
    with pytest.raises((ConfigError, ValueError), match="format_variants"):
        PRMDataSection(variants=["single"], formats=["prm-cot", "prm"], format_variants={"prm": ["other"]}).validate()


def test_models_of_adds_the_students_start_last(tmp_path):
    import json

    from spark_rl.config import save_resolved
    from spark_rl.prm.evaluate import EvalPRMConfig, models_of
    from spark_rl.prm.train import TrainPRMConfig

    root = tmp_path / "prm"
    save_resolved(TrainPRMConfig(output_dir=str(root), init_from="verifier"), root)
    students = {"single": {"model": "m/single", "format": "prm-cot", "init_model": "boot/verifier"},
                "single.prm": {"model": "m/single.prm", "format": "prm", "init_model": "boot/verifier"},
                "skipped": {"skipped": "no training rows"}}
    (root / "summary.json").write_text(json.dumps(students))
    cfg = EvalPRMConfig(train_prm_dir=str(root), train_prm_start=True)
    assert [(m.name, m.path, m.format) for m in models_of(cfg)] == [
        ("single", "m/single", "prm-cot"), ("single.prm", "m/single.prm", "prm"),
        ("start-verifier", "boot/verifier", "prm-cot")]
    assert [m.name for m in models_of(EvalPRMConfig(train_prm_dir=str(root)))] == ["single", "single.prm"]
    students["single.prm"]["init_model"] = "elsewhere"
    (root / "summary.json").write_text(json.dumps(students))
    with pytest.raises(ValueError, match="train_prm_start: .* started from 2 models"):
        models_of(cfg)
    from spark_rl.config import ConfigError
    with pytest.raises((ConfigError, ValueError), match="train_prm_start.*needs train_prm_dir"):
        EvalPRMConfig(train_prm_start=True).validate()


def test_models_of_resolves_the_start_of_students_that_did_not_record_it(tmp_path):
    """A train-prm folder from before `init_model` was recorded: the start is resolved from its config."""
    import json

    from spark_rl.config import save_resolved
    from spark_rl.prm.evaluate import EvalPRMConfig, models_of
    from spark_rl.prm.train import TrainPRMConfig

    root, start = tmp_path / "prm", tmp_path / "base-model"
    start.mkdir()
    save_resolved(TrainPRMConfig(output_dir=str(root), init_model=str(start), init_from="verifier"), root)
    (root / "summary.json").write_text(json.dumps({"single": {"model": "m/single", "format": "prm-cot"}}))
    models = models_of(EvalPRMConfig(train_prm_dir=str(root), train_prm_start=True))
    assert [(m.name, m.path) for m in models] == [("single", "m/single"), ("start-verifier", str(start))]


def test_the_console_table_by_kind_of_error():
    from spark_rl.prm.evaluate import format_kinds

    counts = lambda n, right: {"n": n, "right": right, "all_correct": n - right, "wrong_step": 0, "unparsed": 0}  # noqa: E731
    reports = [{"model": "step-consistency", "error_kinds": {"correct": counts(4, 4), "wrong_final_answer": counts(3, 0)}},
               {"model": "critic-on-gsm8k"}]          # a set without kinds: a dash in each column
    lines = format_kinds(reports).splitlines()
    assert lines[0].split()[-2:] == ["correct", "wrong_final_answer"]
    assert lines[2].split() == ["step-consistency", "4/4", "0/3"]
    assert lines[3].split() == ["critic-on-gsm8k", "-", "-"]
    assert format_kinds([{"model": "m"}]) == ""             # nothing names a kind: no table
