"""Building the Stage 1 variant datasets from hand-made raw and meta-critique rows (pure logic)."""

import json

from spark_rl.formats.verification import render_verification
from spark_rl.pipelines.synthesize import SynthesizeConfig, build_variants, curate, quality_report

T, F = True, False
STEPS = ["Step 1: 2 + 3 = 5", "Step 2: 5 * 2 = 11"]          # step 2 is wrong


def _v(labels, final):
    return render_verification(STEPS, labels, final)


def _rows():
    right, wrong = _v([T, F], False), _v([T, T], True)
    sol = {"sample_index": 0, "steps": STEPS, "shown": "\n".join(STEPS), "true_labels": [T, F],
           "verifications": [wrong, right, right, "garbage"], "reference_verifications": [right, right]}
    return [{"problem_id": "p0", "question": "Start with 2. Add 3. Multiply by 2.", "solutions": [sol]}]


def _cfg():
    cfg = SynthesizeConfig(report_ns=[1, 2, 4])
    cfg.verifier.n, cfg.verifier.reference_n = 4, 2
    return cfg


def test_variants_targets_labels_and_counts():
    right = _v([T, F], False)
    meta = [{"problem_id": "p0", "sample_index": 0, "base": "base", "start": _v([T, T], True),
             "critiques": ["Step 2 is marked correct, but 5 * 2 = 10, not 11."], "merged": [right]},
            {"problem_id": "p0", "sample_index": 0, "base": "outcome", "start": right,
             "critiques": ["No issues found."], "merged": ["## Step 1: half a verification"]}]
    out, sel = build_variants(_rows(), _cfg(), meta)
    assert out["single"][0]["labels"] == [T, T]                      # the first verification, as it is
    assert out["step-consistency"][0]["labels"] == [T, F]            # 2 of 3 parsed voters find step 2
    assert out["step-consistency"][0]["votes_incorrect"] == [0, 2]
    assert out["outcome-consistency"][0]["final"] is False
    assert out["reference-guided"][0]["labels"] == [T, F]
    base = out["meta-critique-base"][0]
    assert base["labels"] == [T, F] and base["critiques"] == meta[0]["critiques"] and base["target"] == right
    assert out["meta-critique-outcome"] == []                        # its merge did not parse: no target
    assert sel["meta-critique-base"] == {"merged": 1, "changed_labels": 1}
    assert sel["meta-critique-outcome"] == {"unparsable:missing_verdict": 1}
    assert sel["step-consistency"]["excluded:unparsable:no_steps"] == 1       # "garbage" is counted, not voted
    prov = json.loads(base["provenance"])
    assert prov["n"] == 4 and prov["reference_n"] == 2 and len(prov["config_hash"]) == 12


def test_quality_rows_cover_every_variant():
    meta = [{"problem_id": "p0", "sample_index": 0, "base": "base", "start": _v([T, T], True),
             "critiques": ["x"], "merged": [_v([T, F], False)]}]
    table = {(r["variant"], r["n"]): r for r in quality_report(_rows(), _cfg(), meta)}
    assert table[("step-majority", 1)]["acc_err"] == 0.0 and table[("step-majority", 4)]["acc_err"] == 1.0
    assert table[("meta-critique-base", 1)]["acc_err"] == 1.0
    assert table[("meta-critique-outcome", 4)]["n_unparsed"] == 1    # no chain for this base
    assert table[("reference-guided", 2)]["acc_err"] == 1.0


def test_curate_keeps_both_kinds_and_caps():
    import random

    from spark_rl.pipelines.synthesize import CurationSection

    sols = [{"sample_index": i, "answer_correct": i % 3 == 0} for i in range(8)]    # 3 right, 5 wrong
    kept, why = curate(sols, CurationSection(max_correct=2, max_incorrect=2), random.Random(0))
    assert why == "kept" and len(kept) == 4 and sum(s["answer_correct"] for s in kept) == 2
    assert [s["sample_index"] for s in kept] == sorted(s["sample_index"] for s in kept)
    assert curate(sols[1:3], CurationSection(), random.Random(0)) == ([], "all_incorrect")
    assert curate([sols[0]], CurationSection(), random.Random(0)) == ([], "all_correct")
    assert curate(sols, CurationSection(enabled=False), random.Random(0)) == (sols, "kept")
