"""What a first GPU run needs, checked on CPU (issue #20): collectives on the engine's device, every
engine's model on its device, a parity tolerance that follows the dtype (a real bf16 sync on CPU),
whole benchmark files, checkpoint retention, a local run that starts its own Ray instance, a job's
runtime env merged without conflicts. `tests/gpu/smoke.py` runs the device parts on a real GPU."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import torch

# ---- finding 1: collectives on the engine's device ---------------------------------------------


class _Reduced(Exception):
    """Raised by the stand-in process group once it has seen a tensor on the right device."""


class NcclLikeGroup:
    """Stands in for torch.distributed with an NCCL group: NCCL refuses any tensor not on its CUDA
    device. The device under test is `meta` (a device that is not the CPU, which CPU torch has):
    a collective tensor built as a plain CPU tensor is refused, exactly as NCCL refuses it."""

    ReduceOp = torch.distributed.ReduceOp

    def __init__(self, device: torch.device):
        self.device, self.seen = device, []

    def all_reduce(self, t, op=None):
        self.seen.append(t.device)
        if t.device != self.device:
            raise RuntimeError(f"NCCL-like group: tensor on {t.device}, the group reduces on {self.device}")
        raise _Reduced


def _bare_learner(device: torch.device):
    from spark_rl.engines.learner import Learner

    learner = Learner.__new__(Learner)       # no DeepSpeed world: only what the collectives use
    learner.dist, learner.device, learner.comm_device = NcclLikeGroup(device), device, device
    return learner


@pytest.mark.parametrize("method, arg", [("_all_sum", [3.0, 2.0]), ("_all_max", 4)])
def test_learner_collectives_put_their_tensors_on_the_engine_device(method, arg):
    learner = _bare_learner(torch.device("meta"))
    with pytest.raises(_Reduced):
        getattr(learner, method)(arg)
    assert learner.dist.seen == [torch.device("meta")]


def test_collective_device_follows_the_backend():
    from spark_rl.engines.collectives import collective_device

    assert collective_device("nccl", "cuda:1") == torch.device("cuda:1")
    assert collective_device("gloo", "cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="nccl.*cpu"):
        collective_device("nccl", "cpu")


def test_collective_helpers_reduce_on_a_real_gloo_group(tmp_path):
    """The helpers' arithmetic on a real (one-rank) gloo group, as the CPU learner runs them."""
    import torch.distributed as dist

    from spark_rl.engines.collectives import all_max, all_sum

    if dist.is_initialized():
        pytest.skip("a process group is already initialized in this process")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        assert all_sum(dist, [1.5, 2.0], torch.device("cpu")) == [1.5, 2.0]
        assert all_max(dist, 7, torch.device("cpu")) == 7
    finally:
        dist.destroy_process_group()


# ---- finding 2: every engine's model on its device ------------------------------------------------


def test_resolve_device(monkeypatch):
    from spark_rl.engines.logprobs import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="'cuda:0'.*no CUDA"):
        resolve_device("cuda:0")
    with pytest.raises(ValueError, match="'gpu0'"):
        resolve_device("gpu0")


def test_attention_kernel_follows_device_and_dtype(monkeypatch):
    """flash-attn only for a CUDA model in half precision: it has no CPU and no fp32 kernels."""
    from spark_rl.engines.logprobs import select_attn_implementation

    monkeypatch.setitem(sys.modules, "flash_attn", types.ModuleType("flash_attn"))   # "installed"
    assert select_attn_implementation("cuda", "bfloat16") == "flash_attention_2"
    assert select_attn_implementation("cuda", "float32") == "sdpa"
    assert select_attn_implementation("cpu", "bfloat16") == "sdpa"
    monkeypatch.setitem(sys.modules, "flash_attn", None)                               # not installed
    assert select_attn_implementation("cuda", "bfloat16") == "sdpa"


