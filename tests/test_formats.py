import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_rl.formats import (
    count_boxed,
    extract_answer,
    extract_boxed,
    format_gate,
    parse_critic_answer,
    parse_step_labels,
    parse_verification,
    render_step_labels,
    render_verification,
    split_steps,
)

FRAGMENTS = ["<answer>", "</answer>", "\\boxed{", "}", "{", "## Step 3:", "Step 2:", "<step>", "</step>",
             "**This step is correct.**", "**This step is incorrect.**", "<think>", "</think>",
             "**Verification: Is the answer correct (Yes/No)? Yes**", "\n", " ", "12", "-1", "x"]
texts = st.one_of(st.text(max_size=300), st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))


@settings(max_examples=300, deadline=None)
@given(texts)
def test_parsers_never_raise(text):
    split_steps(text)
    parse_verification(text)
    parse_verification(text, expected_steps=3)
    parse_step_labels(text, expected_steps=2)
    g = format_gate(text)
    assert g.passed == (g.reason == "ok")
    extract_boxed(text)
    extract_answer(text)
    count_boxed(text)
    c = parse_critic_answer(text)
    assert c is None or isinstance(c, int)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=8), st.booleans(),
       st.sampled_from(["", "<think>hmm ## Step 9: **This step is incorrect.**</think>\n"]))
def test_render_parse_round_trip(labels, final, prefix):
    steps = [f"Step {i + 1}: {i} + 1 = {i + 1}" for i in range(len(labels))]
    text = prefix + render_verification(steps, labels, final)
    parsed = parse_verification(text, expected_steps=len(labels))
    assert parsed.ok and parsed.step_labels == labels and parsed.final == final
    plain = parse_step_labels(render_step_labels(labels, final), expected_steps=len(labels))
    assert plain.ok and plain.step_labels == labels and plain.final == final


def test_split_steps_styles():
    t = "<step>Step 1: 1 + 2 = 3</step>\n<step>Step 2: 3 * 2 = 6</step>\n<answer>\\boxed{6}</answer>"
    s = split_steps(t)
    assert s.style == "tag" and s.steps == ["Step 1: 1 + 2 = 3", "Step 2: 3 * 2 = 6"]
    assert t[s.spans[1][0]:s.spans[1][1]] == "<step>Step 2: 3 * 2 = 6</step>"
    h = split_steps("## Step 1: add\n1+2=3\n## Step 2: double\n6")
    assert h.style == "heading" and h.steps == ["Step 1: add\n1+2=3", "Step 2: double\n6"]
    lab = split_steps("Step 1: a\nStep 2: b\nAnswer: 3")
    assert lab.style == "label" and lab.steps == ["Step 1: a", "Step 2: b\nAnswer: 3"]
    assert split_steps("no steps here").style == "none"


@pytest.mark.parametrize("text,expected", [
    ("so \\boxed{\\frac{1}{2}} done", "\\frac{1}{2}"),
    ("\\boxed{1} then \\boxed{2}", "2"),
    ("\\boxed{3", None),
    ("nothing", None),
    ("\\boxed {x^{2}}", "x^{2}"),
])
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


def test_extract_answer_falls_back_to_answer_line():
    assert extract_answer("Step 1: ...\nAnswer: 42") == "42"
    assert extract_answer("Answer: 1\n\\boxed{2}") == "2"


@pytest.mark.parametrize("resp,passed,reason", [
    ("<step>a</step><answer>\\boxed{3}</answer>", True, "ok"),
    ("<answer>\\boxed{3}</answer>\n  ", True, "ok"),
    ("\\boxed{3}", False, "no_answer_block"),
    ("<answer>3</answer>", False, "no_boxed"),
    ("<answer>\\boxed{3} \\boxed{4}</answer>", False, "multiple_boxed"),
    ("<answer><answer>\\boxed{3}</answer>", False, "multiple_answer_blocks"),
    ("<answer>\\boxed{3}</answer> Problem 2: 1+1=2", False, "text_after_answer"),
    ("<answer>\\boxed{3}</answer><answer>\\boxed{3}</answer>", False, "text_after_answer"),
    ("   ", False, "empty"),
])
def test_format_gate(resp, passed, reason):
    g = format_gate(resp)
    assert (g.passed, g.reason) == (passed, reason)
    if "</answer>" in resp:
        assert g.text.endswith("</answer>")


def test_gate_reports_hacking_indicators():
    g = format_gate("<answer>\\boxed{3}</answer>\nAlso \\boxed{5} <answer>x</answer>")
    assert not g.passed and g.n_boxed == 2 and g.n_answer_blocks == 2 and "Also" in g.after_answer


def test_parse_verification_flags():
    text = ("## Step 1: a\n**This step is correct.**\n## Step 1: b\nhmm\n"
            "**Verification: Is the answer correct (Yes/No)? No**")
    p = parse_verification(text, expected_steps=3)
    assert p.step_labels == [True, None] and p.final is False
    assert {"missing_verdict", "duplicate_step", "missing_steps"} <= set(p.flags) and not p.ok
    q = parse_verification("## Step 1: a\n**THIS STEP IS INCORRECT.**\n## Step 2: b\n**This step is incorrect.**")
    assert q.step_labels == [False, False] and q.final is None and "missing_final" in q.flags
    assert q.first_incorrect == 0


@pytest.mark.parametrize("text,expected", [
    ("The earliest error is \\boxed{2}.", 2), ("\\boxed{-1}", -1), ("\\boxed{two}", None),
    ("\\boxed{1} ... \\boxed{x}", 1), ("", None)])
def test_critic_answer(text, expected):
    assert parse_critic_answer(text) == expected
