"""`spark-rl demo`: the whole SPARK loop on the embedded default, as one command.

    bootstrap -> synthesize (Stage 1) -> train-prm + eval-prm (Stage 2)
    -> train-rl with the PRM-CoT reward behind the gate, with RLVR, with the PRM and no gate (Stage 3)
    -> report (report.html, PNG plots, tables)

Each stage runs as its own `spark-rl` process (a stage that crashes cannot leave actors behind in
the next one) with its output in the demo folder and its log in `OUT/logs/`. A stage whose inputs
(config file, overrides, upstream stages, cores) are unchanged since it last finished is skipped;
an interrupted RL run continues from its latest checkpoint.

Stages that do not depend on each other run side by side (`max_parallel`), each pinned to its own
share of the cores, in the waves the config names (`waves`; else by dependency level). The demo's:
Stage 1 alone on every core (its lanes), RLVR, which needs neither Stage 1 nor Stage 2, beside the
Stage 2 evaluation, and the PRM-reward runs beside each other. Pinned, not merely concurrent: two engines whose threads
share cores spin against each other (measured: Stage 1 and RLVR side by side unpinned took 572 s
and 440 s, against 249 s and 156 s one after the other). Which cores a stage gets follows from the
plan alone, never from which stages were reused, so a stage computes the same numbers on a rerun.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from spark_rl.config import load_config
from spark_rl.config.demo import DemoConfig, RLRun  # noqa: F401  (the schema, re-exported)
from spark_rl.config.rl import RLConfig

MARKER = ".demo_stage.json"
# Stage logs go to files; their tqdm bars are written there too (at most one update a second,
# through tqdm's TQDM_MININTERVAL) and the console shows the latest one: the live view.
STAGE_ENV = {"TQDM_MININTERVAL": "1"}
_TQDM = re.compile(r"(?P<desc>[^\r\n|]*?):\s*\d+%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)\s*"
                   r"\[(?P<elapsed>[\d:]+)<(?P<eta>[\d:?]+)")


def stage_env() -> dict[str, str]:
    """What every stage's environment adds to the demo's: tqdm's pace, and DeepSpeed on the CPU unless set."""
    return {**STAGE_ENV, "DS_ACCELERATOR": os.environ.get("DS_ACCELERATOR", "cpu")}


@dataclass
class Stage:
    name: str
    argv: list[str]                 # the spark-rl command line
    out: Path                       # where its outputs (and marker) live
    config: str
    upstream: list[str] = field(default_factory=list)
    resumable: bool = False         # an RL run: continue from its latest checkpoint
    always_run: bool = False        # the bootstrap: it is its own cache (cheap when nothing changed)
    cores: tuple[int, ...] | None = None   # the CPU cores its processes may use; None: all of this process's


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
        overrides = [*cfg.rl_overrides, *run.overrides]
        # a run whose reward needs no PRM (RLVR) waits for no Stage 2 student: it can run beside Stage 1
        needs_prm = load_config(RLConfig, cfg.rl, overrides).reward.needs_prm
        student = [f"reward.prm.model_path={prm}/{run.prm_student or cfg.prm_student}/model"] if needs_prm else []
        argv = ["train-rl", cfg.rl, f"run.output_dir={rl_out}", f"policy.bootstrap_config={cfg.bootstrap}",
                *student, *overrides]
        stages.append(Stage(f"rl:{run.name}", argv, rl_out, cfg.rl, ["bootstrap", "train_prm"] if needs_prm
                            else ["bootstrap"], resumable=True))
    return stages


