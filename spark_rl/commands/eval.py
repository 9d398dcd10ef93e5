"""`spark-rl eval`: greedy pass@1 and sampled pass@k / maj@k of a model on a dataset."""

from __future__ import annotations

import json


def add_arguments(p) -> None:
    p.add_argument("--model", default="bootstrap",
                   help="HF model folder, or 'bootstrap' for the policy of --bootstrap-config")
    p.add_argument("--bootstrap-config", default="configs/demo/bootstrap.yaml")
    p.add_argument("--data", default="arith",
                   help="'arith' (held-out embedded problems), a benchmark name (math500, gsm8k_test, ...) or a JSONL path")
    p.add_argument("--n", type=int, default=None,
                   help="problems: arith 200 by default; a benchmark file is used whole unless given (first N rows)")
    p.add_argument("--seed", type=int, default=10_000, help="arith: problem seed (10000 = the bootstrap's held-out set)")
    p.add_argument("--k", type=int, default=1, help="samples per problem for pass@k and maj@k (1: greedy only)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--workers", type=int, default=1, help="rollout workers")
    p.add_argument("--max-model-len", type=int, default=1024)
    p.add_argument("--out", default="runs/eval", help="writes <name>_samples.jsonl and <name>_summary.json")
    p.add_argument("--no-progress", action="store_true")


def eval_problems(data: str, n: int | None, seed: int) -> tuple[list, str]:
    """(problems, name) of `--data`: `n` held-out arithmetic problems (200 by default), or a
    benchmark file whole unless `n` asks for its first rows (MATH500 is 500 problems)."""
    from spark_rl.tasks.domain import DomainConfig
    from spark_rl.trainer.data import arith_problem, benchmark_problems

    if data == "arith":
        return [arith_problem(p) for p in DomainConfig().problems(n or 200, seed)], "arith"
    return benchmark_problems(data, n), data.rsplit("/", 1)[-1].removesuffix(".jsonl")


def run(args) -> int:
    from actors.cluster import init_ray
    from actors.group import ActorGroup
    from actors.rollout import RolloutWorker
    from spark_rl.config.cluster import ClusterConfig
    from spark_rl.config.engines import GeneratorConfig
    from spark_rl.trainer.evaluation import EvalSettings, evaluate

    if (args.n is not None and args.n <= 0) or args.k <= 0:
        raise SystemExit("spark-rl eval: --n and --k must be > 0")
    from spark_rl.trainer.model_paths import resolve_model_path

    model = resolve_model_path("" if args.model == "bootstrap" else args.model, args.bootstrap_config)
    problems, name = eval_problems(args.data, args.n, args.seed)
    init_ray(ClusterConfig(num_cpus=max(4, args.workers + 1), log_to_driver=False))
    gen = GeneratorConfig(model_path=model, max_model_len=args.max_model_len)
    group = ActorGroup("rollout", lambda i: RolloutWorker.options(num_cpus=1).remote(gen, i), args.workers)
    try:
        summary = evaluate(group, problems, EvalSettings(k=args.k, temperature=args.temperature,
                                                         max_new_tokens=args.max_new_tokens),
                           out_dir=args.out, progress=not args.no_progress, name=name)
    finally:
        group.kill_all()
    print(json.dumps({"model": model, "data": args.data, **summary}, indent=1))
    return 0
