"""`spark-rl train-prm CONFIG`: SPARK Stage 2, one generative PRM per Stage 1 variant."""

from __future__ import annotations

import json


def add_arguments(p) -> None:
    p.add_argument("config", help="YAML config (configs/demo/train_prm.yaml)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.steps=50")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from spark_rl.config import load_config
    from spark_rl.prm.train import TrainPRMConfig, train_prm

    summary = train_prm(load_config(TrainPRMConfig, args.config, args.overrides), progress=not args.no_progress)
    print(json.dumps({v: {k: r.get(k) for k in ("train_rows", "steps", "final_loss", "heldout_nll", "train_s", "skipped")
                          if k in r} for v, r in summary.items()}, indent=1))
    return 0
