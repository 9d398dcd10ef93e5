"""Stage 2 formats: SFT pairs from a Stage 1 row and the ProcessBench prediction of an output."""

import pytest

from spark_rl.formats.verification import render_verification
from spark_rl.verification.prm_formats import (
    FORMATS,
    eval_prompt,
    first_error_prediction,
    orm_verdict,
    predict,
    sft_example,
    step_analyses,
)
from spark_rl.verification.prompts import verifier_prompt

T, F = True, False
STEPS = ["Step 1: 2 + 3 = 5", "Step 2: 5 * 2 = 11", "Step 3: 11 - 1 = 10"]


def _row():
    target = render_verification(STEPS, [T, F, F], False, ["2 + 3 = 5 is right.", "5 * 2 = 10, not 11.",
                                                            "It builds on an earlier error."])
    return {"problem": "Start with 2. Add 3. Multiply by 2. Subtract 1. What is the result?",
            "solution": "\n".join(STEPS), "labels": [T, F, F], "final": False, "target": target}


def test_sft_examples_in_every_format():
    row = _row()
    ex = {f: sft_example(row, f) for f in FORMATS}
    assert ex["orm"].prompt.endswith("Is the answer correct (Yes/No)?\n") and ex["orm"].response == "No"
    # the Stage 2 students see the verifier's own prompt (its distilled verdicts, its layout)
    assert ex["prm"].prompt == ex["prm-cot"].prompt == verifier_prompt(row["problem"], row["solution"])
    assert ex["prm"].prompt.endswith("Student Solution:\n" + row["solution"] + "\nTeacher Verification:\n")
    assert ex["prm"].response.splitlines()[:3] == ["Step 1: Correct", "Step 2: Incorrect", "Step 3: Incorrect"]
    assert ex["prm-cot"].response == row["target"]
    think = ex["think"].response
    assert think.startswith("<think>\nChecking step 1: 2 + 3 = 5 is right.\nChecking step 2: 5 * 2 = 10, not 11.")
    assert think.endswith("</think>\nStep 1: \\boxed{correct}\nStep 2: \\boxed{incorrect}\nStep 3: \\boxed{incorrect}")
    # every format's own target predicts the row's earliest error
    for f in ("prm", "prm-cot", "think"):
        assert predict(ex[f].response, f, 3) == 1, f
    assert orm_verdict(ex["orm"].response) is False and orm_verdict(" yes.") is True and orm_verdict("maybe") is None
    with pytest.raises(ValueError, match="unknown PRM format 'xml'"):
        sft_example(row, "xml")
    with pytest.raises(ValueError, match="ORM names no step"):
        predict("Yes", "orm", 3)


def test_step_analyses_extraction():
    assert step_analyses(_row()["target"], 3) == ["2 + 3 = 5 is right.", "5 * 2 = 10, not 11.",
                                                  "It builds on an earlier error."]
    assert step_analyses("## Step 9: x\nfar away\n", 2) == ["", ""]
    assert step_analyses("garbage", 1) == [""]


def test_first_error_prediction_rules():
    assert first_error_prediction([T, T, T], 3) == -1
    assert first_error_prediction([T, F], 3) == 1            # truncated after naming the error: decided
    assert first_error_prediction([T, T], 3) is None         # too few verdicts, none incorrect: undecided
    assert first_error_prediction([T, None, F], 3) is None   # a missing verdict before the first error
    assert first_error_prediction([T, T, T, F], 3) == -1     # verdicts beyond the solution are ignored
    assert first_error_prediction([], 2) is None


@pytest.mark.parametrize("broken", ["", "I think it is fine.", "## Step 1: a\n**This step is**", None,
                                    "<think>Step 1: \\boxed{incorrect}", "Step one: Correct", "Step 1: \\boxed{}"])
def test_broken_outputs_are_unparsed_not_crashes(broken):
    for f in ("prm", "prm-cot", "think"):
        assert predict(broken, f, 2) is None


def test_eval_prompt_numbers_steps():
    p = eval_prompt("Q?", ["2 + 3 = 5", "5 * 2 = 10 \\boxed{10}"], "prm-cot")
    assert "Student Solution:\nStep 1: 2 + 3 = 5\nStep 2: 5 * 2 = 10 \\boxed{10}\nTeacher Verification:\n" in p
