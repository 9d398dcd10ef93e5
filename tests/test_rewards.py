"""The driver's guards on rewards and data (pure logic)."""

import json
import math

import pytest

from spark_rl.rewards.base import RewardInput, RewardOutput, sanitize
from spark_rl.rewards.variants import model_free_reward


def test_nan_and_inf_rewards_become_zero_and_are_counted():
    outs = [RewardOutput(1.0), RewardOutput(float("nan")), RewardOutput(math.inf), RewardOutput(0.0, reason="no_answer")]
    clean, counts = sanitize(outs, 4)
    assert [o.reward for o in clean] == [1.0, 0.0, 0.0, 0.0]
    assert counts == {"ok": 1, "nonfinite": 2, "no_answer": 1}
    assert clean[1].info["raw_reward"] == "nan"


def test_reward_worker_returning_the_wrong_count_is_an_error():
    with pytest.raises(RuntimeError, match="2 results for 3 samples"):
        sanitize([RewardOutput(1.0), RewardOutput(0.0)], 3)


def test_rule_reward_cases():
    rule_reward = lambda inp, use_gate=False: model_free_reward("rlvr", inp, use_gate)  # noqa: E731  (the RLVR reward)
    good = "<step>Step 1: 2 + 3 = 5</step>\n<answer>\\boxed{5}</answer>"
    assert rule_reward(RewardInput("a", "q", good, "5")).reward == 1.0
    assert rule_reward(RewardInput("a", "q", good, "6")).reward == 0.0
    assert rule_reward(RewardInput("a", "q", "", "5")).reason == "no_answer"          # empty completion
    assert rule_reward(RewardInput("a", "q", good, None)).reason == "no_gold_answer"  # row without an answer
    assert rule_reward(RewardInput("a", "q", good, "  ")).reason == "no_gold_answer"


def test_benchmark_row_without_answer_is_an_error_naming_the_row(tmp_path):
    from spark_rl.tasks.loaders import DataFormatError
    from spark_rl.trainer.data import benchmark_problems

    path = tmp_path / "mini.jsonl"
    path.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n" + json.dumps({"problem": "2+2?"}) + "\n")
    with pytest.raises(DataFormatError, match=r"row 2: field 'answer'"):
        benchmark_problems(str(path))


def test_arith_eval_problems_never_appear_in_training():
    from spark_rl.config.rl import DataConfig
    from spark_rl.trainer.data import build_problems

    cfg = DataConfig(train_size=3000, eval_size=300, seed=2, eval_seed=10_000)
    train, evalset = build_problems(cfg)
    assert len(train) == 3000 and len(evalset) == 300
    assert not {p.question for p in train} & {p.question for p in evalset}
