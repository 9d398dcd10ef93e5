"""`spark-rl eval`: greedy pass@1 and sampled pass@k / maj@k of a model on one dataset or a suite
(`--suite paper`: the paper's six benchmarks, one table). Settings come from an optional YAML
config (`configs/paper/eval.yaml`), dotted overrides, then the flags given."""

from __future__ import annotations

# flag -> EvalConfig field (flags default to None: only the ones given override the config)
FLAGS = {"model": "model", "bootstrap_config": "bootstrap_config", "n": "n", "seed": "arith_seed", "k": "k",
         "temperature": "temperature", "max_new_tokens": "max_new_tokens", "workers": "workers",
         "out": "output_dir", "prompt_template": "prompt_template"}


def add_arguments(p) -> None:
    p.add_argument("config", nargs="?", default=None, help="optional YAML config (e.g. configs/paper/eval.yaml)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. engine.dtype=bfloat16")
    p.add_argument("--model", default=None,
                   help="HF model folder, or 'bootstrap' (the default) for the policy of --bootstrap-config")
    p.add_argument("--bootstrap-config", default=None, help="default configs/demo/bootstrap.yaml")
    p.add_argument("--suite", default=None,
                   help="'paper' (MATH500, AIME24, AIME25, AMC23, OlympiadBench, Minerva Math) or NAME,NAME,...")
    p.add_argument("--data", default=None,
                   help="one dataset: 'arith' (held-out embedded problems, the default), a benchmark name "
                        "(math500, gsm8k_test, ...) or a JSONL path")
    p.add_argument("--n", type=int, default=None,
                   help="items per benchmark: the first N rows (default: the whole file; arith: 200)")
    p.add_argument("--seed", type=int, default=None, help="arith: problem seed (10000 = the bootstrap's held-out set)")
    p.add_argument("--k", type=int, default=None, help="samples per problem for pass@k and maj@k (1: greedy only)")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--workers", type=int, default=None, help="rollout workers (the data-parallel degree)")
    p.add_argument("--max-model-len", type=int, default=None)
    p.add_argument("--prompt-template", default=None,
                   help="what the policy sees, {problem} replaced (default: the prompt train-rl trains with)")
    p.add_argument("--out", default=None, help="output folder (default runs/eval): per-benchmark samples and "
                                               "summaries, suite.json, suite.md, suite.png")
    p.add_argument("--no-progress", action="store_true")


def build_config(args):
    import dataclasses

    from spark_rl.config import ConfigError, load_config
    from spark_rl.config.checks import freeze
    from spark_rl.config.loader import validate
    from spark_rl.pipelines.suite import EvalConfig

    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config and not config.endswith((".yaml", ".yml")):
        config, overrides = None, [config, *overrides]       # `spark-rl eval k=v ...` without a file
    cfg = load_config(EvalConfig, config, overrides)
    if args.suite is not None and args.data is not None:
        raise ConfigError("spark-rl eval: give --suite or --data, not both")
    changes = {key: getattr(args, flag) for flag, key in FLAGS.items() if getattr(args, flag) is not None}
    if args.suite is not None or args.data is not None:
        changes["suite"] = args.suite if args.suite is not None else args.data
    if args.max_model_len is not None:
        changes["engine"] = dataclasses.replace(cfg.engine, max_model_len=args.max_model_len)
    if (args.n is not None and args.n <= 0) or (args.k is not None and args.k <= 0):
        raise ConfigError("spark-rl eval: --n and --k must be > 0")
    cfg = dataclasses.replace(cfg, **changes)      # the loaded config is frozen: the flags make a copy
    validate(cfg)
    return freeze(cfg)


def run(args) -> int:
    from spark_rl.pipelines.suite import run_suite

    cfg = build_config(args)
    result = run_suite(cfg, progress=not args.no_progress)
    print(result["markdown"])
    print(f"\nwritten: {cfg.output_dir}/suite.json, suite.md, suite.png and <benchmark>_samples.jsonl / "
          f"_summary.json ({result['eval_s']:.0f} s)")
    return 0
