"""`spark-rl synthesize CONFIG`: SPARK Stage 1, synthetic step-level verification data."""

from __future__ import annotations

import json


def add_arguments(p) -> None:
    p.add_argument("config", help="YAML config (configs/demo/synthesize.yaml)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. verifier.n=8")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from spark_rl.config import load_config
    from spark_rl.pipelines.synthesize import SynthesizeConfig, synthesize

    cfg = load_config(SynthesizeConfig, args.config, args.overrides)
    report = synthesize(cfg, progress=not args.no_progress)
    print(json.dumps({k: report[k] for k in ("problems", "solutions", "curation", "dataset_sizes", "raw_s")}, indent=1))
    return 0
