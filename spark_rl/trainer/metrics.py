"""Step metrics: a JSONL file (the source of truth for reports and tests) and TensorBoard."""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from pathlib import Path


class StepTimer:
    """Named wall-clock sections of one step; `overhead` is what no section accounts for."""

    def __init__(self):
        self.sections: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def section(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.sections[name] = self.sections.get(name, 0.0) + time.perf_counter() - t

    def summary(self) -> dict[str, float]:
        total = time.perf_counter() - self._start
        out = {f"time/{k}_s": v for k, v in self.sections.items()}
        out["time/step_s"] = total
        out["time/overhead_s"] = max(0.0, total - sum(self.sections.values()))
        return out


class MetricsWriter:
    def __init__(self, run_dir: str | Path, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(Path(run_dir) / "tb"))
            except Exception:  # tensorboard missing or broken: JSONL still has everything
                self.tb = None

    def write(self, step: int, metrics: dict) -> None:
        clean = {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in metrics.items()}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **clean}) + "\n")
        if self.tb is not None:
            for k, v in clean.items():
                if isinstance(v, float) and math.isfinite(v):
                    self.tb.add_scalar(k, v, step)
            self.tb.flush()

    def truncate_after(self, step: int) -> None:
        """On resume: drop lines of steps that will be redone."""
        if not self.path.exists():
            return
        keep = [ln for ln in self.path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
        self.path.write_text("".join(ln + "\n" for ln in keep))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
