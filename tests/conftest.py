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

    from actors.cluster import ClusterConfig, init_ray

    init_ray(ClusterConfig(num_cpus=8, object_store_gib=1.0, log_to_driver=False))
    yield ray
    ray.shutdown()
