"""Reports: the demo's (`write_report`: `report.html` with the Stage 1, 2 and 3 tables and PNG
plots, plus `report.json` with every number in it) and one run folder's (`write_run_report`, what
`spark-rl report RUN_DIR` writes for a train-rl, synthesize, train-prm, eval-prm or eval run),
built from the same tables and plots: reward, held-out accuracy, KL, entropy, response length and
step counts, hacking indicators, PRM agreement where logged, the step-time breakdown (stacked).
Reads only files the stages wrote."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import numpy as np

from spark_rl.config.prm import START_PREFIX
from spark_rl.trainer.metrics import read_metrics

HACKING = [("hacking/text_after_answer_share", "share with text after </answer>"),
           ("hacking/multi_answer_block_share", "share with >1 <answer> block"),
           ("hacking/single_step_share", "share of single-step solutions"),
           ("hacking/steps_mean", "steps per solution (mean)")]
AGREEMENT = [("prm/agreement", "PRM verdict = ground truth (share)"),
             ("prm/yes_precision", "precision of the PRM's Yes"),
             ("prm/yes_recall", "recall of the PRM's Yes")]
TIME_PARTS = ["generate_s", "reward_s", "reference_s", "train_s", "sync_s", "overhead_s"]


def _json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["step"], r[key]) for r in rows if key in r and r[key] is not None]
    return [p[0] for p in pts], [float(p[1]) for p in pts]


def _tail_mean(rows: list[dict], key: str, n: int = 5) -> float | None:
    vals = [r[key] for r in rows if key in r and r.get("step", 0) > 0]
    return float(np.mean(vals[-n:])) if vals else None


def stage3_rows(runs: dict[str, list[dict]], run_meta: dict[str, dict]) -> list[dict]:
    table = []
    for name, rows in runs.items():
        steps, acc = _series(rows, "eval/accuracy")
        row = {"run": name, **run_meta.get(name, {}),
               "steps": max((r["step"] for r in rows), default=0),
               "acc_before": acc[0] if acc and steps[0] == 0 else None,
               "acc_after": acc[-1] if acc else None,
               "reward_last5": _tail_mean(rows, "reward/mean"),
               "rollout_acc_last5": _tail_mean(rows, "rollout/accuracy"),
               "kl_last5": _tail_mean(rows, "train/kl")}
        for key, _ in HACKING + AGREEMENT:
            row[key.split("/")[1] + "_first"] = next((r[key] for r in rows if key in r), None)
            row[key.split("/")[1] + "_last5"] = _tail_mean(rows, key)
        table.append(row)
    return table


# ---- plots ----------------------------------------------------------------------------------
def _figure(n_axes: int = 1, width: float = 6.4):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(n_axes, 2)
    rows = (n_axes + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols / (1.4 if cols > 1 else 1), 3.6 * rows), squeeze=False)
    flat = [ax for line in axes for ax in line]
    for ax in flat[n_axes:]:
        ax.set_visible(False)           # an odd panel count leaves one grid cell empty
    return fig, flat[:n_axes], plt


def line_plot(runs: dict[str, list[dict]], panels: list[tuple[str, str]], title: str, path: Path,
              xlabel: str = "GRPO step") -> Path:
    fig, axes, plt = _figure(len(panels))
    for ax, (key, label) in zip(axes, panels):
        for name, rows in runs.items():
            x, y = _series(rows, key)
            if x:
                ax.plot(x, y, marker="o" if len(x) < 8 else None, ms=3, label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    # the legend on the first panel that has a series (a metric no run logged leaves its panel empty)
    labelled = [ax for ax in axes if ax.get_legend_handles_labels()[0]]
    if labelled:
        labelled[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def time_plot(runs: dict[str, list[dict]], path: Path) -> Path:
    """Stacked step-time breakdown: one bar per GRPO step for a single run, the mean step of each
    run for several."""
    fig, axes, plt = _figure(1)
    ax = axes[0]
    if len(runs) == 1:
        rows = [r for r in next(iter(runs.values())) if "time/step_s" in r]
        labels, x_label, y_label = [int(r["step"]) for r in rows], "GRPO step", "seconds"
        parts = {part: np.array([float(r.get(f"time/{part}", 0.0)) for r in rows]) for part in TIME_PARTS}
    else:
        labels, x_label, y_label = list(runs), "run", "seconds per GRPO step (mean)"
        parts = {part: np.array([_tail_mean(runs[n], f"time/{part}", n=10**6) or 0.0 for n in labels])
                 for part in TIME_PARTS}
    bottom = np.zeros(len(labels))
    for part, vals in parts.items():
        ax.bar(labels, vals, bottom=bottom, label=part.removesuffix("_s"))
        bottom += vals
    if len(runs) == 1:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(y_label)
    ax.set_xlabel(x_label)
    ax.legend(fontsize=8)
    ax.set_title("Step-time breakdown")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rl_plots(runs: dict[str, list[dict]], out: Path) -> list[Path]:
    """The GRPO plots of one or more runs' metrics; the PRM-agreement plot only where it is logged."""
    if not any(runs.values()):
        return []
    plots = [
        line_plot(runs, [("reward/mean", "training reward (mean)")], "Training reward", out / "reward.png"),
        line_plot(runs, [("eval/accuracy", "held-out greedy accuracy (ground truth)"),
                         ("rollout/accuracy", "sampled accuracy (ground truth)")],
                  "Accuracy: validation always grades against the ground truth", out / "accuracy.png"),
        line_plot(runs, [("train/kl", "KL to reference (k3)")], "KL", out / "kl.png"),
        line_plot(runs, [("train/entropy", "policy entropy (nats per response token)")], "Entropy", out / "entropy.png"),
        line_plot(runs, [("rollout/response_len", "response tokens (mean)"), ("hacking/steps_mean", "steps (mean)"),
                         ("hacking/steps_p10", "steps (10th percentile)"), ("hacking/steps_p90", "steps (90th percentile)")],
                  "Response length and step counts", out / "length_steps.png"),
        line_plot(runs, list(HACKING), "Reward-hacking indicators", out / "hacking.png"),
    ]
    judged = {k: v for k, v in runs.items() if any("prm/agreement" in r for r in v)}
    if judged:
        plots.append(line_plot(judged, list(AGREEMENT), "Reward quality: the PRM's verdicts vs math-verify on the "
                               "same samples", out / "prm_agreement.png"))
    plots.append(time_plot(runs, out / "step_time.png"))
    return plots


