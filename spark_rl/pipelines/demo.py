"""`spark-rl demo`: the whole SPARK loop on the embedded default, as one command.

    bootstrap -> synthesize (Stage 1) -> train-prm + eval-prm (Stage 2)
    -> train-rl with the PRM-CoT reward behind the gate, with RLVR, with the PRM and no gate (Stage 3)
    -> report (report.html, PNG plots, tables)

Each stage runs as its own `spark-rl` process (a stage that crashes cannot leave actors behind in
the next one) with its output in the demo folder and its log in `OUT/logs/`. A stage whose inputs
(config file, overrides, upstream stages) are unchanged since it last finished is skipped; an
interrupted RL run continues from its latest checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from spark_rl.config.demo import DemoConfig, RLRun  # noqa: F401  (the schema, re-exported)

MARKER = ".demo_stage.json"
# Stage logs go to files; their tqdm bars are written there too (at most one update a second,
# through tqdm's TQDM_MININTERVAL) and the console shows the latest one: the live view.
STAGE_ENV = {"TQDM_MININTERVAL": "1"}
_TQDM = re.compile(r"(?P<desc>[^\r\n|]*?):\s*\d+%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)\s*"
                   r"\[(?P<elapsed>[\d:]+)<(?P<eta>[\d:?]+)")


@dataclass
class Stage:
    name: str
    argv: list[str]                 # the spark-rl command line
    out: Path                       # where its outputs (and marker) live
    config: str
    upstream: list[str] = field(default_factory=list)
    resumable: bool = False         # an RL run: continue from its latest checkpoint
    always_run: bool = False        # the bootstrap: it is its own cache (cheap when nothing changed)


def plan(cfg: DemoConfig) -> list[Stage]:
    out = Path(cfg.output_dir)
    extra = cfg.stage_overrides
    synth, prm, evalp = out / "synthesize", out / "prm", out / "eval_prm"
    variants = "[" + ",".join(cfg.stage2_variants) + "]"
    stages = [
        Stage("bootstrap", ["bootstrap", cfg.bootstrap, *extra.get("bootstrap", [])], out / "bootstrap", cfg.bootstrap,
              always_run=True),
        Stage("synthesize", ["synthesize", cfg.synthesize, f"output_dir={synth}",
                             f"models.bootstrap_config={cfg.bootstrap}", *extra.get("synthesize", [])],
              synth, cfg.synthesize, ["bootstrap"]),
        Stage("train_prm", ["train-prm", cfg.train_prm, f"output_dir={prm}", f"data.stage1_dir={synth}/datasets",
                            f"data.variants={variants}", f"bootstrap_config={cfg.bootstrap}",
                            *extra.get("train_prm", [])], prm, cfg.train_prm, ["synthesize"]),
        Stage("eval_prm", ["eval-prm", cfg.eval_prm, f"output_dir={evalp}", f"train_prm_dir={prm}",
                           *extra.get("eval_prm", [])], evalp, cfg.eval_prm, ["train_prm"]),
    ]
    for run in cfg.rl_runs:
        rl_out = out / "rl" / run.name
        argv = ["train-rl", cfg.rl, f"run.output_dir={rl_out}", f"policy.bootstrap_config={cfg.bootstrap}",
                f"reward.prm.model_path={prm}/{run.prm_student or cfg.prm_student}/model", *cfg.rl_overrides,
                *run.overrides]
        stages.append(Stage(f"rl:{run.name}", argv, rl_out, cfg.rl, ["bootstrap", "train_prm"], resumable=True))
    return stages


def fingerprint(stage: Stage, upstream: dict[str, str]) -> str:
    text = Path(stage.config).read_text() if Path(stage.config).exists() else ""
    blob = json.dumps({"argv": stage.argv, "config": text, "upstream": [upstream.get(u, "") for u in stage.upstream]})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def read_marker(stage: Stage) -> dict:
    try:
        return json.loads((stage.out / MARKER).read_text())
    except (OSError, ValueError):
        return {}


def write_marker(stage: Stage, **info) -> None:
    stage.out.mkdir(parents=True, exist_ok=True)
    tmp = stage.out / (MARKER + ".tmp")
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, stage.out / MARKER)


class StageFailed(RuntimeError):
    pass


def latest_progress(log_path: Path, tail_bytes: int = 8192) -> str:
    """The newest tqdm bar in a stage log, as `desc n/total [elapsed<eta]`; "" when there is none."""
    try:
        with open(log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - tail_bytes))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    matches = list(_TQDM.finditer(text))
    if not matches:
        return ""
    d = matches[-1].groupdict()
    return f"{d['desc'].strip()} {d['n']}/{d['total']} [{d['elapsed']}<{d['eta']}]"


def run_stage(stage: Stage, fp: str, log_dir: Path, console) -> dict:
    """Run one stage unless an identical one already finished; returns its marker."""
    from rich.markup import escape

    mark = read_marker(stage)
    if not stage.always_run and mark.get("fingerprint") == fp and mark.get("status") == "done":
        console.print(f"[dim]{escape(stage.name)}: up to date ({mark.get('wall_s', 0):.0f} s when it ran), skipped[/dim]")
        return {**mark, "skipped": True}
    argv = list(stage.argv)
    if (stage.resumable and mark.get("fingerprint") == fp
            and (stage.out / "checkpoints" / "latest").exists()):
        argv += ["--resume", str(stage.out)]
        console.print(f"{escape(stage.name)}: continuing the interrupted run from its latest checkpoint")
    write_marker(stage, fingerprint=fp, status="started", argv=argv)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{stage.name.replace(':', '_')}.log"
    cmd = [sys.executable, "-m", "spark_rl.cli", *argv]
    # escape(): the command line holds brackets (data.variants=[a,b]) that rich would read as markup
    console.print(f"[bold]{escape(stage.name)}[/bold]: {escape('spark-rl ' + ' '.join(argv))}  "
                  f"[dim](log: {escape(str(log_path))})[/dim]")
    t = time.perf_counter()
    env = {**os.environ, **STAGE_ENV, "DS_ACCELERATOR": os.environ.get("DS_ACCELERATOR", "cpu")}
    with open(log_path, "w") as log, console.status(f"{escape(stage.name)} starting ...") as status:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        printed = time.perf_counter()
        while (rc := proc.poll()) is None:
            time.sleep(0.5)
            now = latest_progress(log_path)
            line = f"{escape(stage.name)}  {escape(now) if now else 'starting ...'}  [dim]({time.perf_counter() - t:.0f} s)[/dim]"
            status.update(line)
            if not console.is_terminal and now and time.perf_counter() - printed > 30:
                console.print(line)         # no live status line in a log file: a line every 30 s
                printed = time.perf_counter()
    wall = time.perf_counter() - t
    if rc != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-25:])
        raise StageFailed(f"stage {stage.name} failed (exit {rc}) after {wall:.0f} s; last lines of {log_path}:\n{tail}")
    info = {"fingerprint": fp, "status": "done", "argv": argv, "wall_s": wall, "finished": time.time()}
    write_marker(stage, **info)
    console.print(f"{escape(stage.name)}: done in {wall:.0f} s")
    return info


def run_demo(cfg: DemoConfig, report_only: bool = False) -> Path:
    from rich.console import Console
    from rich.markup import escape

    from spark_rl.pipelines.report import write_report

    console = Console()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stages = plan(cfg)
    fps: dict[str, str] = {}
    timings: dict[str, dict] = {}
    t0 = time.perf_counter()
    for i, stage in enumerate(stages, start=1):
        fps[stage.name] = fingerprint(stage, fps)
        if report_only:
            timings[stage.name] = read_marker(stage)
            continue
        console.rule(escape(f"[{i}/{len(stages)}] {stage.name}"))
        timings[stage.name] = run_stage(stage, fps[stage.name], out / "logs", console)
    total = time.perf_counter() - t0
    path = write_report(cfg, stages, timings, out / "report", total_s=None if report_only else total)
    console.print(f"report: {path}  (demo wall time {total / 60:.1f} min)")
    return path
