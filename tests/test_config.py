from dataclasses import dataclass, field

import pytest

from spark_rl.config import ConfigError, load_config, require, save_resolved


@dataclass
class Inner:
    lr: float = 1e-5
    steps: int = 3
    resources: dict[str, float] = field(default_factory=dict)

    def validate(self):
        require(self.lr > 0, "lr", "must be > 0")


@dataclass
class Outer:
    trainer: Inner = field(default_factory=Inner)
    name: str = "x"


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("trainer:\n  lr: 0.5\nname: run\n")
    cfg = load_config(Outer, p, ["trainer.steps=7", "trainer.resources.rollout=0.01"])
    assert cfg.trainer.lr == 0.5 and cfg.trainer.steps == 7 and cfg.name == "run"
    assert cfg.trainer.resources == {"rollout": 0.01}
    out = save_resolved(cfg, tmp_path / "run")
    assert "steps: 7" in out.read_text()


def test_a_mapping_override_replaces_a_mapping_and_merges_into_a_section(tmp_path):
    """`key={...}` on a dict-typed field replaces it (a merge cannot remove keys, so `key={}` once
    did nothing); on a section it sets the named fields and keeps the rest."""
    p = tmp_path / "c.yaml"
    p.write_text("trainer:\n  lr: 0.5\n  resources: {rollout: 0.5, reward: 0.25}\n")
    assert load_config(Outer, p).trainer.resources == {"rollout": 0.5, "reward": 0.25}
    assert load_config(Outer, p, ["trainer.resources={}"]).trainer.resources == {}
    assert load_config(Outer, p, ["trainer.resources={reward: 1}"]).trainer.resources == {"reward": 1.0}
    assert load_config(Outer, p, ["trainer.resources.reward=1"]).trainer.resources == {"rollout": 0.5, "reward": 1.0}
    cfg = load_config(Outer, p, ["trainer={steps: 9}"])
    assert (cfg.trainer.steps, cfg.trainer.lr, cfg.trainer.resources["rollout"]) == (9, 0.5, 0.5)
    with pytest.raises(ConfigError, match="trainer.resources"):
        load_config(Outer, p, ["trainer.resources={reward: abc}"])


def test_the_demo_prm_config_can_drop_its_no_cot_student():
    """What a user types to train PRM-CoT students only: the no-CoT entry of `format_variants` goes too."""
    from pathlib import Path

    from spark_rl.config.prm import TrainPRMConfig

    path = Path(__file__).resolve().parents[1] / "configs" / "demo" / "train_prm.yaml"
    with pytest.raises(ConfigError, match="'prm' is not one of the formats"):
        load_config(TrainPRMConfig, path, ["data.formats=[prm-cot]"])
    cfg = load_config(TrainPRMConfig, path, ["data.formats=[prm-cot]", "data.format_variants={}"])
    assert cfg.data.formats == ["prm-cot"] and cfg.data.format_variants == {}


def test_unknown_key_in_file_is_one_line_naming_it(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("trainer:\n  lrr: 0.5\n")
    with pytest.raises(ConfigError) as e:
        load_config(Outer, p)
    msg = str(e.value)
    assert "trainer.lrr" in msg and str(p) in msg and "\n" not in msg


@pytest.mark.parametrize("override,needle", [
    ("trainer.foo=1", "unknown config key 'trainer.foo'"),
    ("trainer.lr=abc", "bad value for config key 'trainer.lr'"),
    ("trainer.steps=1.5", "trainer.steps"),
    ("trainer.lr=-1", "trainer.lr: must be > 0"),
    ("nonsense", "not of the form key=value"),
])
def test_bad_overrides(override, needle):
    with pytest.raises(ConfigError) as e:
        load_config(Outer, None, [override])
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, "/nonexistent/x.yaml")


