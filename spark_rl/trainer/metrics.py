"""Step metrics: a JSONL file (the source of truth for reports and tests), TensorBoard and,
when `run.wandb.project` is set, Weights & Biases (the same finite scalars, at the same step)."""

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


WANDB_ID_FILE = "wandb_run_id"


def start_wandb(run_dir: Path, cfg, config=None):
    """A W&B run for `run_dir` (`cfg`: `WandbConfig`). A resumed run continues the same W&B run
    (its id is kept in RUN_DIR/wandb_run_id). Needs the `wandb` extra: a clear error without it."""
    try:
        import wandb
    except ImportError:
        raise ImportError("run.wandb.project is set but wandb is not installed: pip install 'spark-rl[wandb]'") from None
    import dataclasses
    import secrets

    id_file = run_dir / WANDB_ID_FILE
    run_id = id_file.read_text().strip() if id_file.exists() else secrets.token_hex(4)
    id_file.write_text(run_id)
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    return wandb.init(project=cfg.project, entity=cfg.entity or None, name=cfg.name or run_dir.resolve().name,
                      group=cfg.group or None, tags=list(cfg.tags) or None, mode=cfg.mode or None,
                      dir=str(run_dir), id=run_id, resume="allow", config=config, reinit="create_new",
                      settings=wandb.Settings(console="off"))   # the driver's stdout (progress bars) stays ours


class MetricsWriter:
    def __init__(self, run_dir: str | Path, tensorboard: bool = True, wandb=None, config=None):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(Path(run_dir) / "tb"))
            except Exception:  # tensorboard missing or broken: JSONL still has everything
                self.tb = None
        self.wandb = start_wandb(self.path.parent, wandb, config) if wandb is not None and wandb.project else None

    def write(self, step: int, metrics: dict) -> None:
        clean = {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in metrics.items()}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **clean}) + "\n")
        scalars = {k: v for k, v in clean.items() if isinstance(v, float) and math.isfinite(v)}
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)

    def truncate_after(self, step: int) -> None:
        """On resume: drop lines of steps that will be redone."""
        if not self.path.exists():
            return
        keep = [ln for ln in self.path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
        self.path.write_text("".join(ln + "\n" for ln in keep))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
