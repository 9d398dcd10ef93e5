"""Prompt data for RL: a seeded, resumable iterator over problems (epochs reshuffle)."""

from __future__ import annotations

import random
from dataclasses import dataclass


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
