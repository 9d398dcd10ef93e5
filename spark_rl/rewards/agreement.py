"""How a PRM's verdicts agree with the ground truth on the same samples (Stage 3).

The PRM reward is only as good as the PRM: every GRPO step scores the verdicts the PRM gave the
policy's samples against the ground-truth grade of the same samples (math-verify, computed for
validation whatever the reward). "Yes" is the positive class:

    prm/agreement       share of judged samples where the verdict equals the grade
    prm/yes_precision   of the samples the PRM called correct, the share that are
    prm/yes_recall      of the correct samples, the share the PRM called correct
    prm/yes_share       share of judged samples called correct
    prm/judged          samples with a verdict (gated-out and unparsable ones have none)

A falling precision while the reward rises is the signature of a policy that has found a way to
make the PRM say Yes to wrong answers. Pure logic.
"""

from __future__ import annotations


def prm_agreement(verdicts: list[bool | None], correct: list[bool]) -> dict[str, float]:
    if len(verdicts) != len(correct):
        raise ValueError(f"{len(verdicts)} verdicts for {len(correct)} grades")
    pairs = [(bool(v), bool(c)) for v, c in zip(verdicts, correct) if v is not None]
    if not pairs:
        return {}
    yes = [c for v, c in pairs if v]
    right = [v for v, c in pairs if c]
    out = {"prm/judged": float(len(pairs)),
           "prm/agreement": sum(v == c for v, c in pairs) / len(pairs),
           "prm/yes_share": len(yes) / len(pairs)}
    if yes:
        out["prm/yes_precision"] = sum(yes) / len(yes)
    if right:
        out["prm/yes_recall"] = sum(right) / len(right)
    return out
