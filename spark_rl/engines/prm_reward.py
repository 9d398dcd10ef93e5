"""Generative-PRM rewards (SPARK Stage 3): a plain class that gates each response, asks a PRM-CoT
model to verify the gate-passing ones (greedy), parses the verification and applies the reward
variant. Two ways to ask the model, behind one `complete(prompts) -> [(text | None, reason)]`:

- `LocalCompleter`: the PRM on an in-process vLLM `Generator` (prefix caching on: every prompt of
  a step shares the instruction prefix);
- `RemoteCompleter`: an OpenAI-compatible chat endpoint (how the paper served its PRM), with a
  timeout per request, retries with exponential back-off and a concurrency limit.

A prompt the PRM cannot take (too long), an HTTP failure after the retries, or an unparsable
output gives reward 0 with a counted reason. One exception: when the endpoint failed *every*
request of a batch after its retries (down, not one bad request), `score` raises `PRMEndpointDown`
instead of handing the learner a step of zero rewards; the run supervisor waits and resumes the
run from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from spark_rl.config.engines import PRMConfig
from spark_rl.config.rewards import VariantConfig
from spark_rl.rewards.base import RewardInput, RewardOutput
from spark_rl.rewards.variants import (
    PRM_VARIANTS,
    Judgement,
    prepare,
    prm_reward,
    reward_variant,
    sends_to_prm,
)

log = logging.getLogger(__name__)


MAX_CHARS_PER_TOKEN = 16      # a remote output longer than max_new_tokens * this is cut there ("truncated")


class PRMEndpointDown(RuntimeError):
    """The remote PRM failed every request of a batch after its retries."""


def judge_text(text: str, fmt: str) -> Judgement:
    from spark_rl.formats import parse_step_labels, parse_verification

    parsed = parse_verification(text) if fmt == "prm-cot" else parse_step_labels(text)
    return Judgement(parsed.final, list(parsed.step_labels), parsed.flags)


class LocalCompleter:
    """Greedy completions from a PRM on an in-process vLLM engine."""

    def __init__(self, cfg: PRMConfig):
        from spark_rl.engines.generator import Generator

        self.cfg = cfg
        self.generator = Generator(dataclasses.replace(cfg.engine, model_path=cfg.model_path))

    def prompt_text(self, prompt: str) -> str:
        from spark_rl.models.chat import chat_prompt

        return chat_prompt(self.generator.tokenizer, prompt)

    def complete(self, prompts: list[str]) -> list[tuple[str | None, str]]:
        texts = [self.prompt_text(p) for p in prompts]
        limit = self.cfg.engine.max_model_len - 1
        lengths = [len(self.generator.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        fits = [i for i, n in enumerate(lengths) if 0 < n <= limit]
        out: list[tuple[str | None, str]] = [(None, "prm_prompt_too_long")] * len(prompts)
        if fits:
            done = self.generator.greedy([texts[i] for i in fits], max_new_tokens=self.cfg.max_new_tokens)
            for i, c in zip(fits, done):
                out[i] = (c.text, "truncated" if c.finish_reason == "length" else "ok")
        return out


class RemoteCompleter:
    """Greedy chat completions from an OpenAI-compatible endpoint."""

    def __init__(self, cfg: PRMConfig):
        if not cfg.remote.url:
            raise ValueError("reward.prm.remote.url is empty")
        self.cfg = cfg
        self.remote = cfg.remote
        self.api_key = os.environ.get(cfg.remote.api_key_env, "")
        self.stats = {"requests": 0, "retries": 0, "failures": 0, "overlong": 0}

    def _one(self, prompt: str) -> tuple[str | None, str]:
        import requests

        url = self.remote.url.rstrip("/") + "/chat/completions"
        body = {"model": self.remote.model, "messages": [{"role": "user", "content": prompt}],
                "temperature": 0.0, "max_tokens": self.cfg.max_new_tokens}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        delay, last = self.remote.backoff_s, "unknown"
        for attempt in range(self.remote.max_retries + 1):
            self.stats["requests"] += 1
            try:
                r = requests.post(url, json=body, headers=headers, timeout=self.remote.timeout_s)
                if r.status_code == 200:
                    choice = r.json()["choices"][0]
                    text = choice["message"]["content"] or ""
                    if len(text) > MAX_CHARS_PER_TOKEN * self.cfg.max_new_tokens:
                        # an endpoint that ignores max_tokens: keep what max_new_tokens could hold
                        self.stats["overlong"] += 1
                        return text[:MAX_CHARS_PER_TOKEN * self.cfg.max_new_tokens], "truncated"
                    return text, "truncated" if choice.get("finish_reason") == "length" else "ok"
                last = f"http_{r.status_code}"
                if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
                    break   # the request itself is wrong: retrying cannot help
            except requests.Timeout:
                last = "timeout"
            except (requests.RequestException, ValueError, KeyError, IndexError, TypeError) as e:
                last = type(e).__name__
            if attempt < self.remote.max_retries:
                self.stats["retries"] += 1
                time.sleep(delay)
                delay *= 2
        self.stats["failures"] += 1
        log.warning("remote PRM: giving up on a request after %d tries (%s)", self.remote.max_retries + 1, last)
        return None, f"remote_failed:{last}"

    def complete(self, prompts: list[str]) -> list[tuple[str | None, str]]:
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=min(self.remote.concurrency, len(prompts))) as pool:
            out = list(pool.map(self._one, prompts))
        # a request the endpoint refused (4xx) is that request's fault: counted, not an outage
        if all(text is None and not _refused(reason) for text, reason in out):
            raise PRMEndpointDown(f"remote PRM {self.remote.url}: all {len(out)} requests of the batch failed after "
                                  f"{self.remote.max_retries + 1} tries each (last: {out[-1][1]}; "
                                  f"reward.prm.remote.max_retries, timeout_s)")
        return out


def _refused(reason: str) -> bool:
    code = reason.rsplit("http_", 1)[-1] if "http_" in reason else ""
    return code.isdigit() and 400 <= int(code) < 500 and int(code) not in (408, 429)


class PRMReward:
    """Gate -> PRM verification (greedy) -> reward variant, for a batch of responses."""

    def __init__(self, variant: str, use_gate: bool, cfg: PRMConfig, variant_cfg: VariantConfig, completer=None):
        if not reward_variant(variant).needs_prm:
            raise ValueError(f"PRMReward: {variant!r} is not a PRM variant ({', '.join(PRM_VARIANTS)})")
        self.variant, self.use_gate, self.cfg, self.variant_cfg = variant, use_gate, cfg, variant_cfg
        if completer is None:
            completer = RemoteCompleter(cfg) if cfg.remote.url else LocalCompleter(cfg)
        self.completer = completer

    def score(self, batch: list[RewardInput]) -> list[RewardOutput]:
        from spark_rl.verification.prm_formats import eval_prompt

        reqs = [prepare(x, self.use_gate) for x in batch]
        send = [i for i, r in enumerate(reqs) if sends_to_prm(self.variant, r, self.use_gate, self.variant_cfg)]
        prompts = [eval_prompt(batch[i].problem, reqs[i].steps, self.cfg.format, reqs[i].answer) for i in send]
        # The PRM is greedy, so one prompt has one verification: a GRPO group of a low-entropy policy
        # repeats responses (~40% of the demo's at step 0), and each distinct prompt is asked once.
        unique = list(dict.fromkeys(prompts))
        done = dict(zip(unique, self.completer.complete(unique)))
        prompts_of = dict(zip(send, prompts))
        answers = {i: done[p] for i, p in prompts_of.items()}
        first: dict[str, int] = {}      # prompt -> the first sample that sent it
        out = []
        for i, req in enumerate(reqs):
            text, status = answers.get(i, (None, ""))
            judgement = judge_text(text, self.cfg.format) if text is not None else None
            o = prm_reward(self.variant, req, judgement, self.use_gate, self.variant_cfg)
            if i in answers and text is None:
                o.reason = status                       # too long / remote failure: say which
            elif status == "truncated" and o.reason.startswith("unparsable"):
                o.reason = "unparsable:truncated"
            o.info["prm_text"] = text
            if i in answers:    # a repeat of an earlier prompt in this batch reused its verification
                o.info["prm_reused"] = first.setdefault(prompts_of[i], i) != i
            out.append(o)
        return out
