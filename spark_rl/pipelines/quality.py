"""Quality of synthetic step labels against exact ones (the embedded domain has them).

ProcessBench-style: a solution's prediction is the first step not labelled correct (-1: none),
scored against the true earliest error; plus per-step label accuracy. N-scaling uses the first n
of the N verifications (a deterministic prefix), so the numbers for n <= N are nested.
"""

from __future__ import annotations

from pathlib import Path

from spark_rl.metrics import first_error_index, processbench_scores


def label_quality(pred: list[list[bool] | None], truth: list[list[bool]]) -> dict:
    if len(pred) != len(truth):
        raise ValueError(f"{len(pred)} predictions for {len(truth)} solutions")
    preds = [None if p is None else first_error_index(p) for p in pred]
    scores = processbench_scores(preds, [first_error_index(t) for t in truth])
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


def majority_labels(texts: list[str], steps: list[str], level: str, cfg) -> list[bool] | None:
    """Aggregated labels of one solution's verifications; None when none of them could vote."""
    from spark_rl.verification.aggregate import aggregate

    a = aggregate(texts, len(steps), level, cfg, steps=steps)
    return None if a.reason == "no_voters" else a.labels


def scaling_rows(per_solution_texts: list[list[str]], steps: list[list[str]], truth: list[list[bool]],
                 ns: list[int], cfg) -> list[dict]:
    """F1 of step- and outcome-level majority labels for each n (first n verifications)."""
    rows = []
    for level in ("step", "outcome"):
        for n in ns:
            preds = [majority_labels(votes_prefix(texts, n), st, level, cfg) for texts, st in zip(per_solution_texts, steps)]
            rows.append({**label_quality(preds, truth), "variant": f"{level}-majority", "n": n})
    return rows


def plot_f1_vs_n(rows: list[dict], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for variant in sorted({r["variant"] for r in rows}):
        pts = sorted((r["n"], r["f1"]) for r in rows if r["variant"] == variant)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=variant)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("verifications per solution (N)")
    ax.set_ylabel("ProcessBench F1 vs exact labels")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def format_table(rows: list[dict]) -> str:
    head = f"{'variant':<20} {'N':>3} {'F1':>6} {'acc_err':>8} {'acc_ok':>7} {'step_acc':>9} {'unparsed':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['variant']:<20} {r['n']:>3} {r['f1']:>6.3f} {r['acc_err']:>8.3f} {r['acc_ok']:>7.3f} "
                     f"{r['step_accuracy']:>9.3f} {r['n_unparsed']:>9}")
    return "\n".join(lines)
