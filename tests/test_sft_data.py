"""Bootstrap SFT data: slips, exact verification labels, label noise (pure logic)."""

import random

from spark_rl.formats.verification import parse_verification
from spark_rl.tasks.arith import check_solution
from spark_rl.tasks.domain import DomainConfig
from spark_rl.tasks.sft_data import noisy_labels, policy_examples, verifier_examples


def test_policy_examples_slip_share_and_exactness():
    problems = DomainConfig().problems(2000, 0)
    ex = policy_examples(problems, slip_share=0.25, seed=0)
    slipped = [e for e in ex if e.kind != "clean"]
    assert 0.22 < len(slipped) / len(ex) < 0.28
    for p, e in zip(problems, ex):
        assert check_solution(p, e.response).answer_correct == (e.kind == "clean") or e.kind == "skipped_step"
    assert policy_examples(problems[:50], 0.25, 0) == policy_examples(problems[:50], 0.25, 0)


def test_lazy_teacher_stops_long_problems_one_step_early():
    from spark_rl.formats import split_steps

    problems = DomainConfig().problems(2000, 0)
    plain = policy_examples(problems, 0.25, 0)
    lazy = policy_examples(problems, 0.25, 0, lazy_share=0.7, lazy_min_ops=4)
    assert policy_examples(problems, 0.25, 0, lazy_share=0.0) == plain     # the knob off changes nothing
    long_ = [i for i, p in enumerate(problems) if len(p.ops) >= 4]
    assert long_ and len(long_) < len(problems)
    share = sum(lazy[i].kind == "lazy" for i in long_) / len(long_)
    assert 0.65 < share < 0.75, share
    for i, (p, e) in enumerate(zip(problems, lazy)):
        if e.kind != "lazy":
            assert e == plain[i]           # short problems and the unlucky 30% keep their solution
            continue
        assert len(p.ops) >= 4
        check = check_solution(p, e.response)
        assert len(split_steps(e.response).steps) == len(p.ops) - 1 and not check.complete
        assert check.answer == str(p.values[-2])        # boxes the last result it has (right only by luck)
        assert check.answer_correct == (p.values[-2] == p.answer)


def test_verifier_traces_parse_back_to_exact_labels_without_noise():
    problems = DomainConfig().problems(300, 1)
    for e in verifier_examples(problems, share_correct=0.4, label_noise=0.0, seed=0):
        v = parse_verification(e.response)
        assert v.ok
        assert v.final == all(v.step_labels)
        assert e.kind == "clean" or e.kind == "skipped_step" or not all(v.step_labels)


def test_verifier_learns_that_stopping_early_is_an_error():
    problems = DomainConfig().problems(1000, 2)
    plain = verifier_examples(problems, share_correct=0.4, label_noise=0.0, seed=0)
    assert verifier_examples(problems, 0.4, 0.0, 0, stopped_early_share=0.0) == plain
    ex = verifier_examples(problems, 0.4, 0.0, 0, stopped_early_share=0.25)
    early = [e for e in ex if e.kind == "stopped_early"]
    erroneous = [e for e in plain if e.kind != "clean"]
    assert 0.2 < len(early) / len(erroneous) < 0.3
    assert sum(e.kind == "clean" for e in ex) == sum(e.kind == "clean" for e in plain)   # share_correct kept
    for e in early:
        v = parse_verification(e.response)
        assert v.ok and v.final is False
        assert v.step_labels[:-1] == [True] * (len(v.step_labels) - 1) and v.step_labels[-1] is False
        assert f"Op {len(v.step_labels) + 1} is not done." in e.response


def test_label_noise_rate_and_shape():
    problems = DomainConfig().problems(2000, 2)
    ex = verifier_examples(problems, share_correct=0.4, label_noise=0.2, seed=0)
    noisy = sum(e.kind == "noisy" for e in ex) / len(ex)
    assert 0.08 < noisy < 0.16   # false alarms only (a draw that would miss an error, or changes nothing, is not used)
    rng = random.Random(0)
    for labels in ([True, True, False, False], [True, True, True], [False, False]):
        for _ in range(50):
            new = noisy_labels(labels, rng)
            assert len(new) == len(labels)
            first = new.index(False) if False in new else len(new)
            assert all(new[:first]) and not any(new[first:])   # once wrong, all later wrong
