"""Self-consistency aggregation (Stage 1, point 4) on hand-made verifications."""

import pytest

from spark_rl.formats import render_verification
from spark_rl.verification.aggregate import (
    AggregationConfig,
    aggregate,
    outcome_majority,
    step_majority,
    summarize,
    vote_table,
)

STEPS = ["Step 1: 2 + 3 = 5", "Step 2: 5 * 2 = 10", "Step 3: 10 - 1 = 9", "Step 4: 9 / 3 = 3"]
T, F = True, False


def v(labels, final=None):
    """A well-formed verification of the first len(labels) steps; final defaults to all(labels)."""
    return render_verification(STEPS[: len(labels)], list(labels), all(labels) if final is None else final)


GARBAGE = "I think the solution looks fine overall."                                   # no_steps
NO_VERDICT = v([T, T, T]).replace("**This step is correct.**", "", 1)                  # missing_verdict, final Yes
NO_FINAL = v([T, T, T]).rsplit("\n", 1)[0]                                              # missing_final


def cfg(**kw):
    return AggregationConfig(**kw)


def test_clear_majority():
    texts = [v([T, T, T]), v([T, F, F]), v([T, T, T])]
    table = vote_table(texts, 3, cfg())
    assert table.step_votes == [(3, 0), (2, 1), (2, 1)]
    assert table.final_votes == (2, 1)
    assert table.voters == [0, 1, 2] and table.excluded == {} and table.partial == 0
    agg = aggregate(texts, 3, "step", cfg())
    assert (agg.labels, agg.final, agg.target_index, agg.reason, agg.ties) == ([T, T, T], T, 0, "agree", 0)
    assert agg.target_text == texts[0]


def test_step_tie_both_settings():
    texts = [v([T, T, T]), v([T, F, F])]
    table = vote_table(texts, 3, cfg())
    assert table.step_votes == [(2, 0), (1, 1), (1, 1)]
    # incorrect: step 2 tie -> False; step 3 forced False by propagation (its tie is not consulted)
    assert step_majority(table, cfg()) == ([T, F, F], 1)
    agg = aggregate(texts, 3, "step", cfg())
    assert (agg.labels, agg.final, agg.target_index, agg.reason, agg.ties) == ([T, F, F], F, 1, "agree", 1)
    # correct: both ties decided True
    assert step_majority(table, cfg(tie_break="correct")) == ([T, T, T], 2)
    agg = aggregate(texts, 3, "step", cfg(tie_break="correct"))
    assert (agg.labels, agg.final, agg.target_index, agg.reason, agg.ties) == ([T, T, T], T, 0, "agree", 2)
    # without propagation step 3's tie is decided on its own
    assert step_majority(table, cfg(propagate=False)) == ([T, F, F], 2)


def test_unequal_step_counts_exact_vs_lenient():
    texts = [v([T, T]), v([T, T, F]), v([T, F, F, F]), v([T, T, F])]
    exact = vote_table(texts, 3, cfg())
    assert exact.voters == [1, 3] and exact.excluded == {"step_count_mismatch": 2} and exact.partial == 0
    assert exact.step_votes == [(2, 0), (2, 0), (0, 2)]
    assert exact.final_votes == (1, 3)            # mismatched ones still vote on the final verdict
    lenient = vote_table(texts, 3, cfg(step_count="lenient"))
    assert lenient.voters == [0, 1, 2, 3] and lenient.excluded == {} and lenient.partial == 2
    assert lenient.step_votes == [(4, 0), (3, 1), (0, 3)]   # text 0 abstains on step 3; step 4 ignored
    agg = aggregate(texts, 3, "step", cfg(step_count="lenient"))
    assert (agg.labels, agg.target_index, agg.reason) == ([T, T, F], 1, "agree")


