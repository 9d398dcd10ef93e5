"""Shared fixtures. Heavy ones (models, Ray, vLLM engines) are session-scoped: built once."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random tiny Qwen2 with the domain tokenizer (HF folder)."""
    from spark_rl.models.factory import build_base_model

    return str(build_base_model(tmp_path_factory.mktemp("models") / "tiny", preset="tiny", seed=0))


@pytest.fixture(scope="session")
def ray_session():
    import ray

    from actors.cluster import init_ray
    from spark_rl.config.cluster import ClusterConfig

    init_ray(ClusterConfig(num_cpus=8, object_store_gib=1.0, log_to_driver=False))
    yield ray
    ray.shutdown()


EASY = dict(min_ops=1, max_ops=2)   # a short bootstrap gets these partly right: rewards and verdicts vary


def tiny_rl_config(out_dir, steps: int, prompts: int = 4, group_size: int = 4, max_new_tokens: int = 64,
                   eval_size: int = 16, checkpoint_every: int = 2, colocate: bool = False):
    """An `RLConfig` for GRPO tests on the tiny models: the easy domain, small engines, no
    TensorBoard or export; callers change what their test is about."""
    from spark_rl.config.cluster import ClusterConfig
    from spark_rl.config.rl import RLConfig
    from spark_rl.tasks.domain import DomainConfig

    cfg = RLConfig()
    cfg.run.output_dir, cfg.run.tensorboard, cfg.run.export_final = str(out_dir), False, False
    cfg.cluster = ClusterConfig(num_cpus=8, log_to_driver=False)
    cfg.data.domain = DomainConfig(**EASY)
    cfg.data.train_size, cfg.data.eval_size = 64, eval_size
    cfg.rollout.engine.max_model_len = 256
    cfg.reference.colocate_with_learner = colocate
    cfg.reference.resources.num_cpus = 0.5
    cfg.learner.engine.lr, cfg.learner.engine.micro_batch_size = 5e-4, 8
    g = cfg.grpo
    g.steps, g.prompts_per_step, g.group_size, g.max_new_tokens = steps, prompts, group_size, max_new_tokens
    g.eval_every, g.eval_max_new_tokens, g.checkpoint_every = 0, 64, checkpoint_every
    return cfg


@pytest.fixture(scope="session")
def easy_policy(tmp_path_factory):
    """A tiny policy briefly fine-tuned on 1-2 step problems (HF folder)."""
    from spark_rl.bootstrap import BootstrapConfig, PolicyBootstrap, bootstrap
    from spark_rl.tasks.domain import DomainConfig

    cfg = BootstrapConfig(build=["policy"], out_dir=str(tmp_path_factory.mktemp("bootstrap")),
                          domain=DomainConfig(**EASY),
                          policy=PolicyBootstrap(steps=120, batch_size=32, train_problems=1000, warmup_steps=10))
    res = bootstrap(cfg, progress=False, evaluate=False)
    assert res.report["policy"]["final_loss"] < res.report["policy"]["first_loss"] / 3
    assert bootstrap(cfg, progress=False, evaluate=False).policy == res.policy   # cached: nothing retrained
    return str(res.policy)


@pytest.fixture(scope="session")
def shipped_verifier():
    """The verifier the package ships (configs/demo/bootstrap.yaml's, found by its config hash, not
    trained). Its verdicts on the easy domain's 1-2 step solutions parse, which is what its tests
    need (it judged every easy-policy sample it saw wrong, as they were). A verifier trained here
    for the tests cost ~100 s of the suite; the verifier bootstrap's training is tested in
    test_shipped_models.py (CI-sized, both phases)."""
    from pathlib import Path

    from spark_rl.bootstrap import BootstrapConfig, bootstrap
    from spark_rl.config import load_config

    demo = Path(__file__).resolve().parents[1] / "configs" / "demo" / "bootstrap.yaml"
    cfg = load_config(BootstrapConfig, demo, ["build=[verifier]"])
    path = bootstrap(cfg, progress=False, evaluate=False).verifier
    assert path == cfg.shipped_dir("verifier"), "the shipped verifier no longer matches its config"
    return str(path)
