"""Parameters of the Stage 3 reward variants (`spark_rl.rewards.variants`)."""

from __future__ import annotations

from dataclasses import dataclass

from spark_rl.config.checks import Schema, require


@dataclass
class VariantConfig(Schema):
    step_weight: float = 0.4              # step_augmented: weight of the correct-step fraction
    selective_min_steps: int = 4          # selective_advantage: outside these bounds the reward is 0
    selective_max_steps: int = 20
    global_min_steps: int = 3             # global_step: outside these bounds the step part is 0
    global_max_steps: int = 20
    global_step_mix: float = 0.2          # global_step: advantage = (1 - mix) * process + mix * step

    def validate(self) -> None:
        require(0 <= self.step_weight <= 1, "step_weight", "must be in [0, 1]")
        require(0 <= self.global_step_mix <= 1, "global_step_mix", "must be in [0, 1]")
        require(1 <= self.selective_min_steps <= self.selective_max_steps, "selective_min_steps",
                "need 1 <= selective_min_steps <= selective_max_steps")
        require(1 <= self.global_min_steps <= self.global_max_steps, "global_min_steps",
                "need 1 <= global_min_steps <= global_max_steps")
