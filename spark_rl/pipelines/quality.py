"""Quality of synthetic step labels against exact ones (the embedded domain has them).

ProcessBench-style: a solution's prediction is the first step not labelled correct (-1: none),
scored against the true earliest error; plus per-step label accuracy. N-scaling uses the first n
of the N verifications (a deterministic prefix), so the numbers for n <= N are nested.
"""

from __future__ import annotations

from pathlib import Path

from spark_rl.metrics import f1_interval, first_error_index, processbench_scores


def label_quality(pred: list[list[bool] | None], truth: list[list[bool]]) -> dict:
    """ProcessBench scores of labels against exact ones, with a bootstrap 95% interval of the F1
    (`f1_lo`, `f1_hi`: solutions resampled with replacement, 1000 draws, seeded)."""
    if len(pred) != len(truth):
        raise ValueError(f"{len(pred)} predictions for {len(truth)} solutions")
    preds = [None if p is None else first_error_index(p) for p in pred]
    labels = [first_error_index(t) for t in truth]
    scores = processbench_scores(preds, labels)
    scores["f1_lo"], scores["f1_hi"] = f1_interval(preds, labels)
    same = total = 0
    for p, t in zip(pred, truth):
        if p is not None and len(p) == len(t):
            same += sum(a == b for a, b in zip(p, t))
            total += len(t)
    return {**scores, "step_accuracy": same / total if total else 0.0, "n_solutions": len(truth)}


def votes_prefix(texts: list[str], n: int) -> list[str]:
    if not 1 <= n <= len(texts):
        raise ValueError(f"need 1 <= n <= {len(texts)} verifications, got n={n}")
    return texts[:n]


def _aggregate(texts: list[str], steps: list[str], level: str, cfg):
    from spark_rl.verification.aggregate import aggregate

    return aggregate(texts, len(steps), level, cfg, steps=steps)


def majority_labels(texts: list[str], steps: list[str], level: str, cfg) -> list[bool] | None:
    """Aggregated labels of one solution's verifications; None when none of them could vote."""
    a = _aggregate(texts, steps, level, cfg)
    return None if a.reason == "no_voters" else a.labels


def scaling_rows(per_solution_texts: list[list[str]], steps: list[list[str]], truth: list[list[bool]],
                 ns: list[int], cfg) -> list[dict]:
    """F1 of step- and outcome-level majority labels for each n (first n verifications), with the
    share of solutions where at least one decision was a tie broken by `cfg.tie_break`
    (`tie_share`): at even n the tie rule, not the votes, decides those."""
    rows = []
    for level in ("step", "outcome"):
        for n in ns:
            aggs = [_aggregate(votes_prefix(texts, n), st, level, cfg) for texts, st in zip(per_solution_texts, steps)]
            preds = [None if a.reason == "no_voters" else a.labels for a in aggs]
            rows.append({**label_quality(preds, truth), "variant": f"{level}-majority", "n": n,
                         "tie_share": sum(a.ties > 0 for a in aggs) / max(1, len(aggs)),
                         "tie_break": cfg.tie_break})
    return rows


def plot_f1_vs_n(rows: list[dict], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for variant in sorted({r["variant"] for r in rows}):
        pts = sorted((r["n"], r["f1"], r.get("f1_lo", r["f1"]), r.get("f1_hi", r["f1"]))
                     for r in rows if r["variant"] == variant)
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts],
                    yerr=[[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]],
                    marker="o", capsize=3, label=variant)
    ns = sorted({r["n"] for r in rows})
    ax.set_xticks(ns)
    ax.set_xlabel("verifications per solution (N)")
    ax.set_ylabel("F1 vs exact labels (95% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def format_table(rows: list[dict]) -> str:
    head = (f"{'variant':<22} {'N':>3} {'F1':>6} {'95% CI':>13} {'acc_err':>8} {'acc_ok':>7} {'step_acc':>9} "
            f"{'ties':>5} {'unparsed':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ci = f"[{r['f1_lo']:.2f}, {r['f1_hi']:.2f}]" if "f1_lo" in r else ""
        ties = f"{r['tie_share']:.2f}" if "tie_share" in r else ""
        lines.append(f"{r['variant']:<22} {r['n']:>3} {r['f1']:>6.3f} {ci:>13} {r['acc_err']:>8.3f} "
                     f"{r['acc_ok']:>7.3f} {r['step_accuracy']:>9.3f} {ties:>5} {r['n_unparsed']:>9}")
    if any("tie_share" in r for r in rows):
        lines.append(f"ties: share of solutions with a tied vote, broken as '{rows[0].get('tie_break', '')}' "
                     "(at odd N the votes decide)")
    return "\n".join(lines)
