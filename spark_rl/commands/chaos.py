"""`spark-rl chaos CONFIG [overrides]`: the same GRPO run twice with one seed - clean, then with
random non-learner workers (rollout, reward, reference) killed mid-call - and a comparison of what
each consumed. Passes (exit 0) when both runs finish every step, consume the same prompts in the
same order, and every prompt group is generated and scored exactly once per step.

`--external`: the kills come from a separate process instead (`spark_rl.trainer.external_chaos`):
SIGKILL by pid at times the driver does not choose, aimed also at workers that are starting and
workers taking a weight sync (`--plan`), plus `--max-kills` random ones. Both runs then go through
the run supervisor, as `train-rl` does."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("config", help="a train-rl YAML config")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. grpo.prompts_per_step=4")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--kill-prob", type=float, default=0.3,
                   help="per group call: chance to kill a worker (elastic.chaos.kill_at adds targeted kills)")
    p.add_argument("--max-kills", type=int, default=8)
    p.add_argument("--chaos-seed", type=int, default=0)
    p.add_argument("--out", default="runs/chaos", help="folder for the two runs and chaos_report.json")
    p.add_argument("--external", action="store_true",
                   help="kills by pid from a separate process (random ones: --max-kills, --mean-interval-s)")
    p.add_argument("--plan", default="rollout:call,rollout:start-up,rollout:weight-sync,reward:start-up,reference:call",
                   help="with --external: GROUP:PHASE kills, each spent on the first process seen so (phases: start-up, weight-sync, call, idle)")
    p.add_argument("--mean-interval-s", type=float, default=4.0, help="with --external: mean time between random kills")
    p.add_argument("--no-progress", action="store_true")


def _fit(cfg, policy, train, evalset, progress, on_trainer=None):
    from spark_rl.trainer.grpo import GRPOTrainer
    from spark_rl.trainer.metrics import read_metrics
    from spark_rl.trainer.supervisor import fit_supervised

    fit_supervised(lambda: GRPOTrainer(cfg, policy, train, evalset), cfg.elastic, cfg.run.output_dir,
                   progress=progress, on_trainer=(lambda tr, attempt: on_trainer(tr)) if on_trainer else None)
    return [r for r in read_metrics(cfg.run.output_dir) if "consumed/prompts_total" in r]


def _start_killer(run_dir: Path, external: dict):
    import os
    import subprocess
    import sys

    log = run_dir / "external_kills.jsonl"
    log.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "spark_rl.trainer.external_chaos", "--run-dir", str(run_dir), "--log", str(log),
           "--plan", external.get("plan", ""), "--random", str(external.get("random", 0)),
           "--mean-interval-s", str(external.get("mean_interval_s", 4.0)), "--seed", str(external.get("seed", 0)),
           "--parent", str(os.getpid())]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL), log


def compare(clean: list[dict], chaos: list[dict], steps: int) -> dict:
    keys = ("consumed/prompts_total", "consumed/prompt_digest", "consumed/prompt_groups", "consumed/exactly_once")
    rows = []
    for a, b in zip(clean, chaos):
        rows.append({"step": a["step"], **{f"clean:{k.split('/')[1]}": a[k] for k in keys},
                     **{f"chaos:{k.split('/')[1]}": b[k] for k in keys},
                     "kills": b.get("chaos/kills", 0),
                     # a killed worker is seen mid-call (its shard fails) or, when it had answered just
                     # before dying, by the next step's health check
                     "recovered": sum(v for k, v in b.items() if k.startswith("ledger/")
                                      and (k.endswith("/failures") or k.endswith("/dead_found"))),
                     "redispatched": sum(v for k, v in b.items() if k.startswith("ledger/") and k.endswith("/redispatched")),
                     "reward_clean": a["reward/mean"], "reward_chaos": b["reward/mean"]})
    ok = (len(clean) == len(chaos) == steps
          and all(r["clean:prompt_digest"] == r["chaos:prompt_digest"] for r in rows)
          and all(r["clean:exactly_once"] == 1.0 and r["chaos:exactly_once"] == 1.0 for r in rows)
          and clean[-1]["consumed/prompts_total"] == chaos[-1]["consumed/prompts_total"])
    return {"ok": ok, "steps": [len(clean), len(chaos)],
            "consumed_clean": clean[-1]["consumed/prompts_total"] if clean else 0,
            "consumed_chaos": chaos[-1]["consumed/prompts_total"] if chaos else 0,
            "kills": sum(r["kills"] for r in rows), "recovered": sum(r["recovered"] for r in rows),
            "kills_last_step": rows[-1]["kills"] if rows else 0,
            "redispatched": sum(r["redispatched"] for r in rows),
            # same samples, rewards and updates: per-prompt seeds, whole-shard re-dispatch, synced replacements
            "identical": all(abs(a.get(k, 0.0) - b.get(k, 0.0)) < 1e-9 for a, b in zip(clean, chaos)
                             for k in ("reward/mean", "rollout/response_len", "train/loss", "train/grad_norm")),
            "rows": rows}


def chaos_pair(cfg, policy: str, out: str | Path, progress: bool = False, on_trainer=None,
               external: dict | None = None) -> dict:
    """Run `cfg` clean (its `elastic.chaos` off) and as configured (chaos on) under `out/clean` and
    `out/chaos` (Ray already initialized), and compare. `on_trainer(name, trainer)` runs before
    each fit. Everything else (schedule, seeds) is the same in both runs. `external`
    ({plan, random, mean_interval_s, seed}): the chaos run's kills come from a separate killer
    process instead (`elastic.chaos` is off in both runs); its kill log is in the report."""
    import dataclasses

    from spark_rl.config.rl import ChaosSection
    from spark_rl.trainer.data import build_problems

    if external is not None:
        cfg = dataclasses.replace(cfg, elastic=dataclasses.replace(cfg.elastic, chaos=ChaosSection()))
    elif not cfg.elastic.chaos.active:
        raise ValueError("chaos_pair: cfg.elastic.chaos has neither kill_prob > 0 nor kill_at")
    out = Path(out)
    train, evalset = build_problems(cfg.data)
    runs = {}
    for name in ("clean", "chaos"):
        c = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, output_dir=str(out / name)))
        if name == "clean":
            c = dataclasses.replace(c, elastic=dataclasses.replace(c.elastic, chaos=ChaosSection()))
        hook = (lambda tr, n=name: on_trainer(n, tr)) if on_trainer is not None else None
        killer = None
        if name == "chaos" and external is not None:
            Path(c.run.output_dir).mkdir(parents=True, exist_ok=True)
            killer, kill_log = _start_killer(Path(c.run.output_dir), external)
        try:
            runs[name] = _fit(c, policy, train, evalset, progress, hook)
        finally:
            if killer is not None:
                killer.terminate()
                killer.wait(timeout=30)
    report = compare(runs["clean"], runs["chaos"], cfg.grpo.steps)
    if external is not None:
        kills = [json.loads(x) for x in kill_log.read_text().splitlines()] if kill_log.exists() else []
        for r in report["rows"]:
            r["kills"] = sum(1 for k in kills if k["after_step"] == r["step"] - 1)
        report["kills"] = len(kills)
        report["kills_last_step"] = report["rows"][-1]["kills"] if report["rows"] else 0
        report["external_kills"] = kills
        report["kills_by"] = dict(Counter(f"{k['group']}:{k['phase']}" for k in kills))
    (out / "chaos_report.json").write_text(json.dumps(report, indent=1))
    return report


def run(args) -> int:
    from actors.cluster import init_ray
    from spark_rl.commands.train_rl import policy_path
    from spark_rl.config import load_config
    from spark_rl.config.rl import RLConfig

    chaos = [] if args.external else [f"elastic.chaos.kill_prob={args.kill_prob}",
                                      f"elastic.chaos.max_kills={args.max_kills}", f"elastic.chaos.seed={args.chaos_seed}"]
    cfg = load_config(RLConfig, args.config, list(args.overrides) + [f"grpo.steps={args.steps}", *chaos])
    external = None
    if args.external:
        from spark_rl.trainer.external_chaos import parse_plan

        parse_plan(args.plan)       # a bad entry fails here, not in the killer
        external = {"plan": args.plan, "random": args.max_kills, "mean_interval_s": args.mean_interval_s,
                    "seed": args.chaos_seed}
    policy = policy_path(cfg)
    init_ray(cfg.cluster)
    report = chaos_pair(cfg, policy, args.out, progress=not args.no_progress, external=external)
    for k in report.get("external_kills", []):
        print(f"kill after step {k['after_step']:>3}: {k['group']:<9} {k['phase']:<11} pid {k['pid']:<7} "
              f"{k['title']:<36} ({k['why']})")
    print(f"{'step':>4} {'consumed clean':>14} {'consumed chaos':>14} {'same prompts':>12} {'kills':>5} "
          f"{'recovered':>9} {'redispatched':>12} {'reward clean':>12} {'reward chaos':>12}")
    for r in report["rows"]:
        print(f"{r['step']:>4} {r['clean:prompts_total']:>14} {r['chaos:prompts_total']:>14} "
              f"{str(r['clean:prompt_digest'] == r['chaos:prompt_digest']):>12} {r['kills']:>5} "
              f"{r['recovered']:>9} {r['redispatched']:>12} {r['reward_clean']:>12.4f} {r['reward_chaos']:>12.4f}")
    print(json.dumps({k: v for k, v in report.items() if k not in ("rows", "external_kills")}))
    return 0 if report["ok"] else 1
