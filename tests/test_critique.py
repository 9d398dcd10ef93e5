"""Meta-critique text: render -> parse -> apply, and the bootstrap's critique/merge examples."""

from spark_rl.formats.verification import parse_verification
from spark_rl.tasks.domain import DomainConfig
from spark_rl.tasks.sft_data import meta_critique_examples
from spark_rl.verification.critique import NO_ISSUES, apply_critique, parse_critique, render_critique

T, F = True, False


def test_render_lists_each_fault_and_the_final():
    text = render_critique([T, T, F], True, [T, F, F], False, ["1 + 2 = 3 is right.", "3 * 2 = 6, not 7.", "x"])
    assert text.splitlines() == ["Step 2 is marked correct, but 3 * 2 = 6, not 7.",
                                 "The final verdict should be No."]
    assert render_critique([T, F], False, [T, F], False) == NO_ISSUES
    assert render_critique([F, F], False, [T, F], False).startswith("Step 1 is marked incorrect, but the step holds")


def test_parse_and_apply_round_trip():
    given, truth = [T, T, T], [T, F, F]
    c = parse_critique(render_critique(given, True, truth, False))
    assert c.parsed and c.flips == {1: F, 2: F} and c.final is False and not c.no_issues
    assert apply_critique(given, True, c) == (truth, False)


def test_parse_tolerates_noise_and_flags_nothing_recognisable():
    c = parse_critique("blah\n  step 4 IS MARKED incorrect because\nStep 9 is marked correct, but no.\nok")
    assert c.flips == {3: T, 8: F}
    # a fault beyond the solution is ignored; the final follows the fixed steps when none is named
    assert apply_critique([T, T, F, F], False, c) == ([T, T, F, T], False)
    assert apply_critique([F, F, F, F], False, parse_critique("Step 1 is marked incorrect, x")) == ([T, F, F, F], False)
    assert apply_critique([F], False, parse_critique("Step 1 is marked incorrect, x")) == ([T], True)
    assert parse_critique(NO_ISSUES).no_issues and parse_critique(NO_ISSUES).parsed
    for bad in ("", "garbage", None, "Step two is marked correct"):
        assert not parse_critique(bad).parsed
    assert apply_critique([T, F], False, parse_critique("garbage")) == ([T, F], False)


def test_meta_examples_merge_targets_follow_the_critique():
    problems = DomainConfig().problems(300, 5)
    ex = meta_critique_examples(problems, share_correct=0.4, mistake_share=0.5, ignored_critique_share=0.2, seed=3)
    assert len(ex) == 2 * len(problems)
    assert ex == meta_critique_examples(problems, 0.4, 0.5, 0.2, 3)          # deterministic
    crit, merge = ex[0::2], ex[1::2]
    kinds = {e.kind for e in ex}
    assert kinds == {"critique-exact", "critique-mistaken", "merge-exact", "merge-mistaken"}
    assert all(e.response == NO_ISSUES for e in crit if e.kind == "critique-exact")
    assert all(e.response != NO_ISSUES for e in crit if e.kind == "critique-mistaken")
    ignored = 0
    for c, m in zip(crit, merge):
        shown_critique = m.prompt.split("Critique:\n")[1].split("\nImproved Verification:")[0]
        given = parse_verification(m.prompt.split("Teacher Verification:\n")[1].split("\nCritique:")[0])
        target = parse_verification(m.response)
        assert target.ok and given.ok
        fixed = apply_critique(given.step_labels, given.final, parse_critique(shown_critique))
        assert (target.step_labels, target.final) == fixed
        if shown_critique != c.response:
            ignored += 1
            assert shown_critique == NO_ISSUES and target.step_labels == given.step_labels
    assert 0 < ignored < len(problems) // 2
