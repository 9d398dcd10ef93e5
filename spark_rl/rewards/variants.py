"""The SPARK Stage 3 reward variants (SPARK_SPEC, Stage 3): a registry of pure classes, one a variant.

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

Adding a variant: a `RewardVariant` subclass here with `@register` (its name is then a valid
`reward.kind`, the reward workers and the driver find it by name) and a test of its reward.
"""


from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

from spark_rl.config.rewards import VariantConfig
from spark_rl.formats import extract_answer, format_gate, split_steps
from spark_rl.formats.gate import GateResult
from spark_rl.grading import grade
from spark_rl.rewards.base import RewardInput, RewardOutput
from spark_rl.rewards.shaping import (
    StepTokens,
    global_step_advantages,
    normalize_in_groups,
    selective_advantages,
    step_rewards,
)

ALIASES = {"rule": "rlvr"}      # old names `reward.kind` still accepts (configs/demo/rlvr.yaml)


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


class RewardVariant:
    """One reward variant. Model-free variants implement `reward`; PRM variants (`needs_prm`)
    implement `judged` (and `in_bounds` when they pay nothing outside some step counts); token-level
    variants (`token_level`) also implement `token_advantages`."""

    name: ClassVar[str]
    needs_prm: ClassVar[bool] = False       # scored by a PRM (PRM reward workers), else model-free
    token_level: ClassVar[bool] = False     # spreads the sequence advantage over tokens by step verdicts

    def reward(self, inp: RewardInput, use_gate: bool, seed: int = 0) -> RewardOutput:
        """Model-free variants: the reward of one response."""
        raise NotImplementedError

    def in_bounds(self, n_steps: int, cfg: VariantConfig) -> bool:
        """PRM variants: whether a response of `n_steps` policy steps can earn anything (else
        reward 0, reason step_bounds, and it is not sent to the PRM)."""
        return True

    def judged(self, n: int, judgement: Judgement, verdict: float, info: dict, cfg: VariantConfig) -> RewardOutput:
        """PRM variants: the reward of a gate-passing response of n >= 1 steps with a final verdict."""
        raise NotImplementedError

    def token_advantages(self, seq_adv: list[float], located: dict[int, StepTokens], labels: dict[int, list[bool]],
                         groups: list[int], n_tokens: list[int], global_step_mix: float) -> dict[int, list[float]]:
        """Token-level variants: per sample index the token advantages (samples left out keep the
        sequence advantage). `located`/`labels`: the samples whose steps were found in the tokens."""
        raise NotImplementedError


_REGISTRY: dict[str, RewardVariant] = {}


