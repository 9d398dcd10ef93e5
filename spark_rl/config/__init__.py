"""Typed configs: the schemas of every command (`rl`, `bootstrap`, `synthesize`, `prm`, `eval`,
`demo`) and their parts (`engines`, `cluster`, `algos`, `rewards`, `resources`), none importing
torch or Ray (tests/test_layers.py), and the loader (`load_config`: YAML + dotted overrides, OmegaConf). The loader's names are imported on
first use, so `spark_rl.config.engines` loads without OmegaConf."""

from spark_rl.config.checks import ConfigError, require, require_choice

_LOADER = ("config_hash", "load_config", "save_resolved", "to_dict", "to_yaml")

__all__ = ["ConfigError", "config_hash", "load_config", "require", "require_choice", "save_resolved",
           "to_dict", "to_yaml"]


def __getattr__(name: str):
    if name in _LOADER:
        from spark_rl.config import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