def test_scorer_places_its_model_on_the_configured_device(tiny_model_dir):
    """The reference Scorer moves its model to `ScorerConfig.device` (on a GPU worker "auto" is the
    worker's GPU); `meta` stands for a device that is not the CPU."""
    from spark_rl.engines.scorer import Scorer, ScorerConfig

    moved = Scorer(ScorerConfig(model_path=tiny_model_dir, device="meta"))
    assert moved.device == torch.device("meta")
    assert {p.device for p in moved.model.parameters()} == {torch.device("meta")}
    on_cpu = Scorer(ScorerConfig(model_path=tiny_model_dir, device="cpu"))
    assert {p.device for p in on_cpu.model.parameters()} == {torch.device("cpu")}
    assert len(on_cpu.logprobs([[1, 2, 3, 4]])[0]) == 3


def test_reference_device_is_configurable_and_checked():
    from spark_rl.config import ConfigError
    from spark_rl.config.loader import validate
    from spark_rl.config.rl import ReferenceSection

    validate(ReferenceSection(device="cuda:1"), "reference.")       # the driver needs no GPU to accept it
    with pytest.raises(ConfigError, match="reference.device.*'gpu0'"):
        validate(ReferenceSection(device="gpu0"), "reference.")


def test_logprob_code_follows_the_model_device(tiny_model_dir):
    """`token_logprobs` sends its batches to wherever the model lives and returns CPU results."""
    from spark_rl.engines.logprobs import load_causal_lm, token_logprobs

    model = load_causal_lm(tiny_model_dir, dtype="float32", device="cpu").eval()
    out = token_logprobs(model, [[1, 2, 3], [4, 5, 6, 7]])
    assert [t.device.type for t in out] == ["cpu", "cpu"] and [len(t) for t in out] == [2, 3]


# ---- finding 3: the parity tolerance follows the dtype ----------------------------------------------


def test_parity_tolerance_follows_the_coarser_dtype():
    from spark_rl.config.rl import PARITY_TOLERANCE, RLConfig, parity_tolerance

    cfg = RLConfig()
    assert parity_tolerance(cfg) == PARITY_TOLERANCE["float32"] <= 1e-3
    cfg.rollout.engine.dtype = "bfloat16"              # fp32 learner, bf16 rollout: bf16 rounding
    assert parity_tolerance(cfg) == PARITY_TOLERANCE["bfloat16"]
    cfg.learner.engine.dtype = "bfloat16"
    assert parity_tolerance(cfg) == PARITY_TOLERANCE["bfloat16"]
    cfg.grpo.parity_tolerance = 0.01                    # an explicit value wins
    assert parity_tolerance(cfg) == 0.01


def _peaked_copy(model_dir: str, out: Path, scale: float) -> str:
    """The tiny model with its (tied) embeddings scaled: logits of ~10 like a trained LM's, where
    bf16 rounding moves a logprob by ~0.06 (a random tiny model's logits are ~1)."""
    import shutil

    from transformers import AutoModelForCausalLM

    shutil.copytree(model_dir, out)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(scale)
    model.save_pretrained(out)
    return str(out)


@pytest.mark.integration
def test_bf16_learner_to_rollout_sync_passes_the_default_parity_check(ray_session, tiny_model_dir, tmp_path):
    """A bf16 learner and bf16 rollout engine: two syncs (before and after a GRPO step) with the
    parity check at its default. With the old fixed 1e-3 the first sync raised."""
    from conftest import tiny_rl_config

    from spark_rl.config.rl import PARITY_TOLERANCE
    from spark_rl.trainer.data import build_problems
    from spark_rl.trainer.grpo import GRPOTrainer
    from spark_rl.trainer.metrics import read_metrics

    policy = _peaked_copy(tiny_model_dir, tmp_path / "peaked", scale=8.0)
    cfg = tiny_rl_config(tmp_path / "run", steps=1, prompts=2, group_size=2, max_new_tokens=8, eval_size=0,
                         checkpoint_every=0)
    cfg.learner.engine.dtype = cfg.rollout.engine.dtype = "bfloat16"
    cfg.grpo.loss.kl_coef = 0.0
    assert cfg.grpo.parity_tolerance is None
    train, evalset = build_problems(cfg.data)
    trainer = GRPOTrainer(cfg, policy, train, evalset)
    try:
        first = trainer.sync_weights()
        trainer.fit(progress=False)
    finally:
        trainer.shutdown()
    after_step = [r for r in read_metrics(cfg.run.output_dir) if r["step"] == 1][0]["sync/max_abs_logprob_diff"]
    print(f"bf16 parity: first sync {first['parity']:.4f}, after a step {after_step:.4f}")
    # bf16-sized differences (the old 1e-3 would have stopped the run) within the bf16 default
    assert 1e-3 < first["parity"] <= PARITY_TOLERANCE["bfloat16"]
    assert after_step <= PARITY_TOLERANCE["bfloat16"]