def test_lenient_short_verifications_cannot_be_targets():
    texts = [v([T, T]), v([T, T]), v([T, F, F])]
    lenient = cfg(step_count="lenient")
    assert vote_table(texts, 3, lenient).step_votes == [(3, 0), (2, 1), (0, 1)]
    agg = aggregate(texts, 3, "step", lenient)
    assert (agg.labels, agg.target_index, agg.target_text, agg.reason) == ([T, T, F], None, None, "dropped")
    agg = aggregate(texts, 3, "step", cfg(step_count="lenient", no_agreement="closest"))
    assert (agg.target_index, agg.reason) == (2, "closest")
    # all voters short: step 3 has 0-0 votes -> tie -> incorrect; no exact-length candidate -> dropped
    agg = aggregate([v([T]), v([T, T])], 3, "step", cfg(step_count="lenient", no_agreement="closest"))
    assert (agg.labels, agg.ties, agg.reason, agg.votes.step_votes) == ([T, T, F], 1, "dropped",
                                                                         [(2, 0), (1, 0), (0, 0)])


def test_unparsable_counted_in_excluded():
    texts = [v([T, T, T]), GARBAGE, NO_VERDICT, NO_FINAL]
    table = vote_table(texts, 3, cfg())
    assert table.voters == [0]
    assert table.excluded == {"unparsable:no_steps": 1, "unparsable:missing_verdict": 1,
                              "unparsable:missing_final": 1}
    assert table.step_votes == [(1, 0), (1, 0), (1, 0)]
    assert table.final_votes == (2, 0)            # NO_VERDICT still has its final Yes; NO_FINAL abstains


NO_MATCH = [v([F, T, T]), v([T, F, T]), v([T, T, F])]   # each step 2-1 correct -> majority TTT, matched by none


def test_no_agreement_drop_closest_render():
    agg = aggregate(NO_MATCH, 3, "step", cfg())
    assert (agg.labels, agg.final, agg.target_index, agg.target_text, agg.reason) == ([T, T, T], T, None,
                                                                                       None, "dropped")
    agg = aggregate(NO_MATCH, 3, "step", cfg(no_agreement="closest"))   # all 1 step off -> lowest index
    assert (agg.target_index, agg.target_text, agg.reason) == (0, NO_MATCH[0], "closest")
    agg = aggregate(NO_MATCH, 3, "step", cfg(no_agreement="render"), steps=STEPS[:3])
    assert (agg.target_index, agg.reason) == (None, "rendered")
    assert agg.target_text == render_verification(STEPS[:3], [T, T, T], True)
    with pytest.raises(ValueError, match="steps"):
        aggregate(NO_MATCH, 3, "step", cfg(no_agreement="render"))
    with pytest.raises(ValueError, match="steps"):
        aggregate(NO_MATCH, 3, "step", cfg(no_agreement="render"), steps=STEPS[:2])


def test_closest_prefers_fewest_disagreements():
    # 0 is 3 steps off, 1..6 are 1 step off; every step 4-3 correct -> majority TTT
    texts = [v([F, F, F]), v([F, T, T]), v([T, F, T]), v([T, T, F]), v([F, T, T]), v([T, F, T]), v([T, T, F])]
    agg = aggregate(texts, 3, "step", cfg(no_agreement="closest"))
    assert agg.votes.step_votes == [(4, 3)] * 3
    assert (agg.labels, agg.target_index, agg.reason) == ([T, T, T], 1, "closest")


def test_propagate_on_off():
    texts = [v([T, F, T]), v([T, F, T]), v([T, T, F])]
    assert vote_table(texts, 3, cfg()).step_votes == [(3, 0), (1, 2), (2, 1)]
    agg = aggregate(texts, 3, "step", cfg())
    assert (agg.labels, agg.final, agg.target_index, agg.reason) == ([T, F, F], F, None, "dropped")
    agg = aggregate(texts, 3, "step", cfg(propagate=False))
    assert (agg.labels, agg.final, agg.target_index, agg.reason) == ([T, F, T], F, 0, "agree")


