"""Typed configs: dataclass schemas + YAML files + dotted command-line overrides (OmegaConf).

`load_config(Schema, "configs/demo/x.yaml", ["trainer.lr=1e-5"])` returns a `Schema` instance,
validated and frozen (`checks.freeze`: a variant is a `dataclasses.replace` copy).
Every failure is a `ConfigError` with one line that names the key (and the file), never a
traceback from deep inside OmegaConf.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from spark_rl.config.checks import ConfigError, freeze, require, require_choice  # noqa: F401  (re-exported)

T = TypeVar("T")


def _one_line(e: OmegaConfBaseException, where: str) -> str:
    key = getattr(e, "full_key", None) or ""
    msg = (getattr(e, "msg", None) or str(e)).splitlines()[0]
    if isinstance(e, (ConfigKeyError, ConfigAttributeError)):
        return f"unknown config key '{key}'{where}" if key else f"{msg}{where}"
    if isinstance(e, ValidationError):
        return f"bad value for config key '{key}'{where}: {msg}"
    return f"config error at '{key}'{where}: {msg}"


def _replacing_mapping(merged: DictConfig, layer: DictConfig, key: str) -> DictConfig | None:
    """The mapping the override `key={...}` puts in place of its target, when that target is a plain
    mapping (a dict-typed field): a merge can never remove a key (`key={}` would change nothing).
    None otherwise: a section (a dataclass) still merges, `learner.engine={lr: 0.001}` sets that one field."""
    value, target = OmegaConf.select(layer, key), OmegaConf.select(merged, key, default=None)
    if isinstance(value, DictConfig) and isinstance(target, DictConfig) and OmegaConf.get_type(target) is dict:
        return value
    return None


def load_config(schema: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    base = OmegaConf.structured(schema)
    layers: list[tuple[DictConfig, str, str]] = []   # (layer, where, the override's key or "")
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = OmegaConf.load(p)
        except Exception as e:  # YAML syntax
            raise ConfigError(f"cannot parse {p}: {str(e).splitlines()[0]}") from None
        if not isinstance(loaded, DictConfig):
            raise ConfigError(f"{p}: top level must be a mapping")
        loaded.pop("defaults", None)
        layers.append((loaded, f" (in {p})", ""))
    for ov in overrides or []:
        if "=" not in ov:
            raise ConfigError(f"override {ov!r} is not of the form key=value")
        try:
            layers.append((OmegaConf.from_dotlist([ov]), f" (override {ov!r})", ov.split("=", 1)[0].strip()))
        except OmegaConfBaseException as e:
            raise ConfigError(f"bad override {ov!r}: {str(e).splitlines()[0]}") from None
    merged = base
    for layer, where, key in layers:
        try:
            mapping = _replacing_mapping(merged, layer, key) if key else None
            if mapping is None:
                merged = OmegaConf.merge(merged, layer)
            else:
                OmegaConf.update(merged, key, mapping, merge=False)
        except OmegaConfBaseException as e:
            raise ConfigError(_one_line(e, where)) from None
    try:
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise ConfigError(_one_line(e, "")) from None
    validate(obj)
    return freeze(obj)  # type: ignore[return-value]


def validate(obj: Any, prefix: str = "") -> None:
    """Call `validate()` on every nested dataclass that defines one; prefix its errors with the key."""
    if not dataclasses.is_dataclass(obj):
        return
    for f in dataclasses.fields(obj):
        validate(getattr(obj, f.name), f"{prefix}{f.name}.")
    check = getattr(obj, "validate", None)
    if callable(check):
        try:
            check()
        except ConfigError as e:
            raise ConfigError(f"{prefix}{e}" if prefix and not str(e).startswith(prefix) else str(e)) from None
        except ValueError as e:
            raise ConfigError(f"{prefix}{e}") from None


def to_yaml(obj: Any) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(obj))


def to_dict(obj: Any) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(obj), resolve=True)  # type: ignore[return-value]


def config_hash(obj: Any, length: int = 12) -> str:
    """Stable hash of a config's content (for caching stage outputs)."""
    payload = json.dumps(to_dict(obj) if dataclasses.is_dataclass(obj) else obj, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:length]


def save_resolved(obj: Any, run_dir: str | Path, name: str = "config.yaml") -> Path:
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    path.write_text(to_yaml(obj))
    return path
