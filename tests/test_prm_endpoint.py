"""The remote PRM against a real local HTTP server that misbehaves in every way the bad-input sweep
(issue #18) lists: each request ends in a verdict, a counted and named fallback, or - when the
endpoint failed a whole batch - `PRMEndpointDown` for the run supervisor; never a crash or a hang."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from spark_rl.config.engines import PRMConfig, RemotePRMConfig
from spark_rl.config.rewards import VariantConfig
from spark_rl.engines.prm_reward import MAX_CHARS_PER_TOKEN, PRMEndpointDown, PRMReward, RemoteCompleter
from spark_rl.formats.verification import render_verification
from spark_rl.rewards.base import RewardInput

GOOD = render_verification(["a", "b"], [True, True], True)


def _reply(handler, code: int, body: bytes, ctype: str = "application/json") -> None:
    handler.send_response(code)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _choices(content) -> bytes:
    return json.dumps({"choices": [{"message": {"content": content}, "finish_reason": "stop"}]}).encode()


# what the server does for a request whose prompt contains the key
MODES = {
    "http500": lambda h: _reply(h, 500, b"internal error"),
    "hang": lambda h: (time.sleep(2.0), _reply(h, 200, _choices(GOOD))),
    "notjson": lambda h: _reply(h, 200, b"<html>gateway</html>", "text/html"),
    "nochoices": lambda h: _reply(h, 200, json.dumps({"choices": []}).encode()),
    "nullcontent": lambda h: _reply(h, 200, _choices(None)),
    "huge": lambda h: _reply(h, 200, _choices(GOOD + "x" * 100_000)),
    "hugegarbage": lambda h: _reply(h, 200, _choices("y" * 100_000)),
    "badrequest": lambda h: _reply(h, 400, b"{}"),
    "good": lambda h: _reply(h, 200, _choices(GOOD)),
}


@pytest.fixture(scope="module")
def server():
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][0]["content"]
            mode = next((m for m in MODES if f"[{m}]" in prompt), "good")
            try:
                MODES[mode](self)
            except (BrokenPipeError, ConnectionResetError):   # the client gave up on a hang
                pass

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}/v1"
    srv.shutdown()


def _completer(url: str, **remote) -> RemoteCompleter:
    kw = dict(url=url, model="m", max_retries=1, backoff_s=0.01, timeout_s=0.5, concurrency=4) | remote
    return RemoteCompleter(PRMConfig(max_new_tokens=64, remote=RemotePRMConfig(**kw)))


@pytest.mark.parametrize("mode, want", [
    ("http500", (None, "remote_failed:http_500")),
    ("hang", (None, "remote_failed:timeout")),
    ("notjson", (None, "remote_failed:JSONDecodeError")),
    ("nochoices", (None, "remote_failed:IndexError")),
    ("nullcontent", ("", "ok")),
    ("badrequest", (None, "remote_failed:http_400")),
])
def test_each_failure_is_a_named_fallback_beside_a_good_request(server, mode, want):
    rc = _completer(server)
    t0 = time.monotonic()
    out = rc.complete([f"[{mode}] verify", "[good] verify"])
    assert out[0][0] == want[0] and out[0][1].startswith(want[1].split(":")[0]) and want[1] in out[0][1], out[0]
    assert out[1] == (GOOD, "ok")                          # the batch goes on
    assert time.monotonic() - t0 < 10                      # a hang costs its timeouts, not the run
    if want[0] is None and mode != "badrequest":
        assert rc.stats["retries"] == 1 and rc.stats["failures"] == 1   # retried once, then counted


def test_an_overlong_output_is_cut_to_what_max_new_tokens_could_hold(server):
    rc = _completer(server)
    (text, reason), = rc.complete(["[huge] verify"])
    assert reason == "truncated" and len(text) == MAX_CHARS_PER_TOKEN * 64 and text.startswith(GOOD)
    assert rc.stats["overlong"] == 1


def test_a_whole_batch_failing_is_an_outage_not_a_step_of_zero_rewards(server):
    with pytest.raises(PRMEndpointDown, match=r"all 3 requests of the batch failed after 2 tries each "
                                              r"\(last: remote_failed:http_500"):
        _completer(server).complete(["[http500] a", "[http500] b", "[http500] c"])
    with pytest.raises(PRMEndpointDown, match="last: remote_failed:"):     # nothing listening at all
        _completer("http://127.0.0.1:9/v1").complete(["x"])
    # requests the endpoint refused (4xx) are their own fault: counted, no outage
    assert _completer(server).complete(["[badrequest] a"]) == [(None, "remote_failed:http_400")]


def test_prm_reward_turns_every_misbehaviour_into_a_zero_reward_with_its_reason(server):
    completer = _completer(server)
    prm = PRMReward("process_aware", True, completer.cfg, VariantConfig(), completer=completer)
    solution = "<step>Step 1: 3 + 4 = 7</step>\n<step>Step 2: 7 - 2 = 5</step>\n<answer>\\boxed{5}</answer>"
    modes = ["good", "http500", "notjson", "nochoices", "nullcontent", "huge", "hugegarbage"]
    batch = [RewardInput(sample_id=m, problem=f"[{m}] Start with 3. Add 4. Subtract 2.", response=solution, answer="5")
             for m in modes]
    outs = dict(zip(modes, prm.score(batch)))
    assert outs["good"].reward == 1.0 and outs["huge"].reward == 1.0   # the verdict came before the excess
    for m in ("http500", "notjson", "nochoices"):
        assert outs[m].reward == 0.0 and outs[m].reason.startswith("remote_failed:"), (m, outs[m].reason)
    assert (outs["nullcontent"].reward, outs["nullcontent"].reason) == (0.0, "unparsable:missing_final")
    assert outs["hugegarbage"].reward == 0.0 and outs["hugegarbage"].reason == "unparsable:truncated"
