"""ProcessBench metrics (arXiv 2412.06559): accuracy on erroneous samples (exact earliest-error
index), accuracy on correct samples (prediction -1), and their harmonic mean F1 per subset."""

from __future__ import annotations

from collections import defaultdict


def processbench_scores(preds: list[int | None], labels: list[int]) -> dict:
    """`None` predictions (unparsable outputs) count as wrong and are reported in `n_unparsed`.
    An empty side scores 0 accuracy (never NaN); F1 is 0 when both accuracies are 0."""
    if len(preds) != len(labels):
        raise ValueError(f"{len(preds)} predictions for {len(labels)} labels")
    err = [(p, lab) for p, lab in zip(preds, labels) if lab != -1]
    ok = [(p, lab) for p, lab in zip(preds, labels) if lab == -1]
    acc_err = sum(p == lab for p, lab in err) / len(err) if err else 0.0
    acc_ok = sum(p == -1 for p, _ in ok) / len(ok) if ok else 0.0
    f1 = 2 * acc_err * acc_ok / (acc_err + acc_ok) if acc_err + acc_ok > 0 else 0.0
    n_unparsed = sum(p is None for p in preds)
    return {"acc_err": acc_err, "acc_ok": acc_ok, "f1": f1, "n_err": len(err), "n_ok": len(ok),
            "n": len(labels), "n_unparsed": n_unparsed, "unparsed_share": n_unparsed / max(1, len(labels))}


def processbench_report(rows: list[dict]) -> dict:
    """`rows`: dicts with `subset`, `pred`, `label`. Per-subset scores and the mean F1 over subsets."""
    by_subset: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for r in rows:
        preds, labels = by_subset[r["subset"]]
        preds.append(r["pred"])
        labels.append(r["label"])
    subsets = {name: processbench_scores(p, lab) for name, (p, lab) in sorted(by_subset.items())}
    mean_f1 = sum(s["f1"] for s in subsets.values()) / len(subsets) if subsets else 0.0
    return {"subsets": subsets, "mean_f1": mean_f1}


def first_error_index(step_labels: list[bool | None]) -> int:
    """A generative PRM's prediction: the first step it does not mark correct, else -1."""
    for i, lab in enumerate(step_labels):
        if lab is not True:
            return i
    return -1


def _f1_of_rows(hit, err, rows):
    """ProcessBench F1 of the samples `rows` indexes (any leading shape: one row set or a batch of
    bootstrap draws); `hit`, `err`: per-sample arrays (prediction right, sample erroneous). A row set
    with no erroneous (or no correct) sample scores 0 on that side, the metric's convention, never NaN."""
    import numpy as np

    e, h = err[rows], hit[rows]
    n_err, n_ok = e.sum(-1), (~e).sum(-1)
    acc_err = np.where(n_err > 0, (h & e).sum(-1) / np.maximum(n_err, 1), 0.0)
    acc_ok = np.where(n_ok > 0, (h & ~e).sum(-1) / np.maximum(n_ok, 1), 0.0)
    s = acc_err + acc_ok
    return np.where(s > 0, 2 * acc_err * acc_ok / np.where(s > 0, s, 1), 0.0)


def _hits(preds: list[int | None], labels: list[int]):
    import numpy as np

    return np.array([p is not None and p == t for p, t in zip(preds, labels)])


def f1_interval(preds: list[int | None], labels: list[int], n_boot: int = 1000, seed: int = 0,
                level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the ProcessBench F1: the samples (solutions) are drawn with
    replacement `n_boot` times and the F1 recomputed on each draw. Seeded, so a report is stable."""
    import numpy as np

    if len(preds) != len(labels):
        raise ValueError(f"{len(preds)} predictions for {len(labels)} labels")
    if not labels:
        return 0.0, 0.0
    err = np.asarray(labels) != -1
    idx = np.random.default_rng(seed).integers(0, len(labels), size=(n_boot, len(labels)))
    f1 = _f1_of_rows(_hits(preds, labels), err, idx)
    lo, hi = np.quantile(f1, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def f1_diff_interval(preds_a: list[int | None], preds_b: list[int | None], labels: list[int], n_boot: int = 1000,
                     seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """F1(a) - F1(b) of two models judged on the same samples, with its paired bootstrap interval:
    each draw resamples the samples once and scores both models on it, so what the two share (the
    same hard items) cancels and the interval is that of the difference, far narrower than the gap
    two separate intervals leave. Returns (difference, low, high)."""
    import numpy as np

    if not (len(preds_a) == len(preds_b) == len(labels)):
        raise ValueError(f"{len(preds_a)} and {len(preds_b)} predictions for {len(labels)} labels")
    if not labels:
        return 0.0, 0.0, 0.0
    err = np.asarray(labels) != -1
    idx = np.random.default_rng(seed).integers(0, len(labels), size=(n_boot, len(labels)))
    hit_a, hit_b = _hits(preds_a, labels), _hits(preds_b, labels)
    everything = np.arange(len(labels))
    diff = float(_f1_of_rows(hit_a, err, everything) - _f1_of_rows(hit_b, err, everything))
    lo, hi = np.quantile(_f1_of_rows(hit_a, err, idx) - _f1_of_rows(hit_b, err, idx),
                         [(1 - level) / 2, 1 - (1 - level) / 2])
    return diff, float(lo), float(hi)


CORRECT_KIND = "correct"      # by_error_kind's name for the samples without an error


def by_error_kind(rows: list[dict]) -> dict[str, dict[str, int]]:
    """Where the predictions land, per kind of error, for rows that name theirs (`error_kind`: the
    synthetic set's injected kinds; None on a correct sample, counted under CORRECT_KIND; real
    ProcessBench rows name none and are left out). F1 says how often a PRM is right; this says which
    errors it never finds. Per kind: `n`, `right` (the exact earliest-error index, or -1 on a
    correct sample), `all_correct` (an erroneous sample called correct: the error missed),
    `wrong_step` (a step flagged that is not the earliest error: early, late, or a false alarm on a
    correct sample) and `unparsed`; the four counts add up to `n`. Correct samples first, then the
    kinds by name."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        if "error_kind" not in r:
            continue
        c = out.setdefault(r["error_kind"] or CORRECT_KIND,
                           {"n": 0, "right": 0, "all_correct": 0, "wrong_step": 0, "unparsed": 0})
        c["n"] += 1
        pred, label = r["pred"], r["label"]
        c["unparsed" if pred is None else "right" if pred == label else "all_correct" if pred == -1
          else "wrong_step"] += 1
    return dict(sorted(out.items(), key=lambda kv: (kv[0] != CORRECT_KIND, kv[0])))
