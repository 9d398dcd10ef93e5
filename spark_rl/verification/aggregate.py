"""Self-consistency aggregation of N verifier outputs for one solution (SPARK Stage 1, point 4).

Outcome level: majority over the N final Yes/No verdicts. Step level: majority per step; the
solution is correct iff every aggregated step is. The SFT target is one *real* verification that
agrees with the majority. The published code does not say what to do with ties, verifications of
a different length, or no agreeing verification; the choices below are ours, configurable, and
every case is counted (`Aggregate.reason`, `.ties`, `VoteTable.excluded`, `summarize`).

Who votes:
- on steps: verifications that parse cleanly (`ParsedVerification.ok`: every step has a verdict,
  steps numbered 1..k, a final verdict present); under "exact" also exactly `n_steps` verdicts.
  A malformed one is excluded as "unparsable:<first flag>" -- its step verdicts cannot be aligned
  with the solution's steps reliably, and a missing final line usually means a truncated output.
- on the final verdict: every verification whose final Yes/No line is found, clean or not (the
  outcome vote in the paper is over all N final verdicts; step structure does not matter to it).
- as SFT target: only step voters with exactly `n_steps` verdicts (a target must be a complete,
  well-formed example of the format).
Pure logic: no ray, vllm or torch.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from spark_rl.config.checks import Schema
from spark_rl.formats.verification import ParsedVerification, parse_verification, render_verification

LEVELS = ("step", "outcome")
_ALLOWED = {"step_count": ("exact", "lenient"), "tie_break": ("incorrect", "correct"),
            "no_agreement": ("drop", "closest", "render")}


@dataclass
class AggregationConfig(Schema):
    # "exact": only verifications with n_steps verdicts vote on steps; "lenient": shorter/longer ones
    # vote on the steps they cover (missing steps abstain, extra steps are ignored)
    step_count: str = "exact"
    # an exact tie (including 0-0, all abstained) -> "incorrect" (conservative: a PRM trained on a
    # doubtful "correct" would miss errors) or "correct"
    tie_break: str = "incorrect"
    # no real verification agrees: "drop" (no target), "closest" (fewest step verdicts that differ
    # from the aggregated labels, ties -> lowest index), "render" (synthetic text from the labels)
    no_agreement: str = "drop"
    # after the first aggregated incorrect step every later step is incorrect (the format's rule)
    propagate: bool = True

    def validate(self) -> None:
        for name, allowed in _ALLOWED.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"AggregationConfig.{name}={value!r}; allowed: {', '.join(allowed)}")


@dataclass
class VoteTable:
    """What the N verifications said about one solution."""
    n_steps: int
    step_votes: list[tuple[int, int]]     # per step: (correct, incorrect)
    final_votes: tuple[int, int]          # (yes, no)
    voters: list[int]                     # indices that voted on steps
    excluded: dict[str, int]              # reason -> count of verifications that could not vote on steps
    partial: int = 0                      # "lenient" voters whose step count != n_steps


@dataclass
class Aggregate:
    level: str                  # "step" | "outcome"
    labels: list[bool]          # aggregated per-step labels (length n_steps)
    final: bool                 # step level: all(labels); outcome level: the majority final verdict
    target_index: int | None    # index of the chosen SFT target among the N texts; None if rendered/dropped
    target_text: str | None     # None when dropped
    reason: str                 # "agree" | "closest" | "rendered" | "dropped" | "no_voters"
    ties: int                   # tie-broken decisions: steps (step level) or the final verdict (outcome)
    votes: VoteTable = field(repr=False)


def _table(parsed: list[ParsedVerification], n_steps: int, cfg: AggregationConfig) -> VoteTable:
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    correct, incorrect = [0] * n_steps, [0] * n_steps
    voters, excluded, partial = [], Counter(), 0
    for i, p in enumerate(parsed):
        if not p.ok:
            excluded[f"unparsable:{p.flags[0]}"] += 1
            continue
        if len(p.step_labels) != n_steps:
            if cfg.step_count == "exact":
                excluded["step_count_mismatch"] += 1
                continue
            partial += 1
        voters.append(i)
        for k, lab in enumerate(p.step_labels[:n_steps]):   # extra steps ignored; missing ones abstain
            if lab:
                correct[k] += 1
            else:
                incorrect[k] += 1
    finals = [p.final for p in parsed if p.final is not None]
    return VoteTable(n_steps, list(zip(correct, incorrect)), (finals.count(True), finals.count(False)),
                     voters, dict(excluded), partial)


def vote_table(texts: list[str], n_steps: int, cfg: AggregationConfig) -> VoteTable:
    """Parse the N texts and count step votes and final votes (see the module docstring for who votes)."""
    cfg.validate()
    return _table([parse_verification(t) for t in texts], n_steps, cfg)


def step_majority(table: VoteTable, cfg: AggregationConfig) -> tuple[list[bool], int]:
    """Per-step majority. Ties follow `cfg.tie_break`; with `propagate`, steps after the first
    incorrect one are incorrect and their votes (and ties) are not consulted. No voters -> all False."""
    if not table.voters:
        return [False] * table.n_steps, 0
    labels, ties, wrong = [], 0, False
    for c, i in table.step_votes:
        if cfg.propagate and wrong:
            labels.append(False)
            continue
        if c == i:
            ties += 1
            lab = cfg.tie_break == "correct"
        else:
            lab = c > i
        labels.append(lab)
        wrong = wrong or not lab
    return labels, ties


def outcome_majority(table: VoteTable, cfg: AggregationConfig) -> tuple[bool | None, bool]:
    """Majority of the final verdicts: (verdict or None if nobody voted, whether it was a tie)."""
    yes, no = table.final_votes
    if yes + no == 0:
        return None, False
    if yes == no:
        return cfg.tie_break == "correct", True
    return yes > no, False


def aggregate(texts: list[str], n_steps: int, level: str, cfg: AggregationConfig,
              steps: list[str] | None = None) -> Aggregate:
    """Aggregate one solution's N verifications and pick the SFT target.

    Agreement: step level -- all n_steps verdicts equal the aggregated labels; outcome level -- the
    final verdict equals the majority verdict. The lowest-index agreeing verification is the target
    (deterministic). Otherwise `cfg.no_agreement` decides; "closest" with no exact-length candidate
    drops. At outcome level `labels` are the target's step verdicts, else the step majority.
    "no_voters": nobody voted on what the level uses (steps / final verdict)."""
    cfg.validate()
    if level not in LEVELS:
        raise ValueError(f"level={level!r}; allowed: {', '.join(LEVELS)}")
    if cfg.no_agreement == "render" and (steps is None or len(steps) != n_steps):
        raise ValueError(f"no_agreement='render' needs the solution's {n_steps} step texts (steps=)")
    parsed = [parse_verification(t) for t in texts]
    table = _table(parsed, n_steps, cfg)
    labels, ties = step_majority(table, cfg)
    if level == "step":
        final, voted = all(labels), bool(table.voters)
    else:
        majority, tied = outcome_majority(table, cfg)
        final, voted, ties = bool(majority), majority is not None, int(tied)
    if not voted:
        return Aggregate(level, [False] * n_steps, False, None, None, "no_voters", 0, table)
    candidates = [i for i in table.voters if len(parsed[i].step_labels) == n_steps]
    if level == "step":
        agree = [i for i in candidates if parsed[i].step_labels == labels]
    else:
        agree = [i for i in candidates if parsed[i].final == final]
    index, text = None, None
    if agree:
        index, reason = agree[0], "agree"
    elif cfg.no_agreement == "closest" and candidates:
        index = min(candidates, key=lambda i: (sum(a != b for a, b in zip(parsed[i].step_labels, labels)), i))
        reason = "closest"   # at outcome level its own final verdict differs from `final`
    elif cfg.no_agreement == "render":
        text, reason = render_verification(steps, labels, final), "rendered"
    else:
        reason = "dropped"
    if index is not None:
        text = texts[index]
        if level == "outcome":
            labels = [bool(x) for x in parsed[index].step_labels]
    return Aggregate(level, labels, final, index, text, reason, ties, table)


def summarize(aggs: list[Aggregate]) -> dict[str, int]:
    """Counts over many solutions: "solutions", "reason:<r>", "ties", "excluded:<why>", "partial_voters"."""
    out: Counter[str] = Counter(solutions=len(aggs), ties=0, partial_voters=0)
    for a in aggs:
        out[f"reason:{a.reason}"] += 1
        out["ties"] += a.ties
        out["partial_voters"] += a.votes.partial
        for why, n in a.votes.excluded.items():
            out[f"excluded:{why}"] += n
    return dict(out)
