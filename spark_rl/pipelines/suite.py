"""`spark-rl eval` over a suite of benchmarks: the paper's six-benchmark table in one command.

A suite is `paper` (MATH500, AIME 2024, AIME 2025, AMC 2023, OlympiadBench, Minerva Math: the
paper's RL evaluation) or a comma-separated list of benchmark names, `arith` (held-out embedded
problems) and JSONL paths. Every benchmark runs on one group of rollout workers (data-parallel:
each call's problems are split over the workers), is graded with math-verify against its ground
truth and written as `<name>_samples.jsonl` + `<name>_summary.json`; the suite's table (a column
per benchmark and the unweighted average, as the paper reports it) goes to `suite.json`,
`suite.md` and a bar chart `suite.png`. Prompts that do not fit the engine's context are scored
wrong and counted (`n_too_long`), never cut.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from spark_rl.config.checks import Schema
from spark_rl.config import require
from spark_rl.config.cluster import ClusterConfig
from spark_rl.config.resources import ResourceSpec
from spark_rl.config.engines import GeneratorConfig
from spark_rl.tasks.loaders import BENCHMARK_FILES, PAPER_EVAL_SET, file_stem
from spark_rl.trainer.data import POLICY_PROMPT

SUITES = {"paper": PAPER_EVAL_SET}
LABELS = {"math500": "MATH500", "aime24": "AIME24", "aime25": "AIME25", "amc23": "AMC23",
          "olympiadbench": "OlympiadBench", "minerva_math": "Minerva", "arith": "arith"}


@dataclass
class EvalConfig(Schema):
    model: str = "bootstrap"            # an HF folder, or "bootstrap": the policy `bootstrap_config` builds
    bootstrap_config: str = "configs/demo/bootstrap.yaml"
    suite: str = "arith"                # "paper", or names / JSONL paths separated by commas
    n: int = 0                          # items per benchmark: the first n rows (0: all; arith: 200)
    arith_seed: int = 10_000            # arith problems (10000 = the bootstrap's held-out set)
    k: int = 1                          # samples per problem for pass@k / maj@k (1: greedy pass@1 only)
    temperature: float = 1.0            # sampling (k > 1); pass@1 is always greedy
    top_p: float = 1.0
    max_new_tokens: int = 160
    seed: int = 0
    # What the policy sees: `{problem}` is replaced by the problem text. The default is the prompt
    # `train-rl` trains with (POLICY_PROMPT); chat_template: wrap it as a user turn of the model's
    # chat template (when its tokenizer has one).
    prompt_template: str = POLICY_PROMPT
    chat_template: bool = False
    output_dir: str = "runs/eval"
    workers: int = 1
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    engine: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(max_model_len=1024))
    cluster: ClusterConfig = field(default_factory=lambda: ClusterConfig(num_cpus=4, log_to_driver=False))

    def validate(self) -> None:
        require(self.n >= 0, "n", f"must be >= 0 (0: every row), got {self.n}")
        require(self.k >= 1, "k", f"must be >= 1, got {self.k}")
        require(self.workers >= 1, "workers", f"must be >= 1, got {self.workers}")
        require(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")
        require("{problem}" in self.prompt_template, "prompt_template", "must contain {problem}")
        for name in suite_names(self.suite):
            require(name == "arith" or name in BENCHMARK_FILES or name.endswith((".jsonl", ".jsonl.gz")), "suite",
                    f"unknown benchmark {name!r}: one of {sorted(BENCHMARK_FILES)}, arith, 'paper' or a JSONL path")


def suite_names(suite: str) -> list[str]:
    names = []
    for part in (s.strip() for s in suite.split(",")):
        if part:
            names += list(SUITES.get(part, [part]))
    if not names:
        raise ValueError("empty suite")
    return names


def label(name: str) -> str:
    return LABELS.get(name, file_stem(name))


def suite_problems(name: str, cfg: EvalConfig) -> list:
    from spark_rl.trainer.data import arith_problem, benchmark_problems, render_prompt

    if name == "arith":
        from spark_rl.tasks.domain import DomainConfig

        problems = [arith_problem(p) for p in DomainConfig().problems(cfg.n or 200, cfg.arith_seed)]
        if cfg.prompt_template != POLICY_PROMPT:
            problems = [replace(p, prompt=render_prompt(cfg.prompt_template, p.question)) for p in problems]
        return problems
    return benchmark_problems(name, cfg.n or None, template=cfg.prompt_template)


# ---- the table ------------------------------------------------------------------------------
def metric_keys(k: int) -> list[tuple[str, str]]:
    keys = [("pass@1_greedy", "pass@1 (greedy)")]
    if k > 1:
        keys += [(f"pass@{k}", f"pass@{k}"), (f"maj@{k}", f"maj@{k}"), ("pass@1_sampled", "pass@1 (sampled)")]
    return keys


def suite_table(summaries: dict[str, dict], k: int) -> list[dict]:
    """One row per metric: `metric`, then each benchmark's value and `avg` (unweighted mean over
    the benchmarks, the paper's average), all in percent."""
    rows = []
    for key, name in metric_keys(k):
        row = {"metric": name}
        vals = []
        for bench, s in summaries.items():
            row[bench] = 100.0 * s[key]
            vals.append(row[bench])
        row["avg"] = sum(vals) / len(vals)
        rows.append(row)
    return rows