def waves(stages: list[Stage], max_parallel: int, cores: list[int],
          order: list[list[str]] | None = None) -> list[list[Stage]]:
    """The stages in waves that run side by side, each stage pinned to its share of `cores`.

    `order` (the demo's `waves`) names the waves; without it, a stage's level is the length of its
    longest upstream chain, and the stages of one level do not depend on each other. A group of
    stages wider than `max_parallel` is cut into waves, the short one first, so the last wave (the
    RL runs, the longest stages) runs full. A wave of one stage is not pinned."""
    width = max(1, min(max_parallel, len(cores)))
    groups = named_waves(stages, order) if order else level_waves(stages)
    out: list[list[Stage]] = []
    for same in groups:
        cut = len(same) % width or width
        chunks = [same[:cut]] + [same[i:i + width] for i in range(cut, len(same), width)]
        for chunk in chunks:
            m = len(chunk)
            for j, st in enumerate(chunk):
                st.cores = None if m == 1 else tuple(cores[j * len(cores) // m:(j + 1) * len(cores) // m])
            out.append(chunk)
    return out


def level_waves(stages: list[Stage]) -> list[list[Stage]]:
    level: dict[str, int] = {}
    for st in stages:                       # the plan lists every stage after its upstream
        level[st.name] = 1 + max((level[u] for u in st.upstream), default=-1)
    return [[st for st in stages if level[st.name] == lv] for lv in sorted(set(level.values()))]


def named_waves(stages: list[Stage], order: list[list[str]]) -> list[list[Stage]]:
    """The waves the demo config names, the bootstrap first; `ConfigError` naming the stage when
    one is unknown, missing, named twice, or runs no later than a stage it needs."""
    from spark_rl.config.checks import ConfigError

    by_name = {st.name: st for st in stages}
    named = [[n for n in w if n != "bootstrap"] for w in order]      # the bootstrap runs first, named or not
    order = [["bootstrap"], *[w for w in named if w]]
    wave_of: dict[str, int] = {}
    for i, wave in enumerate(order):
        for name in wave:
            if name not in by_name:
                raise ConfigError(f"waves: unknown stage {name!r} (stages: {', '.join(by_name)})")
            if name in wave_of:
                raise ConfigError(f"waves: stage {name!r} is named twice")
            wave_of[name] = i
    missing = [n for n in by_name if n not in wave_of]
    if missing:
        raise ConfigError(f"waves: stage(s) {', '.join(missing)} in no wave")
    for name, i in wave_of.items():
        for up in by_name[name].upstream:
            if wave_of[up] >= i:
                raise ConfigError(f"waves: {name!r} (wave {i}) needs {up!r}, which runs in wave {wave_of[up]}; "
                                  "a stage must run in a later wave than the stages it needs")
    return [[by_name[n] for n in wave] for wave in order]


def fingerprint(stage: Stage, upstream: dict[str, str]) -> str:
    text = Path(stage.config).read_text() if Path(stage.config).exists() else ""
    # a pinned stage: the number of its cores, not which (thread counts change float sums, core ids do not)
    blob = json.dumps({"argv": stage.argv, "config": text, "upstream": [upstream.get(u, "") for u in stage.upstream],
                       **({"cores": len(stage.cores)} if stage.cores else {})})
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


@dataclass
class Running:
    """A started stage process."""
    stage: Stage
    fp: str
    argv: list[str]
    proc: object                    # a subprocess.Popen or a forked StageProcess: pid, poll(), returncode
    log_path: Path
    t0: float

    def line(self) -> str:
        now = latest_progress(self.log_path)
        return f"{self.stage.name}  {now or 'starting ...'}  ({time.perf_counter() - self.t0:.0f} s)"


def start_stage(stage: Stage, fp: str, log_dir: Path, console, starter=None) -> Running | dict:
    """Start one stage's process (`starter`: forked from a preloaded server, or a fresh interpreter),
    or return its marker when an identical run already finished."""
    from rich.markup import escape

    from spark_rl.pipelines.stage_process import ExecStarter

    mark = read_marker(stage)
    if not stage.always_run and mark.get("fingerprint") == fp and mark.get("status") == "done":
        console.print(f"[dim]{escape(stage.name)}: up to date ({mark.get('wall_s', 0):.0f} s when it ran), skipped[/dim]")
        return {**mark, "skipped": True}
    if not stage.always_run and mark.get("fingerprint") not in (None, fp) and stage.out.exists():
        # outputs of other inputs (an older config or version): a resumable stage must not build on
        # them (Stage 1's shard store refuses shards of another config); kept one generation back
        previous = stage.out.with_name(stage.out.name + ".previous")
        if previous.exists():
            shutil.rmtree(previous)
        stage.out.rename(previous)
        console.print(f"{escape(stage.name)}: its inputs changed; the outputs of the earlier ones are now in "
                      f"{escape(str(previous))}")
    argv = list(stage.argv)
    if (stage.resumable and mark.get("fingerprint") == fp
            and (stage.out / "checkpoints" / "latest").exists()):
        argv += ["--resume", str(stage.out)]
        console.print(f"{escape(stage.name)}: continuing the interrupted run from its latest checkpoint")
    write_marker(stage, fingerprint=fp, status="started", argv=argv)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{stage.name.replace(':', '_')}.log"
    pinned = f", cores {','.join(map(str, stage.cores))}" if stage.cores else ""
    # escape(): the command line holds brackets (data.variants=[a,b]) that rich would read as markup
    console.print(f"[bold]{escape(stage.name)}[/bold]: {escape('spark-rl ' + ' '.join(argv))}  "
                  f"[dim](log: {escape(str(log_path))}{pinned})[/dim]")
    env = stage_env()
    # Pinned before the stage has started a thread or a child: its threads, the Ray cluster it starts
    # and every worker inherit the mask, and the engines size their thread pools from it (vLLM's
    # "auto" binding and `usable_cores` read the affinity).
    t0 = time.perf_counter()           # the first fork also waits for the server's preload: the stage pays it
    proc = (starter or ExecStarter()).start(argv, log_path, stage.cores, env)
    return Running(stage, fp, argv, proc, log_path, t0)


def finish_stage(run: Running, console) -> dict:
    """The marker of a stage whose process has exited; `StageFailed` when it failed."""
    from rich.markup import escape

    wall = time.perf_counter() - run.t0
    rc = run.proc.returncode
    if rc != 0:
        tail = "".join(run.log_path.read_text(errors="replace").splitlines(keepends=True)[-25:])
        raise StageFailed(f"stage {run.stage.name} failed (exit {rc}) after {wall:.0f} s; last lines of "
                          f"{run.log_path}:\n{tail}")
    info = {"fingerprint": run.fp, "status": "done", "argv": run.argv, "wall_s": wall, "finished": time.time(),
            "cores": list(run.stage.cores) if run.stage.cores else None}
    write_marker(run.stage, **info)
    console.print(f"{escape(run.stage.name)}: done in {wall:.0f} s")
    return info


def run_wave(wave: list[Stage], fps: dict[str, str], log_dir: Path, console, starter=None) -> dict[str, dict]:
    """Run the stages of one wave side by side; their markers by name. A failed stage does not stop
    the others (what they compute is kept for the rerun): the first failure is raised once all
    have ended."""
    from rich.markup import escape

    started = {st.name: start_stage(st, fps[st.name], log_dir, console, starter) for st in wave}
    running = [r for r in started.values() if isinstance(r, Running)]
    markers = {name: r for name, r in started.items() if not isinstance(r, Running)}
    failures: list[StageFailed] = []
    with console.status("starting ...") as status:
        printed = time.perf_counter()
        while running:
            time.sleep(0.5)
            for r in [r for r in running if r.proc.poll() is not None]:
                running.remove(r)
                try:
                    markers[r.stage.name] = finish_stage(r, console)
                except StageFailed as e:
                    failures.append(e)
            lines = [r.line() for r in running]
            status.update(escape("  |  ".join(lines)))
            if not console.is_terminal and lines and time.perf_counter() - printed > 30:
                for line in lines:          # no live status line in a log file: a line every 30 s
                    console.print(escape(line))
                printed = time.perf_counter()
    if failures:
        raise failures[0]
    return markers


def run_stage(stage: Stage, fp: str, log_dir: Path, console) -> dict:
    """Run one stage unless an identical one already finished; returns its marker."""
    return run_wave([stage], {stage.name: fp}, log_dir, console)[stage.name]


def run_demo(cfg: DemoConfig, report_only: bool = False) -> Path:
    from rich.console import Console
    from rich.markup import escape

    from spark_rl.pipelines.report import write_report

    console = Console()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stages = plan(cfg)
    # no affinity masks outside Linux: one stage at a time there
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else [0]
    schedule = waves(stages, cfg.max_parallel, cores, cfg.waves)
    fps: dict[str, str] = {}
    for st in stages:                       # upstream first: a stage's fingerprint holds theirs
        fps[st.name] = fingerprint(st, fps)
    timings: dict[str, dict] = {}
    if not report_only and cfg.preload_stages:
        from spark_rl.pipelines.stage_process import ForkServer

        # the server's environment is this process's when it starts: what tqdm and DeepSpeed read at
        # import time must be set by then
        os.environ.update(stage_env())
        starter = ForkServer()
    else:
        starter = None
    t0 = time.perf_counter()
    for i, wave in enumerate(schedule, start=1):
        names = [st.name for st in wave]
        if report_only:
            timings.update({n: read_marker(st) for n, st in zip(names, wave)})
            continue
        console.rule(escape(f"[{i}/{len(schedule)}] {' + '.join(names)}"))
        begun = time.perf_counter() - t0
        done = run_wave(wave, fps, out / "logs", console, starter)
        timings.update({n: {**done[n], "started_s": begun} for n in names})
    total = time.perf_counter() - t0
    path = write_report(cfg, stages, timings, out / "report", total_s=None if report_only else total)
    console.print(f"report: {path}  (demo wall time {total / 60:.1f} min)")
    return path
