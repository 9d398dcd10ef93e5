"""`spark-rl eval-prm CONFIG`: ProcessBench-style F1 of generative PRMs and critic-prompted models."""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("config", help="YAML config (configs/demo/eval_prm.yaml)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.sources=[arith,gsm8k]")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from spark_rl.config import load_config
    from spark_rl.prm.evaluate import EvalPRMConfig, eval_prm

    eval_prm(load_config(EvalPRMConfig, args.config, args.overrides), progress=not args.no_progress)
    return 0
