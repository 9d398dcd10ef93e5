"""The arithmetic domain of the embedded default, as a config section (bootstrap and RL share it)."""

from __future__ import annotations

from dataclasses import dataclass

from spark_rl.config import require
from spark_rl.config.checks import Schema
from spark_rl.tasks.arith import ArithProblem, generate_problems


@dataclass
class DomainConfig(Schema):
    """The arithmetic problems of the embedded default."""

    min_ops: int = 3
    max_ops: int = 4
    max_operand: int = 9
    max_value: int = 30
    max_multiplier: int = 3
    word_share: float = 0.0

    def validate(self) -> None:
        require(1 <= self.min_ops <= self.max_ops, "min_ops", "need 1 <= min_ops <= max_ops")
        require(self.max_value >= self.max_operand >= 1, "max_value", "need max_value >= max_operand >= 1")
        require(0.0 <= self.word_share <= 1.0, "word_share", "must be in [0, 1]")

    def problems(self, n: int, seed: int) -> list[ArithProblem]:
        return generate_problems(n, seed, min_ops=self.min_ops, max_ops=self.max_ops, word_share=self.word_share,
                                 max_operand=self.max_operand, max_value=self.max_value,
                                 max_multiplier=self.max_multiplier)
