"""Chaos from outside the driver (`spark-rl chaos --external`): a separate process that SIGKILLs
Ray actor processes of a running GRPO job by pid, at times the driver does not choose.

It finds the actors by their process titles, which Ray keeps current: `ray::RolloutWorker.__init__`
while an actor starts, `ray::RolloutWorker.load_shared` while it runs a method, `ray::RolloutWorker`
when idle. So it can aim at phases the in-process chaos cannot reach: a worker still starting (a
replacement in `__init__`) and a worker taking a weight sync. What it kills:

- the `plan`: `GROUP:PHASE` entries (`rollout:call`, `any:start-up`, `reward:weight-sync`), each
  spent on the first process seen in that group and phase (listed twice, it kills twice: a
  one-worker group's call, then its replacement while it starts, then the next one);
- `random` more kills of any target process at exponentially distributed times (mean
  `mean_interval_s`), whatever it is doing.

Kills start once the run has finished its first step (RUN/metrics.jsonl has a row: the groups
are up, so start-up kills hit replacements, not the first build) and stop when RUN/final.json
appears, the budget is spent, or the parent process is gone. Every kill is a JSON line in the log:
time, pid, title, group, phase, the run's last finished step. Learner ranks are never targets
(their death is the learner supervisor's test). Only this machine's processes are seen.

Standard library only: it must not share the driver's Ray session or its CPU-heavy imports.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import time
from pathlib import Path

TARGETS = {"RolloutWorker": "rollout", "RuleRewardWorker": "reward", "PRMRewardWorker": "reward",
           "ReferenceWorker": "reference"}
SYNC_METHODS = ("stage_weights", "stage_flat", "load_shared", "commit_weights")
PHASES = ("start-up", "weight-sync", "call", "idle", "any")
GROUPS = ("rollout", "reward", "reference", "any")


def phase_of(title: str) -> tuple[str, str] | None:
    """(group, phase) of a process title, None if it is not a target."""
    if not title.startswith("ray::"):
        return None
    cls, _, method = title[5:].partition(".")
    group = TARGETS.get(cls.strip())
    if group is None:
        return None
    method = method.split()[0] if method.strip() else ""
    if not method:
        return group, "idle"
    if method == "__init__":
        return group, "start-up"
    return group, "weight-sync" if method in SYNC_METHODS else "call"


def parse_plan(plan: str) -> list[tuple[str, str]]:
    out = []
    for item in filter(None, (x.strip() for x in plan.split(","))):
        group, _, phase = item.partition(":")
        if group not in GROUPS or phase not in PHASES:
            raise ValueError(f"chaos plan entry {item!r}: want GROUP:PHASE with GROUP in {GROUPS} and "
                             f"PHASE in {PHASES}")
        out.append((group, phase))
    return out


def _title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


def targets() -> dict[int, str]:
    """pid -> title of every target actor process on this machine."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            t = _title(int(name))
            if phase_of(t) is not None:
                out[int(name)] = t
    return out


def _steps_done(run_dir: Path) -> int:
    try:
        return sum(1 for line in (run_dir / "metrics.jsonl").read_text().splitlines() if '"train/loss"' in line)
    except OSError:
        return 0


def run_killer(run_dir: Path, log_path: Path, plan: list[tuple[str, str]], random_kills: int,
               mean_interval_s: float, seed: int, parent: int | None = None, poll_s: float = 0.005,
               rescan_s: float = 0.1, timeout_s: float = 3600.0) -> list[dict]:
    rng = random.Random(seed)
    kills: list[dict] = []
    plan = list(plan)
    deadline = time.monotonic() + timeout_s
    while _steps_done(run_dir) < 1:                       # the groups are up after the first step
        if (run_dir / "final.json").exists() or time.monotonic() > deadline:
            return kills
        time.sleep(0.2)
    next_random = time.monotonic() + rng.expovariate(1.0 / mean_interval_s) if random_kills else float("inf")
    pids: dict[int, str] = {}
    last_scan = 0.0
    while (plan or random_kills) and time.monotonic() < deadline:
        if (run_dir / "final.json").exists() or (parent is not None and not _alive(parent)):
            break
        now = time.monotonic()
        if now - last_scan >= rescan_s:
            pids, last_scan = targets(), now
        victim, why = None, ""
        for pid in list(pids):
            title = _title(pid)
            where = phase_of(title)
            if where is None:
                pids.pop(pid)
                continue
            pids[pid] = title
            hit = next((i for i, (g, ph) in enumerate(plan) if g in (where[0], "any") and ph in (where[1], "any")), None)
            if hit is not None:
                victim, why = pid, "plan {}:{}".format(*plan.pop(hit))
                break
        if victim is None and random_kills and now >= next_random and pids:
            victim, why = rng.choice(sorted(pids)), "random"
            random_kills -= 1
            next_random = now + rng.expovariate(1.0 / mean_interval_s)
        if victim is not None:
            title = pids.pop(victim)
            group, phase = phase_of(title)
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                continue
            kill = {"time": time.time(), "pid": victim, "title": title, "group": group, "phase": phase,
                    "why": why, "after_step": _steps_done(run_dir)}
            kills.append(kill)
            with log_path.open("a") as f:
                f.write(json.dumps(kill) + "\n")
            continue
        time.sleep(poll_s)
    return kills


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", required=True)
    p.add_argument("--log", required=True, help="JSONL kill log (appended)")
    p.add_argument("--plan", default="", help="GROUP:PHASE,... killed in order, e.g. rollout:call,rollout:start-up")
    p.add_argument("--random", type=int, default=0, help="kills at random times after the plan's")
    p.add_argument("--mean-interval-s", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parent", type=int, default=None, help="stop when this pid is gone")
    p.add_argument("--timeout-s", type=float, default=3600.0)
    a = p.parse_args(argv)
    kills = run_killer(Path(a.run_dir), Path(a.log), parse_plan(a.plan), a.random, a.mean_interval_s, a.seed,
                       a.parent, timeout_s=a.timeout_s)
    print(json.dumps({"kills": len(kills)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