def test_every_shipped_config_loads_and_validates():
    """configs/**.yaml must stay valid as the dataclasses change (found by the top-level key set)."""
    from pathlib import Path

    from spark_rl.bootstrap import BootstrapConfig
    from spark_rl.config import load_config
    from spark_rl.config.rl import RLConfig
    from spark_rl.pipelines.synthesize import SynthesizeConfig

    root = Path(__file__).resolve().parents[1] / "configs"
    from spark_rl.pipelines.demo import DemoConfig
    from spark_rl.pipelines.suite import EvalConfig
    from spark_rl.prm.evaluate import EvalPRMConfig
    from spark_rl.prm.train import TrainPRMConfig

    # first matching prefix wins: eval_prm before eval
    kinds = {"bootstrap": BootstrapConfig, "synthesize": SynthesizeConfig, "rl": RLConfig,
             "train_prm": TrainPRMConfig, "eval_prm": EvalPRMConfig, "eval": EvalConfig, "demo": DemoConfig}
    found = sorted(root.rglob("*.yaml"))
    assert found
    for path in found:
        cls = next((c for k, c in kinds.items() if path.stem.startswith(k)), None)
        assert cls is not None, f"{path}: no config class known for this file name"
        load_config(cls, path)


def test_prm_students_start_from_a_named_bootstrap_model():
    from pathlib import Path

    from spark_rl.prm.train import TrainPRMConfig

    root = Path(__file__).resolve().parents[1] / "configs" / "demo" / "train_prm.yaml"
    assert load_config(TrainPRMConfig, root, ["init_from=verifier"]).init_from == "verifier"
    with pytest.raises(ConfigError, match="init_from"):
        load_config(TrainPRMConfig, root, ["init_from=teacher"])


def test_paper_configs_cover_every_stage_at_the_paper_scale():
    """configs/paper/: Stage 1 (synthesize), Stage 2 (train_prm: a 14B PRM-CoT student on the
    step-consistency labels; eval_prm: the four ProcessBench subsets, generative and greedy),
    Stage 3 (rl_*) and the six-benchmark evaluation (eval), each loading and validating."""
    from pathlib import Path

    from spark_rl.pipelines.suite import EvalConfig, suite_names
    from spark_rl.pipelines.synthesize import SynthesizeConfig
    from spark_rl.prm.evaluate import EvalPRMConfig
    from spark_rl.prm.train import TrainPRMConfig
    from spark_rl.tasks.loaders import PAPER_EVAL_SET, PROCESSBENCH_SUBSETS

    root = Path(__file__).resolve().parents[1] / "configs" / "paper"
    assert {p.stem for p in root.glob("*.yaml")} >= {"synthesize", "train_prm", "eval_prm", "rl_prm_cot", "rl_rlvr", "eval"}
    tp = load_config(TrainPRMConfig, root / "train_prm.yaml")
    assert "14B" in tp.init_model and tp.data.format == "prm-cot" and tp.data.variants[0] == "step-consistency"
    assert tp.data.stage1_dir == load_config(SynthesizeConfig, root / "synthesize.yaml").output_dir + "/datasets"
    assert tp.learner.engine.dtype == "bfloat16" and tp.learner.engine.zero_stage == 3
    ep = load_config(EvalPRMConfig, root / "eval_prm.yaml")
    assert tuple(ep.data.sources) == PROCESSBENCH_SUBSETS and ep.data.limit == 0
    assert ep.train_prm_dir == tp.output_dir and ep.critic.k == 1        # the students: generative, greedy
    assert all(m.mode == "critic" for m in ep.models)                    # the listed base is the critic baseline
    ev = load_config(EvalConfig, root / "eval.yaml")
    assert tuple(suite_names(ev.suite)) == PAPER_EVAL_SET and ev.k == 1 and ev.n == 0
    assert ev.engine.max_model_len >= ev.max_new_tokens + 1024


@pytest.mark.parametrize("override,needle", [("run.wandb.mode=sometimes", "run.wandb.mode"),
                                             ("run.wandb.projekt=x", "unknown config key 'run.wandb.projekt'")])
def test_wandb_section_rejects_bad_keys_and_modes(override, needle):
    from spark_rl.config.rl import RLConfig

    assert load_config(RLConfig, None, ["run.wandb.project=test", "run.wandb.mode=offline"]).run.wandb.project == "test"
    with pytest.raises(ConfigError, match=needle):
        load_config(RLConfig, None, ["run.wandb.project=test", override])


