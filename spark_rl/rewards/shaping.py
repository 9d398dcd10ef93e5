"""Token-level advantages of the step-aware reward variants (pure logic: no ray, no vllm).

The driver computes the usual group advantage of each sample's sequence reward, then, for
`selective_advantage` and `global_step`, spreads it over the response tokens using the PRM's step
verdicts. Steps are located in the decoded response by the same splitter the reward used; a
token belongs to step j when it starts inside step j's character span.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from spark_rl.formats import split_steps


def token_char_ends(decode: Callable[[list[int]], str], ids: Sequence[int]) -> tuple[str, list[int]]:
    """The decoded text and, per token, the character offset where it ends. Token by token when
    the pieces add up to the whole (the common case, linear); prefix by prefix otherwise (tokens
    that split a multi-byte character)."""
    ids = list(ids)
    text = decode(ids)
    pieces = [decode([t]) for t in ids]
    if "".join(pieces) == text:
        ends, pos = [], 0
        for p in pieces:
            pos += len(p)
            ends.append(pos)
        return text, ends
    return text, [len(decode(ids[:i + 1])) for i in range(len(ids))]


def token_steps(char_ends: list[int], spans: list[tuple[int, int]]) -> list[int]:
    """For each token the index of the step it starts in, -1 outside every step."""
    out, start = [], 0
    j = 0
    for end in char_ends:
        while j < len(spans) and start >= spans[j][1]:
            j += 1
        out.append(j if j < len(spans) and spans[j][0] <= start < spans[j][1] else -1)
        start = end
    return out


@dataclass
class StepTokens:
    """Where a response's steps are, in tokens."""

    n_tokens: int
    step_of_token: list[int]          # -1: outside every step (the answer block, whitespace)

    @property
    def n_steps(self) -> int:
        return max(self.step_of_token, default=-1) + 1

    def last_token(self, step: int) -> int | None:
        idx = [t for t, s in enumerate(self.step_of_token) if s == step]
        return idx[-1] if idx else None


def locate_steps(decode: Callable[[list[int]], str], response_ids: Sequence[int]) -> tuple[StepTokens, int]:
    """StepTokens of a response, and how many steps the splitter found in its decoded text."""
    text, ends = token_char_ends(decode, response_ids)
    split = split_steps(text)
    return StepTokens(len(ends), token_steps(ends, split.spans)), len(split.steps)


def selective_advantages(seq_adv: float, labels: list[bool], where: StepTokens) -> list[float]:
    """Keep the sequence advantage on a step's tokens only where it agrees with the PRM's verdict on
    that step (positive on a correct step, negative on an incorrect one), else 0. Tokens outside
    the steps keep it."""
    out = []
    for s in where.step_of_token:
        if s < 0 or s >= len(labels):
            out.append(seq_adv)
        elif (seq_adv > 0 and labels[s]) or (seq_adv < 0 and not labels[s]):
            out.append(seq_adv)
        else:
            out.append(0.0)
    return out


def step_rewards(labels: list[bool]) -> list[float]:
    """The global step reward: +1/n for a correct step, -1/n for an incorrect one."""
    n = len(labels)
    return [(1.0 if ok else -1.0) / n for ok in labels]


def global_step_advantages(seq_adv: float, normalized_step_rewards: list[float] | None, where: StepTokens,
                           mix: float) -> list[float]:
    """(1 - mix) * sequence advantage + mix * step advantage on every token, where the step advantage
    of a token is the sum of the (group-normalized) rewards of the steps ending at or after it,
    each placed on its step's last token. None: the step part is off (bounds, mismatch) -> 0."""
    n = where.n_tokens
    step_adv = [0.0] * n
    if normalized_step_rewards:
        placed = [0.0] * n
        for j, r in enumerate(normalized_step_rewards):
            t = where.last_token(j)
            if t is not None:
                placed[t] += r
        acc = 0.0
        for t in range(n - 1, -1, -1):
            acc += placed[t]
            step_adv[t] = acc
    return [(1 - mix) * seq_adv + mix * a for a in step_adv]


def normalize_in_groups(values: dict[int, list[float]], groups: dict[int, int], eps: float = 1e-6
                        ) -> dict[int, list[float]]:
    """Normalize step rewards over each prompt group (all steps of all its samples): (r - mean) / (std + eps).
    `values`: sample index -> its step rewards; `groups`: sample index -> group id."""
    pooled: dict[int, list[float]] = {}
    for i, rs in values.items():
        pooled.setdefault(groups[i], []).extend(rs)
    stats = {}
    for g, rs in pooled.items():
        mean = sum(rs) / len(rs)
        std = (sum((r - mean) ** 2 for r in rs) / len(rs)) ** 0.5
        stats[g] = (mean, std)
    return {i: [(r - stats[groups[i]][0]) / (stats[groups[i]][1] + eps) for r in rs] for i, rs in values.items()}
