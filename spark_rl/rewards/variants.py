"""The SPARK Stage 3 reward variants (SPARK_SPEC, Stage 3), as pure functions.

Every variant is multiplied by the format gate: a response that fails it gets 0 and never reaches
the PRM. What a variant needs from the PRM is a `Judgement` (the parsed PRM-CoT output); what it
returns is a `RewardOutput` whose `step_labels` are set only when the variant's *step part*
applies (the driver turns them into token-level advantages for `selective_advantage` and
`global_step`, see `spark_rl.rewards.shaping`).

    process_aware        r = 1 if the PRM's final verdict is Yes, else 0
    step_augmented       r = w * (fraction of policy steps judged correct) + (1 - w) * verdict
    selective_advantage  r = verdict (0 outside min..max policy steps); step part: token masks
    global_step          r = verdict; step part: +-1/n on each step's last token (min..max steps)
    rlvr                 r = math-verify(final answer, ground truth)
    random               r = a coin flip (a control: what does the gate alone teach?)

Step alignment: when the PRM judged fewer steps than the policy wrote, the missing ones count as
incorrect and extra ones are dropped (for the step fraction); for the token-level variants a count
mismatch switches the step part off instead (the verdicts cannot be placed on the right tokens).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from spark_rl.config.rewards import VariantConfig
from spark_rl.formats import extract_answer, format_gate, parse_verification, split_steps
from spark_rl.formats.gate import GateResult
from spark_rl.grading import grade
from spark_rl.rewards.base import RewardInput, RewardOutput

PRM_VARIANTS = ("process_aware", "step_augmented", "selective_advantage", "global_step")
TOKEN_LEVEL_VARIANTS = ("selective_advantage", "global_step")
VARIANTS = PRM_VARIANTS + ("rlvr", "random")


@dataclass(frozen=True)
class PRMRequest:
    """What goes to the PRM for one response (None prompt material when the gate failed)."""

    gate: GateResult
    steps: list[str]            # the policy's steps in the gate-truncated text
    answer: str | None = None   # its final answer, shown to the PRM with the last step


@dataclass(frozen=True)
class Judgement:
    """A parsed PRM-CoT output."""

    verdict: bool | None                  # the final Yes/No; None: unparsable
    step_labels: list[bool | None]        # in PRM order, as written
    flags: tuple[str, ...] = ()


def prepare(inp: RewardInput, use_gate: bool) -> PRMRequest:
    """The gate, then the policy's steps of the text the PRM may see (the truncated one)."""
    gate = format_gate(inp.response)
    text = gate.text if use_gate else (inp.response if isinstance(inp.response, str) else "")
    return PRMRequest(gate, split_steps(text).steps, extract_answer(text))


def judge(text: str) -> Judgement:
    parsed = parse_verification(text)
    return Judgement(parsed.final, list(parsed.step_labels), parsed.flags)


def align_steps(labels: list[bool | None], n_steps: int) -> list[bool]:
    """PRM step verdicts aligned to the policy's n steps: missing or verdict-less ones count as
    incorrect, extra ones are dropped."""
    out = [lab is True for lab in labels[:n_steps]]
    return out + [False] * (n_steps - len(out))


def _gate_failure(req: PRMRequest, use_gate: bool) -> RewardOutput | None:
    if use_gate and not req.gate.passed:
        return RewardOutput(0.0, reason=f"gate:{req.gate.reason}", num_policy_steps=len(req.steps))
    return None


def needs_prm(variant: str, req: PRMRequest, use_gate: bool, cfg: VariantConfig) -> bool:
    """Whether this response goes to the PRM at all (only gate-passing, in-bounds, non-empty text)."""
    if variant not in PRM_VARIANTS or _gate_failure(req, use_gate) is not None or not req.steps:
        return False
    if variant == "selective_advantage":
        return cfg.selective_min_steps <= len(req.steps) <= cfg.selective_max_steps
    return True


