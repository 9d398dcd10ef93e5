"""Synthetic ProcessBench from the arithmetic domain (exact labels), and an independent re-check."""

from __future__ import annotations

import random
import re
from collections import Counter

from spark_rl.tasks.arith import ERROR_KINDS, generate_problems, inject_error, reference_solution

_ANS = re.compile(r"\\boxed\{(-?\d+)\}")


def make_arith_processbench(n: int, seed: int, share_correct: float = 0.4, **problem_kwargs) -> list[dict]:
    """Rows in ProcessBench's schema. Steps read `Step k: a op b = c`; the last step also carries the
    final answer, so a wrong final answer is an error of the last step."""
    from spark_rl.formats.answers import extract_boxed
    from spark_rl.formats.steps import split_steps

    rng = random.Random(seed + 7)
    rows = []
    for p in generate_problems(n, seed=seed, **problem_kwargs):
        if rng.random() < share_correct:
            text, label, kind = reference_solution(p), -1, None
        else:
            kind = rng.choice(ERROR_KINDS)
            text, label = inject_error(p, kind, rng)
        steps = split_steps(text).steps
        answer = extract_boxed(text)
        steps[-1] = f"{steps[-1]}. The answer is \\boxed{{{answer}}}."
        rows.append({"id": p.id, "problem": p.question, "steps": steps, "label": label,
                     "final_answer_correct": answer == str(p.answer), "generator": "arith-injector",
                     "error_kind": kind})
    return rows


def label_distribution(rows: list[dict]) -> dict:
    counts = Counter(str(r["label"]) for r in rows)
    return {"counts": dict(counts), "share_correct": counts.get("-1", 0) / max(1, len(rows)), "n": len(rows)}


# ---- independent re-check (shares no code with tasks.arith.check_solution) -------------------
_START = re.compile(r"^(?:Start with|\w+ has) (\d+)\b")
_OP_PATTERNS = [
    (re.compile(r"^Add (\d+)\.$"), "+"), (re.compile(r"^Subtract (\d+)\.$"), "-"),
    (re.compile(r"^Multiply by (\d+)\.$"), "*"), (re.compile(r"^\w+ gets (\d+) more\.$"), "+"),
    (re.compile(r"^\w+ gives away (\d+)\.$"), "-"), (re.compile(r"^\w+ makes it (\d+) times as many\.$"), "*"),
]


def parse_ops(problem: str) -> tuple[int, list[tuple[str, int]]]:
    """Start value and operations, read back from the problem's wording."""
    m = _START.match(problem)
    if not m:
        raise ValueError(f"cannot read a start value from {problem!r}")
    sentences = re.findall(r"[^.?]+[.?]", problem)
    ops = []
    for s in sentences[1:]:
        s = s.strip()
        for pat, op in _OP_PATTERNS:
            mm = pat.match(s)
            if mm:
                ops.append((op, int(mm.group(1))))
                break
    return int(m.group(1)), ops


def recheck_label(row: dict) -> int:
    """Earliest wrong step of a row, recomputed from its problem text and step equations alone."""
    value, ops = parse_ops(row["problem"])
    truth = value
    for op, b in ops:
        truth = truth + b if op == "+" else truth - b if op == "-" else truth * b
    for i, step in enumerate(row["steps"]):
        m = re.search(r"(-?\d+) ([+\-*]) (-?\d+) = (-?\d+)", step)
        if i >= len(ops) or not m:
            return i
        a, op, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
        want = a + b if op == "+" else a - b if op == "-" else a * b
        if a != value or (op, b) != ops[i] or c != want:
            return i
        value = c
        if i == len(row["steps"]) - 1:
            ans = _ANS.search(step)
            if len(row["steps"]) < len(ops) or ans is None or int(ans.group(1)) != truth:
                return i
    return -1
