"""`spark-rl demo [CONFIG]`: the main job. Bootstrap -> Stage 1 -> Stage 2 -> Stage 3 (PRM-CoT +
gate, RLVR, PRM without gate) -> report folder. Stages that already ran with the same inputs are
reused."""

from __future__ import annotations

DEFAULT = "configs/demo/demo.yaml"


def add_arguments(p) -> None:
    p.add_argument("config", nargs="?", default=DEFAULT, help=f"YAML config (default {DEFAULT})")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. rl_overrides=[grpo.steps=10]")
    p.add_argument("--report-only", action="store_true", help="rebuild the report from the stages' outputs")


def run(args) -> int:
    import sys

    from spark_rl.config import load_config
    from spark_rl.pipelines.demo import DemoConfig, StageFailed, run_demo

    cfg = load_config(DemoConfig, args.config, args.overrides)
    try:
        run_demo(cfg, report_only=args.report_only)
    except StageFailed as e:
        print(f"spark-rl demo: {e}", file=sys.stderr)
        return 1
    return 0
