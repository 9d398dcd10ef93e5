"""What a schema's `validate()` uses: `require`, `require_choice`, `ConfigError`. No OmegaConf, so
the engine schemas (`spark_rl.config.engines`) import with nothing but the standard library (the
GPU smoke script runs on a box with only torch and transformers)."""

from __future__ import annotations

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
