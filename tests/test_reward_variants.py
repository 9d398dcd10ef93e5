"""Stage 3 reward variants, token-level advantages and hacking indicators on hand-worked examples
(pure logic), plus property tests that the gate and the rewards never raise."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_rl.config.engines import PRMConfig, RemotePRMConfig
from spark_rl.engines.prm_reward import PRMReward, judge_text
from spark_rl.formats import format_gate, render_verification
from spark_rl.rewards.base import RewardInput
from spark_rl.rewards.hacking import hacking_indicators
from spark_rl.rewards.shaping import (
    StepTokens,
    global_step_advantages,
    normalize_in_groups,
    selective_advantages,
    step_rewards,
    token_char_ends,
    token_steps,
)
from spark_rl.rewards.variants import (
    PRM_VARIANTS,
    Judgement,
    VariantConfig,
    align_steps,
    model_free_reward,
    prepare,
    prm_reward,
)
from spark_rl.rewards.variants import (
    REWARD_VARIANTS as VARIANTS,
)
from spark_rl.trainer.rollout_batch import Sample, token_level_advantages


def solution(n_steps: int, answer: int = 5, tail: str = "") -> str:
    steps = "\n".join(f"<step>Step {k}: {k} + 1 = {k + 1}</step>" for k in range(1, n_steps + 1))
    return f"{steps}\n<answer>\\boxed{{{answer}}}</answer>{tail}"


def inp(response: str, answer: str | None = "5", sid: str = "s0") -> RewardInput:
    return RewardInput(sid, "Start with 1.", response, answer)


CFG = VariantConfig()


def judged(labels, final=True) -> Judgement:
    return Judgement(final, list(labels))


# ---- sequence rewards -----------------------------------------------------------------------
def test_process_aware_is_the_verdict_and_needs_the_gate():
    req = prepare(inp(solution(3)), use_gate=True)
    assert prm_reward("process_aware", req, judged([True, True, True]), True, CFG).reward == 1.0
    assert prm_reward("process_aware", req, judged([True, False, False], final=False), True, CFG).reward == 0.0
    hacked = prepare(inp(solution(3, tail="\nAlso: 2+2=4 <answer>\\boxed{4}</answer>")), use_gate=True)
    out = prm_reward("process_aware", hacked, judged([True] * 3), True, CFG)
    assert (out.reward, out.reason) == (0.0, "gate:text_after_answer")
    # gate off: the same text is judged on its verdict
    off = prepare(inp(solution(3, tail="\nmore text")), use_gate=False)
    assert prm_reward("process_aware", off, judged([True] * 3), False, CFG).reward == 1.0


def test_step_augmented_weights_fraction_and_verdict():
    req = prepare(inp(solution(4)), use_gate=True)
    out = prm_reward("step_augmented", req, judged([True, True, False, False], final=False), True, CFG)
    assert out.reward == pytest.approx(0.4 * 0.5 + 0.6 * 0.0)
    out = prm_reward("step_augmented", req, judged([True, True, True, True], final=True), True, CFG)
    assert out.reward == pytest.approx(1.0)
    # the PRM judged 2 of 4 steps: the missing two count as incorrect
    out = prm_reward("step_augmented", req, judged([True, True], final=True), True, CFG)
    assert out.reward == pytest.approx(0.4 * 0.5 + 0.6)
    assert out.step_labels == [True, True, False, False]
    # extra judged steps are dropped; a step without a verdict counts as incorrect
    out = prm_reward("step_augmented", req, judged([True, None, True, True, False, False], final=True), True, CFG)
    assert out.reward == pytest.approx(0.4 * 0.75 + 0.6)


def test_align_steps():
    assert align_steps([True, False], 4) == [True, False, False, False]
    assert align_steps([True, True, True], 2) == [True, True]
    assert align_steps([None, True], 2) == [False, True]


def test_selective_advantage_step_bounds_zero_the_reward():
    for n, expect in ((3, "step_bounds"), (4, "ok"), (20, "ok"), (21, "step_bounds")):
        req = prepare(inp(solution(n)), use_gate=True)
        out = prm_reward("selective_advantage", req, judged([True] * n), True, CFG)
        assert out.reason == expect, n
        assert out.reward == (1.0 if expect == "ok" else 0.0)


def test_selective_advantage_mismatch_turns_off_the_step_part_only():
    req = prepare(inp(solution(5)), use_gate=True)
    out = prm_reward("selective_advantage", req, judged([True] * 4), True, CFG)
    assert out.reward == 1.0 and out.step_labels is None and out.info["step_part"] == "step_mismatch"
    out = prm_reward("selective_advantage", req, judged([True, False, True, True, True], final=True), True, CFG)
    assert out.step_labels == [True, False, True, True, True]


def test_global_step_bounds_zero_the_step_part_not_the_reward():
    for n, part in ((2, "step_bounds"), (3, "on"), (20, "on"), (21, "step_bounds")):
        req = prepare(inp(solution(n)), use_gate=True)
        out = prm_reward("global_step", req, judged([True] * n), True, CFG)
        assert out.reward == 1.0 and out.info["step_part"] == part, n
        assert (out.step_labels is None) == (part != "on")


def test_unparsable_and_empty_prm_outputs_give_zero_with_a_reason():
    req = prepare(inp(solution(3)), use_gate=True)
    for text in ("", "I think it is fine.", "## Step 1: x\n**This step is correct.**"):
        out = prm_reward("process_aware", req, judge_text(text, "prm-cot"), True, CFG)
        assert (out.reward, out.reason) == (0.0, "unparsable:missing_final"), text
    assert prm_reward("process_aware", req, None, True, CFG).reason == "prm_no_output"


def test_rlvr_and_random():
    assert model_free_reward("rlvr", inp(solution(3, answer=5)), True).reward == 1.0
    assert model_free_reward("rlvr", inp(solution(3, answer=6)), True).reward == 0.0
    assert model_free_reward("rlvr", inp(solution(3), answer=None), True).reason == "no_gold_answer"
    assert model_free_reward("rlvr", inp("<answer>\\boxed{5}</answer> extra"), True).reason == "gate:text_after_answer"
    flips = [model_free_reward("random", inp(solution(3), sid=f"s{i}"), True, seed=1).reward for i in range(200)]
    assert set(flips) == {0.0, 1.0} and 70 < sum(flips) < 130
    again = [model_free_reward("random", inp(solution(3), sid=f"s{i}"), True, seed=1).reward for i in range(200)]
    assert flips == again                                      # a pure function of (seed, sample id)
    assert model_free_reward("random", inp("no format"), True).reward == 0.0


# ---- the PRM reward class with a canned completer -------------------------------------------
class CannedCompleter:
    def __init__(self, answers):
        self.answers = list(answers)
        self.prompts = []

    def complete(self, prompts):
        self.prompts.extend(prompts)
        return [self.answers.pop(0) for _ in prompts]


def test_prm_reward_sends_only_gate_passing_text_and_counts_reasons():
    good = solution(3)
    verification = render_verification(["a", "b", "c"], [True, True, False], False)
    completer = CannedCompleter([(verification, "ok"), (None, "prm_prompt_too_long"), ("garbage", "truncated")])
    prm = PRMReward("step_augmented", True, PRMConfig(), VariantConfig(), completer=completer)
    batch = [inp(good), inp(good + " trailing"), inp(solution(3, answer=7)), inp(""), inp(solution(4))]
    outs = prm.score(batch)
    assert len(completer.prompts) == 3                         # the gate-failing and the empty one never went
    assert all("trailing" not in p for p in completer.prompts)
    assert outs[0].reward == pytest.approx(0.4 * 2 / 3)
    assert outs[1].reason == "gate:text_after_answer"
    assert (outs[2].reward, outs[2].reason) == (0.0, "prm_prompt_too_long")
    assert outs[3].reason == "gate:empty"
    assert (outs[4].reward, outs[4].reason) == (0.0, "unparsable:truncated")


def test_prm_reward_verifies_a_repeated_response_once():
    # a GRPO group often repeats a response: the greedy PRM is asked once per distinct prompt, and
    # every copy gets that verification (text after </answer> is not part of the PRM's prompt)
    a, b = solution(3), solution(3, answer=7)
    right = render_verification(["x", "y", "z"], [True, True, True], True)
    wrong = render_verification(["x", "y", "z"], [True, False, False], False)
    completer = CannedCompleter([(right, "ok"), (wrong, "ok")])
    prm = PRMReward("process_aware", False, PRMConfig(), VariantConfig(), completer=completer)
    outs = prm.score([inp(a, sid="0"), inp(b, sid="1"), inp(a, sid="2"), inp(a + " Also 1 + 1 = 2.", sid="3"),
                      inp(b, sid="4")])
    assert len(completer.prompts) == 2 and completer.prompts[0] != completer.prompts[1]
    assert [o.reward for o in outs] == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert [o.info["prm_reused"] for o in outs] == [False, False, True, True, True]
    assert all(o.info["prm_text"] == (right if o.reward else wrong) for o in outs)


def test_remote_completer_retries_then_gives_up(monkeypatch):
    """Against a real local HTTP server: 500 twice then success; a 400 is not retried."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    calls = {"n": 0}
    verification = render_verification(["a"], [True], True)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls["n"] += 1
            if "bad request" in body["messages"][0]["content"]:
                self.send_response(400)
                self.end_headers()
                return
            if calls["n"] <= 2:
                self.send_response(500)
                self.end_headers()
                return
            out = json.dumps({"choices": [{"message": {"content": verification}, "finish_reason": "stop"}]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(out.encode())

        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from spark_rl.engines.prm_reward import RemoteCompleter

        cfg = PRMConfig(remote=RemotePRMConfig(url=f"http://127.0.0.1:{server.server_port}/v1", model="m",
                                               max_retries=3, backoff_s=0.01, concurrency=1))
        rc = RemoteCompleter(cfg)
        assert rc.complete(["verify this"]) == [(verification, "ok")]
        assert rc.stats["retries"] == 2
        text, reason = rc.complete(["bad request"])[0]
        assert text is None and reason == "remote_failed:http_400" and rc.stats["failures"] == 1
    finally:
        server.shutdown()
    # nothing listening: connection errors, retried; the whole batch failed, so the endpoint is down
    from spark_rl.engines.prm_reward import PRMEndpointDown

    rc = RemoteCompleter(PRMConfig(remote=RemotePRMConfig(url="http://127.0.0.1:9/v1", max_retries=1, backoff_s=0.01)))
    with pytest.raises(PRMEndpointDown, match="remote_failed:"):
        rc.complete(["x"])
    assert rc.stats["failures"] == 1 and rc.stats["retries"] == 1


# ---- token-level advantages -----------------------------------------------------------------
def test_token_steps_maps_tokens_to_steps():
    # text: "AB|CD|E" -> spans step0 = [0, 2), step1 = [2, 4); token 4 outside
    assert token_steps([1, 2, 3, 4, 5], [(0, 2), (2, 4)]) == [0, 0, 1, 1, -1]
    assert token_steps([2, 5], [(0, 2), (3, 5)]) == [0, -1]    # the second token starts at 2 (a gap)


def test_token_char_ends_falls_back_when_pieces_do_not_add_up():
    def decode(ids):            # token 9 only renders together with the token before it
        s = "".join("x" if t != 9 else "" for t in ids)
        return s + ("!" if len(ids) > 1 and ids[-1] == 9 else "")

    assert token_char_ends(decode, [1, 2, 3]) == ("xxx", [1, 2, 3])
    assert token_char_ends(decode, [1, 9]) == ("x!", [1, 2])


def test_selective_advantage_masks():
    where = StepTokens(6, [0, 0, 1, 1, 2, -1])
    labels = [True, False, True]
    assert selective_advantages(0.5, labels, where) == [0.5, 0.5, 0.0, 0.0, 0.5, 0.5]
    assert selective_advantages(-0.5, labels, where) == [0.0, 0.0, -0.5, -0.5, 0.0, -0.5]
    assert selective_advantages(0.0, labels, where) == [0.0] * 6


def test_global_step_rewards_on_last_tokens_with_return_to_go():
    assert step_rewards([True, False, True, True]) == [0.25, -0.25, 0.25, 0.25]
    where = StepTokens(5, [0, 0, 1, 1, -1])
    out = global_step_advantages(1.0, [0.5, -1.0], where, mix=0.2)
    # step 0 ends at token 1, step 1 at token 3: return-to-go [-0.5, -0.5, -1.0, -1.0, 0]
    assert out == pytest.approx([0.8 - 0.1, 0.8 - 0.1, 0.8 - 0.2, 0.8 - 0.2, 0.8])
    assert global_step_advantages(1.0, None, where, mix=0.2) == pytest.approx([0.8] * 5)


def test_normalize_in_groups_pools_all_steps_of_a_group():
    out = normalize_in_groups({0: [1.0, -1.0], 1: [1.0, 1.0], 2: [0.5]}, {0: 7, 1: 7, 2: 8})
    # group 7: values [1, -1, 1, 1], mean .5, std sqrt(.75)
    s = 0.75 ** 0.5
    assert out[0] == pytest.approx([0.5 / s, -1.5 / s], rel=1e-5)
    assert out[2] == pytest.approx([0.0])        # a lone value: no spread, no signal


def test_token_level_advantages_on_samples():
    # a char-level "tokenizer": token = one character
    text = "<step>Step 1: 1 + 1 = 2</step><step>Step 2: 2 + 1 = 4</step><answer>\\boxed{4}</answer>"
    ids = [ord(c) for c in text]

    def decode(xs):
        return "".join(chr(x) for x in xs)

    s_plus = Sample(group=0, prompt_ids=[1], response_ids=ids, response_text=text, finish_reason="stop",
                    step_labels=[True, False])
    s_minus = Sample(group=0, prompt_ids=[1], response_ids=ids, response_text=text, finish_reason="stop",
                     step_labels=[True, False])
    s_off = Sample(group=0, prompt_ids=[1], response_ids=ids, response_text=text, finish_reason="stop")
    adv = torch.tensor([1.0, -1.0, 0.5])
    counts = token_level_advantages("selective_advantage", [s_plus, s_minus, s_off], adv, decode)
    assert counts == {"step_part_on": 2, "step_part_off": 1, "step_locate_mismatch": 0}
    split = text.index("<step>Step 2")
    ans = text.index("<answer>")
    assert set(s_plus.token_advantages[:split]) == {1.0} and set(s_plus.token_advantages[split:ans]) == {0.0}
    assert set(s_plus.token_advantages[ans:]) == {1.0}
    assert set(s_minus.token_advantages[:split]) == {0.0} and set(s_minus.token_advantages[split:ans]) == {-1.0}
    assert s_off.token_advantages is None           # the sequence advantage applies
    # labels that do not match the text's steps are not placed
    bad = Sample(group=0, prompt_ids=[1], response_ids=ids, response_text=text, finish_reason="stop",
                 step_labels=[True, True, True])
    assert token_level_advantages("selective_advantage", [bad], torch.tensor([1.0]), decode)["step_locate_mismatch"] == 1

    g1 = Sample(group=0, prompt_ids=[1], response_ids=ids, response_text=text, finish_reason="stop",
                step_labels=[True, False])
    g2 = Sample(group=0, prompt_ids=[1], response_ids=ids, response_text=text, finish_reason="stop",
                step_labels=[True, True])
    token_level_advantages("global_step", [g1, g2], torch.tensor([-1.0, 1.0]), decode, global_step_mix=0.2)
    assert len(g1.token_advantages) == len(ids)
    # g2's steps are both correct: its step advantage is positive before the end of step 2, 0 after
    assert g2.token_advantages[0] > 0.8 and g2.token_advantages[-1] == pytest.approx(0.8)
    assert g1.token_advantages[0] < -0.8 and g1.token_advantages[-1] == pytest.approx(-0.8)


# ---- hacking indicators ---------------------------------------------------------------------
def test_hacking_indicators():
    texts = [solution(3), solution(1), solution(2, tail="\n<answer>\\boxed{7}</answer>"), "nothing"]
    m = hacking_indicators(texts)
    assert m["hacking/text_after_answer_share"] == 0.25
    assert m["hacking/multi_answer_block_share"] == 0.25 and m["hacking/multi_boxed_share"] == 0.25
    assert m["hacking/single_step_share"] == 0.25
    assert m["hacking/steps_mean"] == pytest.approx((3 + 1 + 2 + 0) / 4)
    assert m["hacking/gate_pass_share"] == 0.5
    assert hacking_indicators([]) == {}


# ---- properties: nothing raises on any text ---------------------------------------------------
TEXT = st.lists(st.sampled_from(list("ab12 +=\n") + ["<step>", "</step>", "<answer>", "</answer>",
                                                             "\\boxed{", "}", "## Step 1:", "Step 2:",
                                                             "**This step is correct.**",
                                                             "**This step is incorrect.**",
                                                             "**Verification: Is the answer correct (Yes/No)? Yes**"]),
               max_size=40).map("".join) | st.text(max_size=80)


@settings(max_examples=300, deadline=None)
@given(response=TEXT, prm_text=TEXT, variant=st.sampled_from(VARIANTS), gate=st.booleans())
def test_gate_and_rewards_never_raise(response, prm_text, variant, gate):
    g = format_gate(response)
    assert g.passed in (True, False)
    x = inp(response)
    if variant in PRM_VARIANTS:
        out = prm_reward(variant, prepare(x, gate), judge_text(prm_text, "prm-cot"), gate, CFG)
    else:
        out = model_free_reward(variant, x, gate)
    assert 0.0 <= out.reward <= 1.0 and isinstance(out.reason, str)
    hacking_indicators([response])