# ---- html -----------------------------------------------------------------------------------
def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return html.escape(str(v))


def html_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(k))}</td>" for k, _ in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
         "text-align:right}th{background:#f0f0f0}img{max-width:100%;border:1px solid #eee;margin:.5em 0}")

S3_COLUMNS = [("run", "run"), ("reward", "reward"), ("prm", "PRM"), ("gate", "gate"), ("steps", "steps"),
              ("acc_before", "held-out acc before"), ("acc_after", "held-out acc after"),
              ("reward_last5", "train reward"), ("rollout_acc_last5", "sampled acc"),
              ("kl_last5", "KL"),
              ("text_after_answer_share_first", "text after answer (first)"),
              ("text_after_answer_share_last5", "text after answer (last)"),
              ("multi_answer_block_share_last5", ">1 answer block (last)"),
              ("single_step_share_first", "single-step (first)"),
              ("single_step_share_last5", "single-step (last)"),
              ("steps_mean_first", "steps (first)"), ("steps_mean_last5", "steps (last)"),
              ("agreement_first", "PRM agreement (first)"), ("agreement_last5", "PRM agreement (last)"),
              ("yes_precision_last5", "PRM Yes precision (last)"),
              ("yes_recall_last5", "PRM Yes recall (last)")]
S2_COLUMNS = [("model", "student (Stage 1 variant[.format])"), ("format", "format"),
              ("acc_err", "acc_err"), ("acc_ok", "acc_ok"), ("mean_f1", "F1"),
              ("f1_lo", "F1 95% CI low"), ("f1_hi", "F1 95% CI high"),
              ("parsed_share", "parsed"), ("n_unparsed", "unparsed"), ("n", "rows")]
S1_COLUMNS = [("variant", "variant"), ("n", "N"), ("f1", "F1"), ("f1_lo", "95% CI low"),
              ("f1_hi", "95% CI high"), ("acc_err", "acc_err"), ("acc_ok", "acc_ok"),
              ("step_accuracy", "step accuracy"), ("tie_share", "ties"),
              ("n_solutions", "solutions"), ("n_unparsed", "unparsed")]


