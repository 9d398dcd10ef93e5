"""`spark-rl train-rl CONFIG`: GRPO on the rollout/reward/reference/learner groups."""

from __future__ import annotations

import json
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("config", nargs="?", help="YAML config (configs/demo/rlvr.yaml); optional with --resume")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. grpo.steps=10")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its latest checkpoint, or from RUN_DIR/checkpoints/step_N "
                        "(the run's config.yaml unless CONFIG is given)")
    p.add_argument("--no-progress", action="store_true")


def resolve_config(args):
    from spark_rl.config import ConfigError, load_config
    from spark_rl.config.rl import RLConfig

    path = args.config
    run_dir = None
    if args.resume:
        src = Path(args.resume)
        run_dir = src.parent.parent if (src / "state").is_dir() else src   # a checkpoint folder, or a run folder
    if path is None:
        if run_dir is None:
            raise ConfigError("train-rl: give a CONFIG, or --resume RUN_DIR")
        path = str(run_dir / "config.yaml")
    overrides = list(args.overrides)
    if run_dir is not None:
        overrides.append(f"run.output_dir={run_dir}")
    return load_config(RLConfig, path, overrides)


def policy_path(cfg) -> str:
    """The configured policy, or the bootstrap's (trained first when not cached)."""
    from spark_rl.trainer.model_paths import resolve_model_path

    return resolve_model_path(cfg.policy.model_path, cfg.policy.bootstrap_config)


def run(args) -> int:
    from actors.cluster import init_ray
    from spark_rl.config import save_resolved
    from spark_rl.trainer.data import build_problems
    from spark_rl.trainer.grpo import GRPOTrainer
    from spark_rl.trainer.supervisor import fit_supervised

    cfg = resolve_config(args)
    policy = policy_path(cfg)
    train, evalset = build_problems(cfg.data)
    save_resolved(cfg, cfg.run.output_dir)
    init_ray(cfg.cluster)
    # a missing checkpoint in --resume is logged by fit_supervised (the run starts from step 0);
    # a dead learner rank or a cluster fault: rebuild and resume from the latest checkpoint
    # (elastic.learner_restarts / elastic.run_restarts times)
    history, trainer = fit_supervised(lambda: GRPOTrainer(cfg, policy, train, evalset), cfg.elastic,
                                      cfg.run.output_dir,
                                      progress=not args.no_progress, resume=args.resume)
    evals = [h for h in history if "eval/accuracy" in h]
    summary = {"run_dir": cfg.run.output_dir, "policy": policy, "steps": trainer.step}
    if evals:
        summary.update(eval_accuracy_first=evals[0]["eval/accuracy"], eval_accuracy_last=evals[-1]["eval/accuracy"],
                       eval_first_step=evals[0]["step"], eval_last_step=evals[-1]["step"])
    print(json.dumps(summary, indent=1))
    return 0
