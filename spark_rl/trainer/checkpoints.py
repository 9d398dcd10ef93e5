"""Checkpoint retention: `run.keep_checkpoints: K` keeps the newest K step folders."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)
STEP_DIR = re.compile(r"^step_(\d+)$")


def prune_checkpoints(ckpt_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` `step_NNNNNN` folders of `ckpt_dir` (0 keeps all) and
    return what was deleted. The folder `latest` names is never deleted, whatever its step: call
    this only after the new checkpoint is complete and `latest` points to it, so a crash in
    between leaves at least one whole checkpoint to resume from."""
    if keep < 0:
        raise ValueError(f"keep_checkpoints must be >= 0, got {keep}")
    ckpt_dir = Path(ckpt_dir)
    if keep == 0 or not ckpt_dir.is_dir():
        return []
    latest_file = ckpt_dir / "latest"
    latest = latest_file.read_text().strip() if latest_file.exists() else None
    steps = sorted((int(m.group(1)), p) for p in ckpt_dir.iterdir()
                   if p.is_dir() and (m := STEP_DIR.match(p.name)))
    removed = []
    for _, path in steps[:-keep]:
        if path.name == latest:
            continue
        shutil.rmtree(path)
        removed.append(path)
    if removed:
        log.info("deleted old checkpoints (run.keep_checkpoints=%d): %s", keep, ", ".join(p.name for p in removed))
    return removed