PAIRED_COLUMNS = [("a", "a"), ("b", "b"), ("subset", "subset"), ("n", "items"), ("f1_diff", "F1(a) - F1(b)"),
                  ("f1_diff_lo", "95% CI low"), ("f1_diff_hi", "95% CI high")]


def stage2_rows(evalp: list[dict], every_subset: bool = False) -> list[dict]:
    """eval-prm reports as table rows: each model's first subset (the demo has one), or a row per
    (model, subset) with `every_subset`."""
    rows = []
    for r in evalp:
        subsets = list(r["subsets"].items()) if every_subset else list(r["subsets"].items())[:1] or [("", {})]
        for name, scores in subsets:
            row = {"model": r["model"], "format": r.get("format"), "mean_f1": r["mean_f1"], **scores}
            if every_subset:
                row.update(mode=r.get("mode"), subset=name)
            rows.append(row)
    return rows


KIND_COLUMNS = [("model", "model"), ("kind", "kind of error"), ("n", "items"), ("right", "right"),
                ("all_correct", "called correct"), ("wrong_step", "another step flagged"), ("unparsed", "unparsed")]


def stage2_kind_rows(evalp: list[dict]) -> list[dict]:
    """Each model's predictions per kind of error (eval-prm's `error_kinds`: the synthetic set's
    injected kinds) as table rows: which errors a student finds, which it calls correct."""
    return [{"model": r["model"], "kind": kind, **counts}
            for r in evalp for kind, counts in r.get("error_kinds", {}).items()]


