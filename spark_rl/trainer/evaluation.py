"""`spark-rl eval`: greedy pass@1, and pass@k / maj@k with sampling, of a checkpoint on a dataset.

Generation runs on a rollout group (any size), grading with `grade` (math-verify). Writes one
JSONL row per problem and a summary JSON; a progress bar counts problems.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from spark_rl.trainer.data import Problem


@dataclass
class EvalSettings:
    k: int = 1                   # samples per problem for pass@k / maj@k (1: greedy only)
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 160
    seed: int = 0
    chunk: int = 64              # problems per dispatch (progress granularity)


def grade_samples(problem: Problem, texts: list[str]) -> tuple[list[str | None], list[bool]]:
    from spark_rl.formats import extract_answer
    from spark_rl.grading import grade

    preds = [extract_answer(t) for t in texts]
    return preds, [p is not None and grade(p, problem.answer) for p in preds]


def evaluate(rollout, problems: list[Problem], settings: EvalSettings, out_dir: str | Path | None = None,
             progress: bool = True, name: str = "eval", too_long: set[str] | None = None) -> dict:
    """`rollout`: an `ActorGroup` of rollout workers holding the model to evaluate. `too_long`: ids
    of problems whose prompt does not fit the engine's context: not generated, scored wrong and
    counted (`n_too_long` in the summary, `prompt_too_long` on their rows)."""
    from tqdm import tqdm

    from spark_rl.grading import grade
    from spark_rl.metrics import maj_at_k, mean_pass_at_k

    rows, greedy_ok, sampled_ok, maj_ok = [], [], [], []
    skipped = [p for p in problems if too_long and p.id in too_long]
    for p in skipped:
        rows.append({"id": p.id, "question": p.question, "answer": p.answer, "greedy": None, "greedy_pred": None,
                     "greedy_correct": False, "prompt_too_long": True})
        greedy_ok.append(False)
        if settings.k > 1:
            sampled_ok.append([False] * settings.k)
            maj_ok.append(False)
    todo = [p for p in problems if not (too_long and p.id in too_long)]
    bar = tqdm(total=len(problems), initial=len(skipped), desc=name, disable=not progress, dynamic_ncols=True)
    for start in range(0, len(todo), settings.chunk):
        chunk = todo[start:start + settings.chunk]
        prompts = [p.prompt for p in chunk]
        greedy = rollout.map_shards("generate", prompts, n=1, temperature=0.0,
                                    max_new_tokens=settings.max_new_tokens, logprobs=False)
        sampled = [[] for _ in chunk]
        if settings.k > 1:
            sampled = rollout.map_shards("generate", prompts, n=settings.k, temperature=settings.temperature,
                                         top_p=settings.top_p, max_new_tokens=settings.max_new_tokens,
                                         seed=settings.seed + start, logprobs=False)
        for p, g, s in zip(chunk, greedy, sampled):
            (gp,), (gok,) = grade_samples(p, [g[0].text])
            row = {"id": p.id, "question": p.question, "answer": p.answer, "greedy": g[0].text,
                   "greedy_pred": gp, "greedy_correct": gok}
            greedy_ok.append(gok)
            if s:
                preds, oks = grade_samples(p, [c.text for c in s])
                sampled_ok.append(oks)
                maj = maj_at_k(preds, settings.k, lambda a, p=p: grade(a, p.answer))
                maj_ok.append(maj)
                row.update(samples=[c.text for c in s], sample_preds=preds, sample_correct=oks, maj_correct=maj)
            rows.append(row)
        bar.update(len(chunk))
    bar.close()
    if skipped:                          # rows in the problems' order
        order = {p.id: i for i, p in enumerate(problems)}
        rows.sort(key=lambda r: order[r["id"]])
    n = len(problems)
    summary = {"n": n, "pass@1_greedy": sum(greedy_ok) / n if n else 0.0}
    if too_long is not None:
        summary["n_too_long"] = len(skipped)
    if settings.k > 1 and n:
        summary[f"pass@{settings.k}"] = mean_pass_at_k(sampled_ok, settings.k)
        summary["pass@1_sampled"] = mean_pass_at_k(sampled_ok, 1)
        summary[f"maj@{settings.k}"] = sum(maj_ok) / n
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with (out / f"{name}_samples.jsonl").open("w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        (out / f"{name}_summary.json").write_text(json.dumps(summary, indent=1))
    return summary
