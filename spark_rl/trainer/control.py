"""The control surface of a running GRPO job: `RUN_DIR/control/`, a queue of JSON command files.

`spark-rl ctl ... --run RUN_DIR` validates a command and writes it into `RUN_DIR/control/`
(written to a temporary name, then renamed: the driver never sees half a file). The driver polls
that folder between steps, applies the commands in the order they were queued, and moves each to
`control/applied/` or `control/rejected/` with the outcome; its state (step, group sizes, reward
kind) is in `control/status.json`. No torch, no Ray: `ctl` runs on any machine that sees RUN_DIR.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from spark_rl.config import ConfigError
from spark_rl.config.rl import ELASTIC_GROUPS, RewardSection, derive_reward_section


def parse_sizes(pairs: list[str]) -> dict[str, int]:
    """`["rollout=4", "reward=2"]` -> {"rollout": 4, "reward": 2}; bad input is a `ConfigError`."""
    if not pairs:
        raise ConfigError(f"scale: give GROUP=N, GROUP one of {', '.join(ELASTIC_GROUPS)}")
    sizes: dict[str, int] = {}
    for p in pairs:
        name, sep, value = p.partition("=")
        if not sep:
            raise ConfigError(f"scale: {p!r} is not GROUP=N")
        sizes[name.strip()] = value.strip()   # type: ignore[assignment]
    return validate_sizes(sizes)


def validate_sizes(sizes: dict[str, Any]) -> dict[str, int]:
    out = {}
    for name, value in sizes.items():
        if name == "learner":
            raise ConfigError("scale: the learner cannot be resized mid-run (its ranks form one DeepSpeed world); "
                              "restart with learner.num_ranks=N and --resume RUN_DIR")
        if name not in ELASTIC_GROUPS:
            raise ConfigError(f"scale: unknown group {name!r}; groups: {', '.join(ELASTIC_GROUPS)}")
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"scale: {name}={value!r}: size must be an integer >= 1") from None
        if str(value).strip() not in (str(n), f"{n}.0") or n < 1:
            raise ConfigError(f"scale: {name}={value!r}: size must be an integer >= 1")
        out[name] = n
    return out


def validate_command(cmd: dict, base_reward: RewardSection | None = None) -> dict:
    """A command as `ctl` writes it: {"op": "scale", "sizes": {...}} or
    {"op": "swap_reward", "kind": K, "overrides": [...]}. Returns it normalized."""
    op = cmd.get("op")
    if op == "scale":
        return {"op": "scale", "sizes": validate_sizes(dict(cmd.get("sizes") or {}))}
    if op == "swap_reward":
        kind, overrides = cmd.get("kind"), list(cmd.get("overrides") or [])
        if not isinstance(kind, str) or not kind:
            raise ConfigError("swap-reward: give a reward KIND")
        derive_reward_section(base_reward or RewardSection(), kind, overrides)
        return {"op": "swap_reward", "kind": kind, "overrides": overrides}
    raise ConfigError(f"unknown control command {op!r} (scale, swap_reward)")


class ControlQueue:
    """`RUN_DIR/control/`: command files (`<ns>-<id>.json`), `applied/`, `rejected/`, `status.json`."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir) / "control"

    @staticmethod
    def _write_atomic(path: Path, data: dict) -> None:
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:6]}.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)

    def submit(self, cmd: dict) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
        self._write_atomic(path, {**cmd, "submitted": time.time(), "by": f"{socket.gethostname()}:{os.getpid()}"})
        return path

    def pending(self) -> list[tuple[Path, dict | None]]:
        """Queued commands, oldest first; an unreadable file comes back as (path, None)."""
        if not self.dir.is_dir():
            return []
        out = []
        for p in sorted(self.dir.glob("*.json")):
            if p.name == "status.json":
                continue
            try:
                out.append((p, json.loads(p.read_text())))
            except (OSError, ValueError):
                out.append((p, None))
        return out

    def finish(self, path: Path, cmd: dict | None, ok: bool, **outcome) -> Path:
        dest_dir = self.dir / ("applied" if ok else "rejected")
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / path.name
        self._write_atomic(dest, {**(cmd or {"raw": _read_raw(path)}), **outcome})
        path.unlink(missing_ok=True)
        return dest

    def outcome(self, name: str) -> dict | None:
        for sub in ("applied", "rejected"):
            p = self.dir / sub / name
            if p.exists():
                return {"status": sub, **json.loads(p.read_text())}
        return None

    def write_status(self, status: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write_atomic(self.dir / "status.json", status)

    def status(self) -> dict | None:
        p = self.dir / "status.json"
        return json.loads(p.read_text()) if p.exists() else None


def _read_raw(path: Path) -> str:
    try:
        return path.read_text()[:2000]
    except OSError:
        return ""