def register(cls: type[RewardVariant]) -> type[RewardVariant]:
    if cls.name in _REGISTRY or cls.name in ALIASES:
        raise ValueError(f"reward variant {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)


def reward_variant(name: str) -> RewardVariant:
    """The registered variant called `name` (or an alias of it)."""
    try:
        return _REGISTRY[canonical_name(name)]
    except KeyError:
        raise ValueError(f"unknown reward variant {name!r}; variants: {', '.join(_REGISTRY)}") from None


def __getattr__(name: str) -> tuple[str, ...]:
    # the registered names, always current: REWARD_VARIANTS, PRM_VARIANTS, TOKEN_LEVEL_VARIANTS
    if name == "REWARD_VARIANTS":
        return tuple(_REGISTRY)
    if name == "PRM_VARIANTS":
        return tuple(n for n, v in _REGISTRY.items() if v.needs_prm)
    if name == "TOKEN_LEVEL_VARIANTS":
        return tuple(n for n, v in _REGISTRY.items() if v.token_level)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- the shared steps --------------------------------------------------------------------------
def prepare(inp: RewardInput, use_gate: bool) -> PRMRequest:
    """The gate, then the policy's steps of the text the PRM may see (the truncated one)."""
    gate = format_gate(inp.response)
    text = gate.text if use_gate else (inp.response if isinstance(inp.response, str) else "")
    return PRMRequest(gate, split_steps(text).steps, extract_answer(text))


def align_steps(labels: list[bool | None], n_steps: int) -> list[bool]:
    """PRM step verdicts aligned to the policy's n steps: missing or verdict-less ones count as
    incorrect, extra ones are dropped."""
    out = [lab is True for lab in labels[:n_steps]]
    return out + [False] * (n_steps - len(out))


def _gate_failure(req: PRMRequest, use_gate: bool) -> RewardOutput | None:
    if use_gate and not req.gate.passed:
        return RewardOutput(0.0, reason=f"gate:{req.gate.reason}", num_policy_steps=len(req.steps))
    return None


def sends_to_prm(variant: str, req: PRMRequest, use_gate: bool, cfg: VariantConfig) -> bool:
    """Whether this response goes to the PRM at all (only gate-passing, in-bounds, non-empty text)."""
    v = reward_variant(variant)
    if not v.needs_prm or _gate_failure(req, use_gate) is not None or not req.steps:
        return False
    return v.in_bounds(len(req.steps), cfg)


def prm_reward(variant: str, req: PRMRequest, judgement: Judgement | None, use_gate: bool,
               cfg: VariantConfig) -> RewardOutput:
    """Reward of one response under a PRM variant. `judgement` is None when the response was not
    sent to the PRM (then `sends_to_prm` said why) or the PRM gave nothing usable."""
    v = reward_variant(variant)
    if not v.needs_prm:
        raise ValueError(f"{variant!r} is not a PRM reward variant; PRM variants: "
                         f"{', '.join(n for n, x in _REGISTRY.items() if x.needs_prm)}")
    failed = _gate_failure(req, use_gate)
    if failed is not None:
        return failed
    n = len(req.steps)
    if n == 0:
        return RewardOutput(0.0, reason="no_steps", num_policy_steps=0)
    if not v.in_bounds(n, cfg):
        return RewardOutput(0.0, reason="step_bounds", num_policy_steps=n)
    if judgement is None:
        return RewardOutput(0.0, reason="prm_no_output", num_policy_steps=n)
    if judgement.verdict is None:
        flag = next((f for f in judgement.flags if f == "missing_final"), "missing_final")
        return RewardOutput(0.0, reason=f"unparsable:{flag}", num_policy_steps=n,
                            info={"prm_flags": list(judgement.flags)})
    verdict = 1.0 if judgement.verdict else 0.0
    info = {"verdict": judgement.verdict, "prm_steps": len(judgement.step_labels)}
    return v.judged(n, judgement, verdict, info, cfg)


def model_free_reward(variant: str, inp: RewardInput, use_gate: bool, seed: int = 0) -> RewardOutput:
    v = reward_variant(variant)
    if v.needs_prm:
        raise ValueError(f"{variant!r} needs a PRM; model-free variants: "
                         f"{', '.join(n for n, x in _REGISTRY.items() if not x.needs_prm)}")
    return v.reward(inp, use_gate, seed)


def _step_part(n: int, judgement: Judgement, verdict: float, info: dict, in_bounds: bool) -> RewardOutput:
    """Token-level variants: the step part needs a verdict on every policy step."""
    matched = len(judgement.step_labels) == n and all(lab is not None for lab in judgement.step_labels)
    labels = [bool(x) for x in judgement.step_labels] if in_bounds and matched else None
    info["step_part"] = "on" if labels is not None else ("step_bounds" if not in_bounds else "step_mismatch")
    return RewardOutput(verdict, num_policy_steps=n, step_labels=labels, info=info)


# ---- the variants ------------------------------------------------------------------------------
@register
class ProcessAware(RewardVariant):
    name = "process_aware"
    needs_prm = True

    def judged(self, n, judgement, verdict, info, cfg):
        return RewardOutput(verdict, num_policy_steps=n, step_labels=align_steps(judgement.step_labels, n), info=info)


@register
class StepAugmented(RewardVariant):
    name = "step_augmented"
    needs_prm = True

    def judged(self, n, judgement, verdict, info, cfg):
        aligned = align_steps(judgement.step_labels, n)
        frac = sum(aligned) / n
        info["correct_step_fraction"] = frac
        return RewardOutput(cfg.step_weight * frac + (1 - cfg.step_weight) * verdict, num_policy_steps=n,
                            step_labels=aligned, info=info)


@register
class SelectiveAdvantage(RewardVariant):
    name = "selective_advantage"
    needs_prm = True
    token_level = True

    def in_bounds(self, n_steps, cfg):
        return cfg.selective_min_steps <= n_steps <= cfg.selective_max_steps

    def judged(self, n, judgement, verdict, info, cfg):
        return _step_part(n, judgement, verdict, info, in_bounds=True)

    def token_advantages(self, seq_adv, located, labels, groups, n_tokens, global_step_mix):
        return {i: selective_advantages(seq_adv[i], labels[i], where) for i, where in located.items()}


@register
class GlobalStep(RewardVariant):
    name = "global_step"
    needs_prm = True
    token_level = True

    def judged(self, n, judgement, verdict, info, cfg):
        return _step_part(n, judgement, verdict, info, in_bounds=cfg.global_min_steps <= n <= cfg.global_max_steps)

    def token_advantages(self, seq_adv, located, labels, groups, n_tokens, global_step_mix):
        normalized = normalize_in_groups({i: step_rewards(labels[i]) for i in located}, {i: groups[i] for i in located})
        out = {}
        for i in range(len(seq_adv)):
            where = located.get(i)
            if where is None:
                out[i] = [(1 - global_step_mix) * seq_adv[i]] * n_tokens[i]
            else:
                out[i] = global_step_advantages(seq_adv[i], normalized[i], where, global_step_mix)
        return out


@register
class RLVR(RewardVariant):
    name = "rlvr"

    def reward(self, inp, use_gate, seed=0):
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


@register
class Random(RewardVariant):
    name = "random"

    def reward(self, inp, use_gate, seed=0):
        """Gate x a coin flip; the flip is a pure function of (seed, sample id) so reruns agree."""
        req = prepare(inp, use_gate)
        failed = _gate_failure(req, use_gate)
        if failed is not None:
            return failed
        digest = hashlib.sha256(f"{seed}:{inp.sample_id}".encode()).digest()
        return RewardOutput(float(digest[0] & 1), num_policy_steps=len(req.steps))
