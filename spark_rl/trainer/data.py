"""Prompt data for RL: a seeded, resumable iterator over problems (epochs reshuffle)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from spark_rl.tasks.loaders import POLICY_PROMPT  # noqa: F401  (re-exported: train-rl's prompt)


@dataclass
class Problem:
    id: str
    prompt: str          # what the policy sees
    question: str        # the bare question (what a PRM or verifier sees)
    answer: str          # ground truth, for RLVR and validation grading


class PromptStream:
    """Yields batches of problems in a seeded order; `state()`/`restore()` make it resumable
    exactly (the checkpoint stores the epoch and position, not the data)."""

    def __init__(self, problems: list[Problem], seed: int = 0):
        if not problems:
            raise ValueError("PromptStream: no problems")
        self.problems = problems
        self.seed = seed
        self.epoch = 0
        self.pos = 0
        self._order = self._shuffled(0)

    def _shuffled(self, epoch: int) -> list[int]:
        order = list(range(len(self.problems)))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def next_batch(self, n: int) -> list[Problem]:
        out = []
        while len(out) < n:
            if self.pos >= len(self._order):
                self.epoch += 1
                self.pos = 0
                self._order = self._shuffled(self.epoch)
            out.append(self.problems[self._order[self.pos]])
            self.pos += 1
        return out

    def state(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos, "seed": self.seed, "size": len(self.problems)}

    def restore(self, state: dict) -> None:
        if state.get("size") != len(self.problems) or state.get("seed") != self.seed:
            raise ValueError(f"PromptStream.restore: checkpoint was taken on {state.get('size')} problems "
                             f"with seed {state.get('seed')}, this run has {len(self.problems)} with seed {self.seed}")
        self.epoch, self.pos = state["epoch"], state["pos"]
        self._order = self._shuffled(self.epoch)


def arith_problem(p) -> Problem:
    from spark_rl.tasks.arith import policy_prompt

    return Problem(id=p.id, prompt=policy_prompt(p), question=p.question, answer=str(p.answer))




def render_prompt(template: str, problem: str) -> str:
    """`template` with `{problem}` replaced (no str.format: templates may hold LaTeX braces)."""
    if "{problem}" not in template:
        raise ValueError(f"prompt template {template!r} has no {{problem}} placeholder")
    return template.replace("{problem}", problem.strip())


def benchmark_problems(name_or_path: str, limit: int | None = None, template: str = POLICY_PROMPT) -> list[Problem]:
    """Rows of a benchmark file as RL problems. A row without a problem or answer is an error
    naming the file and row (`DataFormatError`): RL on an ungradable row would train on noise."""

    from spark_rl.tasks.loaders import BENCHMARK_FILES, file_stem, load_benchmark

    ds = load_benchmark(name_or_path) if name_or_path in BENCHMARK_FILES else \
        load_benchmark(file_stem(name_or_path), path=name_or_path)
    rows = ds.select(range(min(limit, len(ds)))) if limit else ds
    return [Problem(id=r["id"], prompt=render_prompt(template, r["problem"]), question=r["problem"], answer=r["answer"])
            for r in rows]


def build_problems(cfg) -> tuple[list[Problem], list[Problem]]:
    """(train, eval) problems of a `DataConfig`. Arithmetic eval problems never appear in training."""
    if cfg.kind == "arith":
        evalset = [arith_problem(p) for p in cfg.domain.problems(cfg.eval_size, cfg.eval_seed)] if cfg.eval_size else []
        held_out = {p.question for p in evalset}
        train = [arith_problem(p) for p in cfg.domain.problems(cfg.train_size + len(held_out), cfg.seed)
                 if p.question not in held_out][:cfg.train_size]
        return train, evalset
    # benchmark files are used whole unless a limit is asked for: train_size / eval_size size the
    # generated arithmetic sets, they must not silently cut MATH500 to its first 200 problems
    train = benchmark_problems(cfg.benchmark, cfg.train_limit or None)
    evalset = benchmark_problems(cfg.eval_benchmark, cfg.eval_limit or None) if cfg.eval_size else []
    return train, evalset
