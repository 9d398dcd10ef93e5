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
from dataclasses import replace
from pathlib import Path

from spark_rl.config.eval import SUITES, EvalConfig, suite_names  # noqa: F401  (the schema, re-exported)
from spark_rl.tasks.loaders import POLICY_PROMPT, file_stem

LABELS = {"math500": "MATH500", "aime24": "AIME24", "aime25": "AIME25", "amc23": "AMC23",
          "olympiadbench": "OlympiadBench", "minerva_math": "Minerva", "arith": "arith"}


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