def test_a_local_model_path_that_does_not_exist_is_named_before_any_work(tmp_path):
    from spark_rl.config import ConfigError
    from spark_rl.trainer.model_paths import resolve_model_paths

    with pytest.raises(ConfigError, match=r"policy model: path '/nope/x' does not exist"):
        resolve_model_paths({"policy": "/nope/x"}, "configs/demo/bootstrap.yaml")
    # a hub id and an existing folder pass as they are (no bootstrap is built for them)
    assert resolve_model_paths({"policy": "Qwen/Qwen2.5-Math-7B", "verifier": str(tmp_path)}, "unused.yaml") == \
        {"policy": "Qwen/Qwen2.5-Math-7B", "verifier": str(tmp_path)}


def test_only_the_models_without_a_path_are_bootstrapped(tmp_path, monkeypatch):
    """A run that names its verifier must not train the bootstrap's (a slip phase is minutes)."""
    import spark_rl.bootstrap as boot
    from spark_rl.trainer.model_paths import resolve_model_paths

    asked = []

    def fake_bootstrap(cfg):
        asked.append(list(cfg.build))
        return boot.BootstrapResult(tmp_path, tmp_path / "policy", None, {})

    monkeypatch.setattr(boot, "bootstrap", fake_bootstrap)
    got = resolve_model_paths({"policy": "", "verifier": str(tmp_path)}, "configs/demo/bootstrap.yaml")
    assert asked == [["policy"]] and got == {"policy": str(tmp_path / "policy"), "verifier": str(tmp_path)}


def test_a_loaded_config_is_frozen_and_variants_are_copies():
    import dataclasses

    from spark_rl.config import load_config
    from spark_rl.config.checks import FrozenConfigError, is_frozen
    from spark_rl.config.rl import RLConfig

    cfg = load_config(RLConfig, "configs/demo/rlvr.yaml")
    assert is_frozen(cfg) and is_frozen(cfg.reward.prm.engine) and is_frozen(cfg.elastic.chaos)
    with pytest.raises(FrozenConfigError, match=r"RewardSection.kind: the config is frozen once validated"):
        cfg.reward.kind = "random"
    with pytest.raises(FrozenConfigError, match=r"GeneratorConfig.model_path"):
        cfg.rollout.engine.model_path = "/elsewhere"
    swapped = dataclasses.replace(cfg.reward, kind="random")      # a variant is a new object
    assert swapped.kind == "random" and cfg.reward.kind == "rlvr" and not is_frozen(swapped)
    built = RLConfig()                                            # built in code: changeable until frozen
    built.grpo.steps = 3
    assert built.grpo.steps == 3 and not is_frozen(built)


def test_lists_and_dicts_of_a_frozen_config_are_read_only_and_still_travel():
    import copy
    import json
    import pickle

    from spark_rl.config import load_config
    from spark_rl.config.checks import FrozenConfigError
    from spark_rl.config.prm import TrainPRMConfig
    from spark_rl.config.synthesize import SynthesizeConfig

    syn = load_config(SynthesizeConfig, "configs/demo/synthesize.yaml")
    prm = load_config(TrainPRMConfig, "configs/demo/train_prm.yaml", ["train.format_lr={prm: 1e-3}"])
    for change in (lambda: syn.report_ns.append(9), lambda: syn.meta_critique.bases.__setitem__(0, "x"),
                   lambda: syn.report_ns.sort(), lambda: prm.train.format_lr.update(prm=1.0),
                   lambda: prm.train.format_lr.__setitem__("prm-cot", 1.0)):
        with pytest.raises(FrozenConfigError, match="in a frozen config is read-only"):
            change()
    assert syn.report_ns == [1, 3, 5, 7] and prm.train.format_lr == {"prm": 1e-3}     # untouched
    # to Ray workers (pickle), into copies and to JSON they go as before
    for c in (syn, prm):
        assert pickle.loads(pickle.dumps(c)) == c and copy.deepcopy(c) == c
    assert json.loads(json.dumps(syn.report_ns)) == [1, 3, 5, 7]
    assert list(syn.report_ns) + [9] == [1, 3, 5, 7, 9]           # a changed copy for a new config