def prm_reward(variant: str, req: PRMRequest, judgement: Judgement | None, use_gate: bool,
               cfg: VariantConfig) -> RewardOutput:
    """Reward of one response under a PRM variant. `judgement` is None when the response was not
    sent to the PRM (then `needs_prm` said why) or the PRM gave nothing usable."""
    if variant not in PRM_VARIANTS:
        raise ValueError(f"{variant!r} is not a PRM reward variant; PRM variants: {', '.join(PRM_VARIANTS)}")
    failed = _gate_failure(req, use_gate)
    if failed is not None:
        return failed
    n = len(req.steps)
    if n == 0:
        return RewardOutput(0.0, reason="no_steps", num_policy_steps=0)
    if variant == "selective_advantage" and not cfg.selective_min_steps <= n <= cfg.selective_max_steps:
        return RewardOutput(0.0, reason="step_bounds", num_policy_steps=n)
    if judgement is None:
        return RewardOutput(0.0, reason="prm_no_output", num_policy_steps=n)
    if judgement.verdict is None:
        flag = next((f for f in judgement.flags if f == "missing_final"), "missing_final")
        return RewardOutput(0.0, reason=f"unparsable:{flag}", num_policy_steps=n,
                            info={"prm_flags": list(judgement.flags)})
    verdict = 1.0 if judgement.verdict else 0.0
    info = {"verdict": judgement.verdict, "prm_steps": len(judgement.step_labels)}
    if variant == "process_aware":
        return RewardOutput(verdict, num_policy_steps=n, step_labels=align_steps(judgement.step_labels, n), info=info)
    if variant == "step_augmented":
        aligned = align_steps(judgement.step_labels, n)
        frac = sum(aligned) / n
        info["correct_step_fraction"] = frac
        return RewardOutput(cfg.step_weight * frac + (1 - cfg.step_weight) * verdict, num_policy_steps=n,
                            step_labels=aligned, info=info)
    # token-level variants: the step part needs a verdict on every policy step
    in_bounds = (variant == "selective_advantage"
                 or cfg.global_min_steps <= n <= cfg.global_max_steps)
    matched = len(judgement.step_labels) == n and all(lab is not None for lab in judgement.step_labels)
    labels = [bool(x) for x in judgement.step_labels] if in_bounds and matched else None
    info["step_part"] = "on" if labels is not None else ("step_bounds" if not in_bounds else "step_mismatch")
    return RewardOutput(verdict, num_policy_steps=n, step_labels=labels, info=info)


def rlvr_reward(inp: RewardInput, use_gate: bool) -> RewardOutput:
    """Ground truth: 1 if the final answer grades equal to the gold answer (math-verify)."""
    if inp.answer is None or str(inp.answer).strip() == "":
        return RewardOutput(0.0, reason="no_gold_answer")
    req = prepare(inp, use_gate)
    failed = _gate_failure(req, use_gate)
    if failed is not None:
        return failed
    text = req.gate.text if use_gate else inp.response
    pred = extract_answer(text) if isinstance(text, str) else None
    if pred is None:
        return RewardOutput(0.0, reason="no_answer", num_policy_steps=len(req.steps))
    ok = grade(pred, str(inp.answer))
    return RewardOutput(1.0 if ok else 0.0, num_policy_steps=len(req.steps), info={"pred": pred})


def random_reward(inp: RewardInput, use_gate: bool, seed: int = 0) -> RewardOutput:
    """Gate x a coin flip; the flip is a pure function of (seed, sample id) so reruns agree."""
    req = prepare(inp, use_gate)
    failed = _gate_failure(req, use_gate)
    if failed is not None:
        return failed
    digest = hashlib.sha256(f"{seed}:{inp.sample_id}".encode()).digest()
    return RewardOutput(float(digest[0] & 1), num_policy_steps=len(req.steps))


def model_free_reward(variant: str, inp: RewardInput, use_gate: bool, seed: int = 0) -> RewardOutput:
    if variant == "rlvr":
        return rlvr_reward(inp, use_gate)
    if variant == "random":
        return random_reward(inp, use_gate, seed)
    raise ValueError(f"{variant!r} needs a PRM; model-free variants: rlvr, random")