# ---- finding 7: benchmark files are used whole -----------------------------------------------------


def _benchmark_file(path: Path, n: int) -> str:
    path.write_text("".join(json.dumps({"problem": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n"
                            for i in range(n)))
    return str(path)


def test_benchmark_files_are_used_whole_unless_a_limit_is_asked(tmp_path):
    from spark_rl.config.rl import DataConfig
    from spark_rl.trainer.data import build_problems

    train_file, eval_file = _benchmark_file(tmp_path / "train.jsonl", 4100), _benchmark_file(tmp_path / "ev.jsonl", 250)
    cfg = DataConfig(kind="benchmark", benchmark=train_file, eval_benchmark=eval_file)   # defaults: 4000 / 200
    train, evalset = build_problems(cfg)
    assert (len(train), len(evalset)) == (4100, 250)
    cfg.train_limit, cfg.eval_limit = 10, 5
    train, evalset = build_problems(cfg)
    assert (len(train), len(evalset)) == (10, 5)
    cfg.eval_size = 0                                                  # 0 still means: no evaluation
    assert build_problems(cfg)[1] == []


def test_eval_command_scores_a_benchmark_file_whole_by_default(tmp_path):
    import argparse

    from spark_rl.commands.eval import add_arguments, build_config
    from spark_rl.pipelines.suite import label, suite_names, suite_problems

    path = _benchmark_file(tmp_path / "bench.jsonl", 230)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = build_config(parser.parse_args(["--data", path]))
    assert suite_names(cfg.suite) == [path] and label(path) == "bench"
    assert len(suite_problems(path, cfg)) == 230
    assert len(suite_problems(path, build_config(parser.parse_args(["--data", path, "--n", "7"])))) == 7
    assert len(suite_problems("arith", cfg)) == 200


def test_negative_benchmark_limit_is_an_error_naming_it():
    from spark_rl.config import ConfigError
    from spark_rl.config.loader import validate
    from spark_rl.config.rl import DataConfig

    with pytest.raises(ConfigError, match="eval_limit"):
        validate(DataConfig(eval_limit=-1), "data.")


# ---- finding 10: run.keep_checkpoints ---------------------------------------------------------------


def _fake_checkpoints(ckpt: Path, steps: list[int], latest: int) -> None:
    for s in steps:
        (ckpt / f"step_{s:06d}" / "state").mkdir(parents=True)
    (ckpt / "latest").write_text(f"step_{latest:06d}")


def test_prune_keeps_the_newest_k_and_never_the_latest(tmp_path):
    from spark_rl.trainer.checkpoints import prune_checkpoints

    ckpt = tmp_path / "checkpoints"
    _fake_checkpoints(ckpt, [2, 4, 6, 8, 10], latest=10)
    (ckpt / "notes").mkdir()                                         # not a step folder: left alone
    removed = prune_checkpoints(ckpt, keep=2)
    assert sorted(p.name for p in removed) == ["step_000002", "step_000004", "step_000006"]
    assert sorted(p.name for p in ckpt.iterdir()) == ["latest", "notes", "step_000008", "step_000010"]
    assert prune_checkpoints(ckpt, keep=0) == []                     # 0 keeps all
    # a resumed run whose `latest` is an older step (later ones from a previous attempt) keeps it
    _fake_checkpoints(tmp_path / "c2", [2, 4, 6], latest=2)
    prune_checkpoints(tmp_path / "c2", keep=1)
    assert sorted(p.name for p in (tmp_path / "c2").iterdir()) == ["latest", "step_000002", "step_000006"]
    with pytest.raises(ValueError, match="keep_checkpoints"):
        prune_checkpoints(ckpt, keep=-1)


def test_trainer_checkpoint_applies_keep_checkpoints(tmp_path):
    """`GRPOTrainer.checkpoint` as the loop calls it, with a stand-in learner that writes folders."""
    from spark_rl.config.rl import RLConfig
    from spark_rl.trainer.data import Problem, PromptStream
    from spark_rl.trainer.grpo import GRPOTrainer

    class FolderLearner:
        def save_checkpoint(self, path, state):
            (Path(path) / "state").mkdir(parents=True)

    trainer = GRPOTrainer.__new__(GRPOTrainer)
    trainer.cfg, trainer.run_dir, trainer.learner, trainer.weights_version = RLConfig(), tmp_path, FolderLearner(), 0
    trainer.cfg.run.keep_checkpoints = 2
    trainer.stream = PromptStream([Problem("p", "q\n", "q", "1")])
    for step in (10, 20, 30, 40):
        trainer.step = step
        trainer.checkpoint()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "step_000030", "step_000040"]


# ---- finding 10b and 4: Ray startup -----------------------------------------------------------------


class _RayInitSpy:
    def __init__(self):
        self.kwargs = None

    def __call__(self, **kwargs):
        self.kwargs = kwargs


@pytest.fixture
def ray_init_spy(monkeypatch):
    import ray

    spy = _RayInitSpy()
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", spy)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {})
    return spy


def test_local_run_starts_its_own_ray_instance(ray_init_spy, monkeypatch):
    """No `cluster.address`: a new local instance, never the cluster this machine last started
    (RAY_ADDRESS, /tmp/ray/ray_current_cluster), which would refuse num_cpus anyway."""
    from actors.cluster import init_ray
    from spark_rl.config.cluster import ClusterConfig

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    init_ray(ClusterConfig(num_cpus=2))
    assert ray_init_spy.kwargs["address"] == "local" and ray_init_spy.kwargs["num_cpus"] == 2


def test_joining_from_a_job_adds_only_env_vars_the_job_does_not_set(ray_init_spy, monkeypatch):
    """Inside a `ray job submit` job Ray merges the job's runtime env with ray.init's and refuses
    any key both set: ray.init must add only the others (checked with Ray's own merge)."""
    from ray.runtime_env.runtime_env import _merge_runtime_env

    from actors.cluster import init_ray
    from spark_rl.config.cluster import ClusterConfig

    job_env = {"working_dir": "gcs://_ray_pkg_x.zip",
               "env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                            "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}}
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps({"runtime_env": job_env, "metadata": {}}))
    monkeypatch.setenv("DS_ACCELERATOR", "cpu")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    init_ray(ClusterConfig(address="auto"))
    ours = ray_init_spy.kwargs["runtime_env"]
    assert ray_init_spy.kwargs["address"] == "auto"
    assert not set(ours["env_vars"]) & set(job_env["env_vars"])
    assert ours["env_vars"]["DS_ACCELERATOR"] == "cpu"          # what the job does not set still goes
    merged = _merge_runtime_env(job_env, ours)
    assert merged is not None and merged["env_vars"]["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"


def test_a_garbled_job_config_is_an_error_naming_the_variable(monkeypatch):
    from actors.cluster import JOB_CONFIG_ENV, job_env_vars

    monkeypatch.setenv(JOB_CONFIG_ENV, "{not json")
    with pytest.raises(ValueError, match=JOB_CONFIG_ENV):
        job_env_vars()
