"""What a schema's `validate()` uses: `require`, `require_choice`, `ConfigError`. No OmegaConf, so
the engine schemas (`spark_rl.config.engines`) import with nothing but the standard library (the
GPU smoke script runs on a box with only torch and transformers)."""

from __future__ import annotations

import dataclasses
from typing import Any


class ConfigError(ValueError):
    """A bad config: the message is one line naming the key and the problem."""


class DataFormatError(ValueError):
    """A bad row of a data file: the message is one line naming the file, the row and the field
    (the CLI prints it as `spark-rl: ...`, no traceback)."""

    def __init__(self, file, row: int, field: str, message: str):
        self.file, self.row, self.field = str(file), row, field
        super().__init__(f"{file}: row {row}: field '{field}': {message}")


def require(cond: bool, key: str, message: str) -> None:
    """For schemas' `validate()`: `require(self.lr > 0, "lr", "must be > 0")`."""
    if not cond:
        raise ConfigError(f"{key}: {message}")


def require_choice(value: Any, key: str, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{key}: {value!r} is not one of {sorted(choices)}")


class FrozenConfigError(AttributeError):
    """A validated (frozen) config was changed in place."""


class Schema:
    """Base of every config schema (a dataclass): built and changed freely until `freeze()` - the
    loader freezes what it validated, a run freezes what it runs - and read-only after, so the
    resolved config a run folder holds is the one that ran. A variant is a new object:
    `dataclasses.replace(cfg.reward, kind="random")`. (Lists and dicts inside stay Python's own.)"""

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen_"):
            raise FrozenConfigError(f"{type(self).__name__}.{name}: the config is frozen once validated; "
                                    f"make a changed copy with dataclasses.replace")
        object.__setattr__(self, name, value)


def freeze(obj: Any) -> Any:
    """Make `obj` and every schema inside it (fields, lists, dicts) read-only; returns `obj`."""
    if isinstance(obj, (list, tuple)):
        for x in obj:
            freeze(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            freeze(x)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            freeze(getattr(obj, f.name))
        if isinstance(obj, Schema):
            object.__setattr__(obj, "_frozen_", True)
    return obj


def is_frozen(obj: Any) -> bool:
    return isinstance(obj, Schema) and bool(obj.__dict__.get("_frozen_"))
