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
    `dataclasses.replace(cfg.reward, kind="random")`, `list(cfg.report_ns) + [32]`."""

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen_"):
            raise FrozenConfigError(f"{type(self).__name__}.{name}: the config is frozen once validated; "
                                    f"make a changed copy with dataclasses.replace")
        object.__setattr__(self, name, value)


def _refuse(self, *args, **kwargs):
    raise FrozenConfigError(f"a {type(self).__name__.removeprefix('Frozen').lower()} in a frozen config is "
                            f"read-only; build a changed copy (list(...), dict(...)) for a new config")


class FrozenList(list):
    """A list field of a frozen config: reads as a list (equality, JSON, YAML, OmegaConf), refuses
    every change. Pickles (Ray) and copies as itself."""

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce__(self):
        return FrozenList, (list(self),)


class FrozenDict(dict):
    """A dict field of a frozen config: reads as a dict, refuses every change."""

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse

    def __reduce__(self):
        return FrozenDict, (dict(self),)


def freeze(value: Any) -> Any:
    """Make `value` and everything inside it read-only and return it: schemas in place, lists and
    dicts (at any depth) as frozen copies."""
    if isinstance(value, list):
        return FrozenList(freeze(x) for x in value)
    if isinstance(value, tuple):
        return tuple(freeze(x) for x in value)
    if isinstance(value, dict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            object.__setattr__(value, f.name, freeze(getattr(value, f.name)))
        if isinstance(value, Schema):
            object.__setattr__(value, "_frozen_", True)
    return value


def is_frozen(obj: Any) -> bool:
    return isinstance(obj, Schema) and bool(obj.__dict__.get("_frozen_"))
