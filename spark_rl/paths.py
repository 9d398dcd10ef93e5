"""Where cached models and outputs live (a path, nothing built: the config schemas use it)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`SPARK_RL_CACHE`, else ~/.cache/spark-rl."""
    return Path(os.environ.get("SPARK_RL_CACHE", Path.home() / ".cache" / "spark-rl"))