def markdown_table(rows: list[dict], benches: list[str], model: str) -> str:
    head = ["model", "metric", *[label(b) for b in benches], "avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([model, r["metric"], *[f"{r[b]:.1f}" for b in benches], f"{r['avg']:.1f}"]) + " |")
    return "\n".join(lines)


def bar_chart(rows: list[dict], benches: list[str], title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [*benches, "avg"]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(cols)), 3.8))
    width = 0.8 / len(rows)
    for j, r in enumerate(rows):
        xs = [i + (j - (len(rows) - 1) / 2) * width for i in range(len(cols))]
        bars = ax.bar(xs, [r[c] for c in cols], width, label=r["metric"])
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([label(c) if c != "avg" else "average" for c in cols], rotation=20, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, max(100.0, max(r[c] for r in rows for c in cols) * 1.1))
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ---- the driver -----------------------------------------------------------------------------
def resolve_model(cfg: EvalConfig) -> str:
    from spark_rl.trainer.model_paths import resolve_model_path

    return resolve_model_path("" if cfg.model == "bootstrap" else cfg.model, cfg.bootstrap_config)


def run_suite(cfg: EvalConfig, progress: bool = True) -> dict:
    from transformers import AutoTokenizer

    from actors.cluster import init_ray
    from actors.rollout import rollout_group
    from spark_rl.config import save_resolved
    from spark_rl.models.chat import chat_prompt
    from spark_rl.trainer.evaluation import EvalSettings, evaluate

    t0 = time.perf_counter()
    model = resolve_model(cfg)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_resolved(cfg, out)
    benches = suite_names(cfg.suite)
    tok = AutoTokenizer.from_pretrained(model)
    sets = {}
    for name in benches:
        problems = suite_problems(name, cfg)
        if cfg.chat_template:
            problems = [replace(p, prompt=chat_prompt(tok, p.prompt)) for p in problems]
        limit = cfg.engine.max_model_len - 1
        too_long = {p.id for p in problems if len(tok(p.prompt, add_special_tokens=False)["input_ids"]) > limit}
        sets[name] = (problems, too_long)
    init_ray(cfg.cluster)
    engine = replace(cfg.engine, model_path=model)
    spec = cfg.resources
    group = rollout_group("eval", engine, spec, cfg.workers)
    settings = EvalSettings(k=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p,
                            max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    summaries = {}
    try:
        for name, (problems, too_long) in sets.items():
            key = file_stem(name)
            summaries[key] = evaluate(group, problems, settings, out_dir=out, progress=progress, name=key,
                                      too_long=too_long)
    finally:
        group.kill_all()
    keys = list(summaries)
    rows = suite_table(summaries, cfg.k)
    result = {"model": model, "suite": cfg.suite, "benchmarks": keys, "k": cfg.k,
              "prompt_template": cfg.prompt_template, "chat_template": cfg.chat_template,
              "summaries": summaries, "table": rows, "eval_s": time.perf_counter() - t0}
    (out / "suite.json").write_text(json.dumps(result, indent=1))
    md = markdown_table(rows, keys, Path(model).name)
    n_note = ", ".join(f"{label(b)} {summaries[b]['n']}" for b in keys)
    too = sum(s.get("n_too_long", 0) for s in summaries.values())
    (out / "suite.md").write_text(f"{md}\n\nAccuracy in %, graded with math-verify against the ground truth; "
                                  f"avg = unweighted mean over the benchmarks. Items: {n_note}; "
                                  f"prompts too long for the context (scored wrong): {too}.\n")
    bar_chart(rows, keys, f"{Path(model).name}: {cfg.suite}", out / "suite.png")
    result["markdown"] = md
    return result
