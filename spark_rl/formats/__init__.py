"""Pure text formats: step splitting, answers, the SPARK format gate, verifications, critic answers.
Every function returns a structured result and never raises on odd text."""

from spark_rl.formats.answers import count_boxed, extract_answer, extract_answer_line, extract_boxed
from spark_rl.formats.critic import critic_prompt, parse_critic_answer
from spark_rl.formats.gate import GateResult, format_gate
from spark_rl.formats.steps import StepSplit, split_steps
from spark_rl.formats.verification import (
    ParsedVerification,
    parse_step_labels,
    parse_verification,
    render_step_labels,
    render_verification,
    strip_think,
)

__all__ = [
    "GateResult", "ParsedVerification", "StepSplit", "count_boxed", "critic_prompt", "extract_answer",
    "extract_answer_line", "extract_boxed", "format_gate", "parse_critic_answer", "parse_step_labels",
    "parse_verification", "render_step_labels", "render_verification", "split_steps", "strip_think",
]