def test_the_run_time_fp32_parity_default_covers_the_rounding_bound_of_every_preset():
    """The weight-sync probe's fp32 default (PARITY_TOLERANCE) is not a number tuned on one machine:
    it covers the rounding difference of two fp32 engines (tests/tolerances.py) for every preset
    the project builds, and sits well below what a stale sync moves (the size of an update)."""
    from tolerances import fp32_logprob_tolerance

    from spark_rl.config.engines import PARITY_TOLERANCE
    from spark_rl.models.factory import PRESETS

    for name, preset in PRESETS.items():
        assert fp32_logprob_tolerance(preset) <= PARITY_TOLERANCE["float32"], name


def test_cpu_threads_bind_reads_core_lists_and_names_a_bad_entry():
    from spark_rl.config.resources import core_list
    from spark_rl.config.rl import RLConfig

    assert core_list("0-3,8,2") == [0, 1, 2, 3, 8] and core_list(" 5 ") == [5]
    assert core_list("auto") is None and core_list("nobind") is None
    assert load_config(RLConfig, None, ["rollout.resources.cpu_threads_bind=0|1-2"]).rollout.resources.cpu_threads_bind
    for bad in ("0|x", "3-1", "0|", "0-"):
        with pytest.raises(ConfigError, match=r"rollout\.resources\.cpu_threads_bind: .*core list"):
            load_config(RLConfig, None, [f"rollout.resources.cpu_threads_bind={bad}"])
    assert load_config(RLConfig, None, ["rollout.resources.cpu_threads_bind=percore"]).rollout.resources
    with pytest.raises(ConfigError, match=r"cpu_threads_bind: 'percore' is not a core list"):   # the whole value only
        load_config(RLConfig, None, ["rollout.resources.cpu_threads_bind=percore|0"])


def test_percore_binds_each_worker_to_one_core_of_its_process():
    """Worker i of a `percore` group takes the i-th core (wrapping around) of those its own process
    may use: what the actor layer hands it, and what the engine binds to."""
    import os

    from actors.placement import engine_cores_env
    from spark_rl.config.resources import ResourceSpec
    from spark_rl.engines.threads import ENGINE_CORES_ENV, bind_to_cores

    spec = ResourceSpec(cpu_threads_bind="percore")
    assert engine_cores_env(spec, 3) == {ENGINE_CORES_ENV: "percore:3"}
    assert engine_cores_env(ResourceSpec(cpu_threads_bind="0|1"), 3) == {ENGINE_CORES_ENV: "1"}
    before = os.sched_getaffinity(0)
    ordered = sorted(before)
    try:
        for i in range(len(ordered) + 1):
            assert bind_to_cores(f"percore:{i}") == [ordered[i % len(ordered)]]
            assert os.sched_getaffinity(0) == {ordered[i % len(ordered)]}
            os.sched_setaffinity(0, before)
        with pytest.raises(ValueError, match="percore:<worker index>"):
            bind_to_cores("percore:x")
    finally:
        os.sched_setaffinity(0, before)


def test_synthesize_lanes_are_not_in_the_shards_fingerprint():
    """The number of lanes changes how fast Stage 1 runs, not its data: a re-run with more lanes
    continues the same shards. Batch splits (`workers`) and thread counts do change the data."""
    from spark_rl.pipelines.synthesize import SynthesizeConfig

    one = load_config(SynthesizeConfig, None, [])
    assert load_config(SynthesizeConfig, None, ["lanes=3"]).raw_fingerprint() == one.raw_fingerprint()
    assert load_config(SynthesizeConfig, None, ["generator.workers=2"]).raw_fingerprint() != one.raw_fingerprint()
    with pytest.raises(ConfigError, match="lanes: must be >= 1"):
        load_config(SynthesizeConfig, None, ["lanes=0"])