def kinds_html(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    return ["<p>By kind of error (the synthetic set injects each kind; <i>called correct</i>: the error missed, "
            "<i>another step flagged</i>: too early, too late, or a false alarm on a correct solution):</p>",
            html_table(rows, KIND_COLUMNS)]


def stage1_html(synth: dict) -> list[str]:
    return [f"<p>Curation: {html.escape(json.dumps(synth.get('curation', {})))}</p>",
            "<p>F1 with its bootstrap 95% interval (solutions resampled). Ties: share of solutions with a tied "
            "vote, broken as 'incorrect'; at odd N the votes decide.</p>",
            html_table(synth.get("quality", []), S1_COLUMNS)]


def write_report(cfg, stages, timings: dict[str, dict], out: Path, total_s: float | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    demo = Path(cfg.output_dir)
    synth = _json(demo / "synthesize" / "report.json") or {}
    evalp = _json(demo / "eval_prm" / "report.json") or []
    paired = _json(demo / "eval_prm" / "paired.json") or []
    runs, meta = {}, {}
    for st in stages:
        if st.name.startswith("rl:"):
            name = st.name[3:]
            runs[name] = read_metrics(st.out)
            kv = dict(a.split("=", 1) for a in st.argv if "=" in a and a.startswith("reward."))
            meta[name] = {"reward": kv.get("reward.kind", "?"), "gate": kv.get("reward.use_gate", "?"),
                          "prm": Path(kv["reward.prm.model_path"]).parent.name
                          if kv.get("reward.kind", "rlvr") not in ("rlvr", "rule", "random")
                          and "reward.prm.model_path" in kv else "-"}
    plots = rl_plots(runs, out)
    for src in (demo / "synthesize" / "f1_vs_n.png", demo / "eval_prm" / "f1_by_model.png"):
        if src.exists():
            shutil.copy(src, out / src.name)
    s3 = stage3_rows(runs, meta)
    s2 = stage2_rows(evalp)
    s2_kinds = stage2_kind_rows(evalp)
    s1 = synth.get("quality", [])
    # started_s (from the demo's start) and cores show which stages ran side by side
    stage_times = [{"stage": k, "wall_s": v.get("wall_s"), "skipped": bool(v.get("skipped")),
                    "status": v.get("status"), "started_s": v.get("started_s"),
                    "cores": ",".join(map(str, v["cores"])) if v.get("cores") else "all"} for k, v in timings.items()]
    data = {"stage1": s1, "stage1_curation": synth.get("curation"), "stage2": s2, "stage2_paired": paired,
            "stage2_error_kinds": s2_kinds,
            "stage3": s3,
            "stages": stage_times, "total_s": total_s, "prm_student": cfg.prm_student}
    (out / "report.json").write_text(json.dumps(data, indent=1))
    parts = [f"<html><head><meta charset='utf-8'><title>spark-rl demo report</title><style>{STYLE}</style></head><body>",
             "<h1>spark-rl demo: SPARK on the embedded tiny models</h1>",
             "<p>Every accuracy here is graded with math-verify against the ground truth, whatever the training "
             "reward. Tiny (~1M-parameter) models on 2 CPU cores: the pipeline is real, the numbers are small-sample.</p>",
             "<h2>Stage 3: RL with the PRM as reward vs RLVR</h2>",
             f"<p>Reward model: the Stage 2 student named in the <i>PRM</i> column (default: trained on "
             f"<b>{html.escape(cfg.prm_student)}</b> labels), queried greedily. Indicators and PRM agreement: "
             "first step vs mean of the last 5 steps.</p>",
             html_table(s3, S3_COLUMNS)]
    parts += [f"<img src='{p.name}' alt='{p.stem}'>" for p in plots]
    parts += ["<h2>Stage 2: PRM students, ProcessBench-style (held-out synthetic set, exact labels)</h2>",
              html_table(s2, S2_COLUMNS)]
    if any(r["model"].startswith(START_PREFIX) for r in s2):
        parts.append("<p><i>start-...</i>: the model every student started from, evaluated the same way "
                     "(eval-prm <code>train_prm_start</code>): a student's difference to it is what its Stage 1 "
                     "labels taught.</p>")
    if paired:
        parts += ["<p>Differences of two students on the same items (F1(a) - F1(b)) with their paired bootstrap "
                  "95% intervals: an interval that holds 0 is no measurable difference.</p>",
                  html_table(paired, PAIRED_COLUMNS)]
    parts += kinds_html(s2_kinds)
    if (out / "f1_by_model.png").exists():
        parts.append("<img src='f1_by_model.png' alt='stage 2 F1'>")
    parts += ["<h2>Stage 1: synthetic step labels vs exact labels</h2>", *stage1_html(synth)]
    if (out / "f1_vs_n.png").exists():
        parts.append("<img src='f1_vs_n.png' alt='stage 1 F1 vs N'>")
    parts += ["<h2>Stages and wall time</h2>",
              html_table(stage_times, [("stage", "stage"), ("started_s", "started at (s)"), ("wall_s", "seconds"),
                                       ("cores", "cores"), ("skipped", "reused"), ("status", "status")]),
              f"<p>Total: {_fmt(total_s)} s</p>" if total_s is not None else "", "</body></html>"]
    path = out / "report.html"
    path.write_text("\n".join(parts))
    return path


# ---- one run folder (`spark-rl report RUN_DIR`) ----------------------------------------------
RUN_KINDS = ("train-rl", "synthesize", "train-prm", "eval-prm", "eval")


def run_kind(run_dir: Path) -> str:
    """Which command wrote `run_dir`, from the files it leaves."""
    if read_metrics(run_dir):
        return "train-rl"
    rep = _json(run_dir / "report.json")
    if isinstance(rep, dict) and "quality" in rep:
        return "synthesize"
    if isinstance(rep, list) and all(isinstance(r, dict) and "subsets" in r for r in rep):
        return "eval-prm"
    summary = _json(run_dir / "summary.json")
    if isinstance(summary, dict) and summary and all(isinstance(v, dict) and "variant" in v for v in summary.values()):
        return "train-prm"
    if (run_dir / "suite.json").exists():
        return "eval"
    raise FileNotFoundError(f"{run_dir}: not a folder of train-rl (metrics.jsonl), synthesize or eval-prm "
                            "(report.json), train-prm (summary.json) or eval (suite.json)")


def _rl_meta(run_dir: Path) -> dict:
    from omegaconf import OmegaConf

    try:
        reward = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml")).get("reward", {})
    except (OSError, ValueError):
        return {}
    kind = reward.get("kind", "?")
    prm = (reward.get("prm") or {}).get("model_path") or "-"
    return {"reward": kind, "gate": reward.get("use_gate", "?"),
            "prm": Path(prm).parent.name if kind not in ("rlvr", "rule", "random") and prm != "-" else "-"}


def write_run_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """`report.html` + PNG plots (+ `run_report.json`, the tables) of one run folder, in
    `out` (default RUN_DIR/report)."""
    run_dir = Path(run_dir)
    kind = run_kind(run_dir)
    out = Path(out) if out else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    name = run_dir.resolve().name
    parts = [f"<html><head><meta charset='utf-8'><title>spark-rl {kind} report: {html.escape(name)}</title>"
             f"<style>{STYLE}</style></head><body>", f"<h1>spark-rl {kind}: {html.escape(str(run_dir))}</h1>"]
    data: dict = {"kind": kind, "run_dir": str(run_dir)}
    plots: list[Path] = []
    if kind == "train-rl":
        rows = read_metrics(run_dir)
        table = stage3_rows({name: rows}, {name: _rl_meta(run_dir)})
        plots = rl_plots({name: rows}, out)
        events = [json.loads(ln) for ln in (run_dir / "events.jsonl").read_text().splitlines() if ln.strip()] \
            if (run_dir / "events.jsonl").exists() else []
        data.update(table=table, steps=len([r for r in rows if r.get("step", 0) > 0]), events=len(events))
        parts += ["<p>Accuracies are graded with math-verify against the ground truth, whatever the training "
                  "reward. Indicators and PRM agreement: first step vs mean of the last 5 steps.</p>",
                  html_table(table, S3_COLUMNS)]
        if events:
            parts += [f"<h2>Events ({len(events)})</h2>",
                      html_table([{"step": e.get("step"), "kind": e.get("kind"), "detail": json.dumps(
                          {k: v for k, v in e.items() if k not in ("time", "step", "kind")}, default=str)}
                          for e in events[-50:]], [("step", "step"), ("kind", "kind"), ("detail", "detail")])]
    elif kind == "synthesize":
        synth = _json(run_dir / "report.json")
        data.update(table=synth.get("quality", []), curation=synth.get("curation"))
        parts += ["<h2>Stage 1: synthetic step labels vs exact labels</h2>", *stage1_html(synth)]
    elif kind == "eval-prm":
        evalp = _json(run_dir / "report.json")
        table = stage2_rows(evalp, every_subset=True)
        data["table"] = table
        parts += ["<h2>ProcessBench-style scores per model and subset</h2>",
                  html_table(table, [("model", "model"), ("mode", "mode"), ("subset", "subset"), *S2_COLUMNS[2:4],
                                     ("f1", "F1"), *S2_COLUMNS[5:], ("mean_f1", "mean F1 (all subsets)")])]
        if kinds := stage2_kind_rows(evalp):
            data["error_kinds"] = kinds
            parts += kinds_html(kinds)
        paired = _json(run_dir / "paired.json") or []
        if paired:
            data["paired"] = paired
            parts += ["<h2>Two models on the same items: F1 difference, paired bootstrap 95% interval</h2>",
                      html_table(paired, PAIRED_COLUMNS)]
    elif kind == "train-prm":
        summary = _json(run_dir / "summary.json")
        table = [{"student": k, **v} for k, v in summary.items()]
        curves = {k: read_metrics(run_dir / k) for k in summary}
        data["table"] = table
        plots = [line_plot(curves, [("loss", "training loss (response tokens)"), ("heldout_nll", "held-out NLL")],
                           "Stage 2 students", out / "prm_training.png", xlabel="optimizer step")]
        parts += ["<h2>Stage 2 students</h2>",
                  html_table(table, [("student", "student"), ("format", "format"), ("train_rows", "train rows"),
                                     ("heldout_rows", "held-out rows"), ("steps", "steps"), ("first_loss", "first loss"),
                                     ("final_loss", "final loss"), ("heldout_nll", "held-out NLL"),
                                     ("train_s", "seconds")])]
    else:
        suite = _json(run_dir / "suite.json")
        from spark_rl.pipelines.suite import label

        data["table"] = suite["table"]
        parts += [f"<h2>{html.escape(Path(suite['model']).name)} on {html.escape(suite['suite'])}</h2>",
                  html_table(suite["table"], [("metric", "metric"), *[(b, label(b)) for b in suite["benchmarks"]],
                                              ("avg", "avg")])]
    for src in ("f1_vs_n.png", "f1_by_model.png", "suite.png"):
        if (run_dir / src).exists():
            shutil.copy(run_dir / src, out / src)
            plots.append(out / src)
    data["plots"] = [p.name for p in plots]
    parts += [f"<img src='{p.name}' alt='{p.stem}'>" for p in plots] + ["</body></html>"]
    (out / "run_report.json").write_text(json.dumps(data, indent=1))
    path = out / "report.html"
    path.write_text("\n".join(parts))
    return path
