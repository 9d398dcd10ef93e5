"""`spark-rl bootstrap CONFIG`: train the embedded default's tiny policy and verifier (cached)."""

from __future__ import annotations

import json


def add_arguments(p) -> None:
    p.add_argument("config", help="YAML config (configs/demo/bootstrap.yaml)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. policy.steps=100")
    p.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation")
    p.add_argument("--rebuild", action="store_true",
                   help="train again from the random base models, ignoring the shipped and cached models")
    p.add_argument("--ship", action="store_true",
                   help="copy the resulting models into the package (spark_rl/assets/bootstrap/) to commit them")


def run(args) -> int:
    from spark_rl.bootstrap import BootstrapConfig, bootstrap
    from spark_rl.config import load_config

    cfg = load_config(BootstrapConfig, args.config, args.overrides)
    res = bootstrap(cfg, evaluate=not args.no_eval, rebuild=args.rebuild, ship=args.ship)
    print(json.dumps({"out_dir": str(res.out_dir), "policy": str(res.policy), "verifier": str(res.verifier),
                      "report": res.report}, indent=1))
    return 0
