"""`spark-rl ctl`: change a running GRPO job between steps.

    spark-rl ctl scale rollout=4 [reward=2 reference=2] --run RUN_DIR [--wait 300]
    spark-rl ctl swap-reward KIND [key=value ...] --run RUN_DIR [--wait 300]
    spark-rl ctl status --run RUN_DIR

A command is a JSON file queued in RUN_DIR/control/; the driver applies it at the next step
boundary and logs it (RUN_DIR/events.jsonl, `elastic/changes` in metrics.jsonl). With a shared
file system this works from any machine that sees RUN_DIR.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="ctl_command", metavar="ACTION", required=True)
    s = sub.add_parser("scale", help="resize actor groups: GROUP=N (rollout, reward, reference)")
    s.add_argument("sizes", nargs="+", metavar="GROUP=N")
    w = sub.add_parser("swap-reward", help="replace the reward group: KIND [reward-section overrides]")
    w.add_argument("kind", help="rlvr, random, process_aware, step_augmented, selective_advantage, global_step")
    w.add_argument("overrides", nargs="*", help="relative to the reward section, e.g. prm.model_path=DIR")
    st = sub.add_parser("status", help="the driver's last reported state, queued and recent commands")
    for q in (s, w, st):
        q.add_argument("--run", required=True, metavar="RUN_DIR", help="the run's output folder")
    for q in (s, w):
        q.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                       help="wait until the driver applied or rejected the command (0: just queue it)")


def _run_dir(path: str) -> Path:
    from spark_rl.config import ConfigError

    run = Path(path)
    if not run.is_dir():
        raise ConfigError(f"ctl: run folder {run} does not exist")
    if not (run / "config.yaml").exists() and not (run / "control").is_dir():
        raise ConfigError(f"ctl: {run} is not a train-rl run folder (no config.yaml)")
    return run


def _base_reward(run: Path):
    from spark_rl.config import load_config
    from spark_rl.config.rl import RLConfig

    if (run / "config.yaml").exists():
        return load_config(RLConfig, run / "config.yaml").reward
    return None


def run(args) -> int:
    from spark_rl.trainer.control import ControlQueue, parse_sizes, validate_command

    run_dir = _run_dir(args.run)
    queue = ControlQueue(run_dir)
    if args.ctl_command == "status":
        status = queue.status()
        pending = [p.name for p, _ in queue.pending()]
        events = []
        if (run_dir / "events.jsonl").exists():
            events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()[-10:] if x.strip()]
        print(json.dumps({"status": status, "queued": pending, "recent_events": events}, indent=1, default=str))
        return 0
    if args.ctl_command == "scale":
        cmd = {"op": "scale", "sizes": parse_sizes(args.sizes)}
    else:
        cmd = validate_command({"op": "swap_reward", "kind": args.kind, "overrides": list(args.overrides)},
                               _base_reward(run_dir))
    path = queue.submit(cmd)
    status = queue.status()
    where = (f"driver pid {status['pid']} on {status['host']} at step {status['step']}/{status['steps']}"
             if status else "no driver has reported in this run folder yet")
    print(f"queued {path.name}: {json.dumps(cmd)} ({where}; applied at the next step boundary)")
    if args.wait <= 0:
        return 0
    deadline = time.time() + args.wait
    while time.time() < deadline:
        out = queue.outcome(path.name)
        if out is not None:
            print(json.dumps(out, indent=1, default=str))
            return 0 if out["status"] == "applied" else 1
        time.sleep(0.5)
    print(f"ctl: not applied within {args.wait:.0f}s (still queued: {path})")
    return 1