def test_outcome_level_selection():
    texts = [v([T, T, T], True), v([T, F, F], False), v([T, T, F], False), v([T, T, F], False)]
    agg = aggregate(texts, 3, "outcome", cfg())
    assert agg.votes.final_votes == (1, 3)
    assert (agg.final, agg.labels, agg.target_index, agg.reason, agg.ties) == (F, [T, F, F], 1, "agree", 0)
    step = aggregate(texts, 3, "step", cfg())     # the step level picks a different target
    assert (step.labels, step.target_index) == ([T, T, F], 2)


def test_outcome_tie_and_no_clean_match():
    texts = [v([T, T, T], True), v([T, F, F], False)]
    assert outcome_majority(vote_table(texts, 3, cfg()), cfg()) == (False, True)
    agg = aggregate(texts, 3, "outcome", cfg())
    assert (agg.final, agg.labels, agg.target_index, agg.ties) == (F, [T, F, F], 1, 1)
    agg = aggregate(texts, 3, "outcome", cfg(tie_break="correct"))
    assert (agg.final, agg.labels, agg.target_index, agg.ties) == (T, [T, T, T], 0, 1)
    # the "No" voters are too short to be targets: dropped, labels = step majority of the one voter
    texts = [v([T, T, T], True), v([T, T], False), v([T, T], False)]
    agg = aggregate(texts, 3, "outcome", cfg())
    assert (agg.final, agg.labels, agg.target_index, agg.reason) == (F, [T, T, T], None, "dropped")
    agg = aggregate(texts, 3, "outcome", cfg(no_agreement="render"), steps=STEPS[:3])
    assert agg.reason == "rendered"
    assert agg.target_text == render_verification(STEPS[:3], [T, T, T], False)


def test_no_voters():
    for texts, level in [([GARBAGE, "", v([T, T])], "step"), ([GARBAGE, ""], "outcome"), ([], "step")]:
        agg = aggregate(texts, 3, level, cfg())
        assert (agg.labels, agg.final, agg.target_index, agg.target_text, agg.reason, agg.ties) == (
            [F, F, F], F, None, None, "no_voters", 0)
    assert outcome_majority(vote_table([GARBAGE], 3, cfg()), cfg()) == (None, False)
    assert step_majority(vote_table([GARBAGE], 2, cfg(tie_break="correct")), cfg()) == ([F, F], 0)


def test_validate_errors():
    AggregationConfig().validate()
    for kw, name in [({"step_count": "loose"}, "step_count"), ({"tie_break": "random"}, "tie_break"),
                     ({"no_agreement": "skip"}, "no_agreement")]:
        with pytest.raises(ValueError, match=name):
            AggregationConfig(**kw).validate()
    with pytest.raises(ValueError, match="level"):
        aggregate([v([T])], 1, "both", cfg())
    with pytest.raises(ValueError, match="n_steps"):
        vote_table([v([T])], 0, cfg())


def test_summarize():
    aggs = [
        aggregate([v([T, T, T]), v([T, F, F])], 3, "step", cfg()),          # agree, 1 tie
        aggregate(NO_MATCH + [GARBAGE], 3, "step", cfg()),                  # dropped, 1 unparsable
        aggregate([v([T, T]), v([T, T, T])], 3, "step", cfg()),             # agree, 1 mismatch
        aggregate([v([T, T]), v([T, T, T])], 3, "step", cfg(step_count="lenient")),   # agree, 1 partial
        aggregate([GARBAGE], 3, "step", cfg()),                             # no_voters
    ]
    assert summarize(aggs) == {
        "solutions": 5, "ties": 1, "partial_voters": 1,
        "reason:agree": 3, "reason:dropped": 1, "reason:no_voters": 1,
        "excluded:unparsable:no_steps": 2, "excluded:step_count_mismatch": 1,
    }
    assert summarize([]) == {"solutions": 0, "ties": 0, "partial_voters": 0}
