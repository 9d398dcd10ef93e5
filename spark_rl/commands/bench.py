"""`spark-rl bench rollout|sync|step|stage-start`: measured speed, printed as a table and written as JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="bench", metavar="WHAT", required=True)
    r = sub.add_parser("rollout", help="tokens/s of a RolloutWorker inside Ray vs a bare Generator")
    r.add_argument("--preset", default="small", choices=["tiny", "small"])
    r.add_argument("--prompts", type=int, default=64)
    r.add_argument("--n", type=int, default=4, help="samples per prompt")
    r.add_argument("--max-new-tokens", type=int, default=128)
    r.add_argument("--repeats", type=int, default=3, help="timed runs of each (best is kept)")
    r.add_argument("--workers", type=int, default=1,
                   help="also time a rollout group of this many workers (> 1) on the same prompts, split over them")
    r.add_argument("--bind", default="auto",
                   help="the group's resources.cpu_threads_bind: a core list per worker ('0|1'), percore, or auto")
    r.add_argument("--json", help="write results here")
    s = sub.add_parser("sync", help="seconds to sync all weights learner -> rollout vs a plain memcpy")
    s.add_argument("--preset", default="small", choices=["tiny", "small"])
    s.add_argument("--bucket-mb", type=int, default=64)
    s.add_argument("--rollout-workers", type=int, default=1)
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--transport", default="auto", choices=["auto", "object_store"],
                   help="auto: /dev/shm for same-node workers, object store across nodes")
    s.add_argument("--json", help="write results here")
    st = sub.add_parser("step", help="one GRPO step's time breakdown and the driver's overhead")
    st.add_argument("--preset", default="small", choices=["tiny", "small"])
    st.add_argument("--prompts", type=int, default=16, help="prompts per step")
    st.add_argument("--group-size", type=int, default=8)
    st.add_argument("--max-new-tokens", type=int, default=128)
    st.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    st.add_argument("--json", help="write results here")
    ss = sub.add_parser("stage-start", help="seconds to run the demo's shortest stage: a fresh interpreter vs a "
                                            "fork of the preloaded stage server, vs a bare interpreter start")
    ss.add_argument("--config", default="configs/demo/bootstrap.yaml",
                    help="the stage: `spark-rl bootstrap CONFIG --no-eval` (models shipped or cached: it only "
                         "imports, resolves and exits, like the start of every stage)")
    ss.add_argument("--repeats", type=int, default=3, help="timed runs of each (best is kept)")
    ss.add_argument("--json", help="write results here")


def _print(title: str, result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in result.items():
        t.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    Console().print(t)


def _save(path: str | None, result: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(result, indent=1))


def _prompts(n: int) -> list[str]:
    from spark_rl.tasks.arith import generate_problems, policy_prompt

    return [policy_prompt(p) for p in generate_problems(n, seed=123)]


def _timed(call) -> tuple[float, int]:
    t = time.perf_counter()
    out = call()
    return time.perf_counter() - t, sum(len(c.token_ids) for g in out for c in g)


def bench_rollout(args) -> dict:
    import ray
    import torch

    from actors.cluster import init_ray
    from actors.rollout import RolloutWorker, rollout_group
    from spark_rl.config.cluster import ClusterConfig
    from spark_rl.config.resources import ResourceSpec
    from spark_rl.engines.generator import Generator, GeneratorConfig
    from spark_rl.models.factory import base_model_dir

    spec = ResourceSpec(num_cpus=1, cpu_threads_bind=args.bind)
    spec.validate()                     # a bad --bind is named here, not inside a worker
    model = str(base_model_dir(args.preset))
    cfg = GeneratorConfig(model_path=model, max_model_len=512, seed=0)
    prompts = _prompts(args.prompts)
    kw = dict(n=args.n, temperature=1.0, max_new_tokens=args.max_new_tokens, seed=7)
    # Same config and prompts in both; timed runs alternate (never both at once on the same cores)
    # so drift in the machine's speed hits both sides alike. Best of `repeats` each.
    init_ray(ClusterConfig(num_cpus=4, log_to_driver=False))
    worker = RolloutWorker.options(num_cpus=1).remote(cfg, 0)
    info = ray.get(worker.ready.remote())
    bare = Generator(cfg)
    calls = {"bare": lambda: bare.generate(prompts, **kw),
             "actor": lambda: ray.get(worker.generate.remote(prompts, **kw))}
    group = rollout_group("bench", cfg, spec, args.workers) if args.workers > 1 else None
    if group is not None:               # the scale path: the prompts split over the group's workers
        calls["group"] = lambda: group.map_shards("generate", prompts, **kw)
    best = {k: (float("inf"), 0) for k in calls}
    for call in calls.values():
        call()  # warm-up
    for _ in range(args.repeats):
        for k, call in calls.items():
            best[k] = min(best[k], _timed(call))
    ray.kill(worker)
    (bare_s, bare_toks), (actor_s, actor_toks) = best["bare"], best["actor"]
    res = {"preset": args.preset, "prompts": len(prompts), "n": args.n, "bare_tokens": bare_toks,
           "actor_tokens": actor_toks, "bare_threads": torch.get_num_threads(), "actor_threads": info["torch_threads"],
           "bare_tok_s": bare_toks / bare_s, "actor_tok_s": actor_toks / actor_s}
    res["ratio"] = res["actor_tok_s"] / res["bare_tok_s"]
    if group is not None:
        where = sorted(group.placement(), key=lambda x: x["worker_index"])
        group.kill_all()
        group_s, group_toks = best["group"]
        res.update({"workers": args.workers, "bind": args.bind, "group_tokens": group_toks,
                    "group_cores": " | ".join(",".join(map(str, x["cores"])) for x in where),
                    "group_threads": " | ".join(str(x["torch_threads"]) for x in where),
                    "group_tok_s": group_toks / group_s})
        res["group_ratio"] = res["group_tok_s"] / res["bare_tok_s"]
    return res


def bench_sync(args) -> dict:
    import numpy as np
    import ray
    import torch

    from actors.cluster import init_ray
    from actors.group import ActorGroup
    from actors.learner import LearnerGroup
    from actors.rollout import RolloutWorker
    from spark_rl.config.cluster import ClusterConfig
    from spark_rl.config.engines import GeneratorConfig, LearnerConfig
    from spark_rl.config.resources import ResourceSpec
    from spark_rl.models.factory import base_model_dir

    model = str(base_model_dir(args.preset))
    init_ray(ClusterConfig(num_cpus=6, log_to_driver=False))
    learner = LearnerGroup(model, LearnerConfig(zero_stage=2), 1, ResourceSpec(num_cpus=1))
    gen_cfg = GeneratorConfig(model_path=model, max_model_len=256)
    rollout = ActorGroup("rollout", lambda i: RolloutWorker.options(num_cpus=1).remote(gen_cfg, i),
                         args.rollout_workers)
    try:
        times, stats = [], {}
        for v in range(args.repeats + 1):
            t = time.perf_counter()
            st = learner.push_weights(rollout.workers, bucket_bytes=args.bucket_mb << 20, version=v + 1,
                                      transport=args.transport)
            dt = time.perf_counter() - t
            if v and (not times or dt < min(times)):  # the first sync is a warm-up; keep the best's stats
                stats = st
            if v:
                times.append(dt)
        # The baseline: copy the same tensors once into already-allocated memory.
        tensors = learner.call_all("state_dict_cpu")[0]
        dst = {k: torch.empty_like(x) for k, x in tensors.items()}
        copies = []
        for _ in range(args.repeats + 1):
            t = time.perf_counter()
            for k, x in tensors.items():
                dst[k].copy_(x)
            copies.append(time.perf_counter() - t)
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model)
        probe = [tok("Start with 3. Add 4.\n<step>Step 1: 3 + 4 = 7</step>")["input_ids"]]
        ref = np.array(learner.compute_logprobs(probe)[0])
        diff = max(float(np.max(np.abs(np.array(ray.get(h.sequence_logprobs.remote(probe))[0]) - ref)))
                   for h in rollout.workers)
    finally:
        learner.shutdown()
        rollout.kill_all()
    res = {"preset": args.preset, "rollout_workers": args.rollout_workers, "transport": args.transport,
           "local_workers": stats["local_workers"], "bytes": stats["bytes"], "buckets": stats["buckets"],
           "sync_s": min(times), "transfer_s": stats["transfer_s"], "commit_s": stats["commit_s"],
           "memcpy_s": min(copies)}
    res["ratio"] = res["sync_s"] / res["memcpy_s"]
    res["max_abs_logprob_diff"] = diff
    return res


def bench_step(args) -> dict:
    import tempfile

    from actors.cluster import init_ray
    from spark_rl.config.cluster import ClusterConfig
    from spark_rl.config.rl import RLConfig
    from spark_rl.models.factory import base_model_dir
    from spark_rl.trainer.data import build_problems
    from spark_rl.trainer.grpo import GRPOTrainer

    cfg = RLConfig()
    cfg.run.output_dir = tempfile.mkdtemp(prefix="spark-rl-bench-step-")
    cfg.run.tensorboard = False
    cfg.cluster = ClusterConfig(num_cpus=8, log_to_driver=False)
    cfg.data.train_size, cfg.data.eval_size = 512, 0
    cfg.rollout.engine.max_model_len = 512
    g = cfg.grpo
    g.steps, g.prompts_per_step, g.group_size = args.steps + 1, args.prompts, args.group_size
    g.max_new_tokens, g.eval_every, g.checkpoint_every = args.max_new_tokens, 0, 0
    train, evalset = build_problems(cfg.data)
    init_ray(cfg.cluster)
    trainer = GRPOTrainer(cfg, str(base_model_dir(args.preset)), train, evalset)
    try:
        trainer.sync_weights()
        steps = [trainer.train_step() for _ in range(args.steps + 1)][1:]  # the first is a warm-up
    finally:
        trainer.shutdown()
    keys = ["step", "generate", "reward", "reference", "train", "sync", "overhead"]
    res = {"preset": args.preset, "prompts": args.prompts, "group_size": args.group_size, "timed_steps": args.steps}
    for k in keys:
        res[f"{k}_s"] = sum(m.get(f"time/{k}_s", 0.0) for m in steps) / len(steps)
    res["overhead_share"] = res["overhead_s"] / res["step_s"]
    res["response_len"] = sum(m["rollout/response_len"] for m in steps) / len(steps)
    return res


def bench_stage_start(args) -> dict:
    """The demo's shortest stage (the bootstrap when its models are shipped or cached: imports,
    resolves, exits) on one core, started the two ways the demo can (`spark_rl.pipelines.stage_process`),
    against the floor: an interpreter that imports nothing."""
    import os
    import subprocess
    import sys
    import tempfile

    from spark_rl.pipelines.stage_process import ExecStarter, ForkServer

    if not Path(args.config).exists():
        raise FileNotFoundError(f"bench stage-start: no bootstrap config at {args.config} (run it from the repository)")
    core = (min(os.sched_getaffinity(0)),)
    tmp = Path(tempfile.mkdtemp(prefix="spark-rl-bench-"))
    argv = ["bootstrap", args.config, "--no-eval"]

    def run_stage(starter) -> float:
        t = time.perf_counter()
        proc = starter.start(argv, tmp / "stage.log", core, {})
        proc.wait()
        if proc.returncode != 0:
            raise RuntimeError(f"bench stage-start: the stage failed (exit {proc.returncode}); see {tmp / 'stage.log'}")
        return time.perf_counter() - t

    def bare() -> float:
        t = time.perf_counter()
        subprocess.run(["taskset", "-c", str(core[0]), sys.executable, "-c", "pass"], check=True)
        return time.perf_counter() - t

    fork = ForkServer()
    first_fork = run_stage(fork)                  # the server starts and imports its preload here
    res = {"bare_interpreter_s": min(bare() for _ in range(args.repeats)),
           "exec_s": min(run_stage(ExecStarter()) for _ in range(args.repeats)),
           "fork_s": min(run_stage(fork) for _ in range(args.repeats)),
           "fork_server_start_s": first_fork}
    res["saved_per_stage_s"] = res["exec_s"] - res["fork_s"]
    return res


def run(args) -> int:
    if args.bench == "rollout":
        res = bench_rollout(args)
    elif args.bench == "sync":
        res = bench_sync(args)
    elif args.bench == "step":
        res = bench_step(args)
    elif args.bench == "stage-start":
        res = bench_stage_start(args)
    else:
        raise AssertionError(args.bench)
    _print(f"bench {args.bench}", res)
    _save(args.json, res)
    return 0
