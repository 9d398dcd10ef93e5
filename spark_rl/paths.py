"""Where cached models and outputs live."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`SPARK_RL_CACHE`, else ~/.cache/spark-rl."""
    return Path(os.environ.get("SPARK_RL_CACHE", Path.home() / ".cache" / "spark-rl"))


def base_model_dir(preset: str, seed: int = 0) -> Path:
    """A random model of `preset` with the domain tokenizer (built on first use)."""
    from spark_rl.models.factory import build_base_model

    return build_base_model(cache_dir() / "models" / f"base-{preset}-s{seed}", preset=preset, seed=seed)
