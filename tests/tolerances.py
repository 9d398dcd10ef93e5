"""Tolerances for comparing two fp32 evaluations of the same network, derived from fp32 rounding
rather than from the machine a test first ran on.

Two engines (vLLM's CPU kernels and torch's; one thread count and another; one rank and two) run
the same weights but sum in different orders. Reassociating a sum of n fp32 terms moves it by at
most gamma_n = n*u/(1 - n*u) of the sum of the terms' magnitudes (u = 2**-24; Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., sec. 3.1), and in practice by about sqrt(n)*u: the
rounding errors of a long sum are independent and add like a random walk (ibid., sec. 2.8). A
token's log-prob is a logit minus a log-sum-exp, after num_layers + 1 matmul stages whose widest
sums have max(hidden, intermediate) terms; each stage's relative rounding carries through to the
logits, whose size sets the absolute error. So one engine is off the exact value by about

    (num_layers + 1) * sqrt(n) * u * max|logit|

and two engines differ by at most twice that. Measured on the tiny preset (sequences of 78 tokens,
max|logit| 15): vLLM vs float64 6.8e-6, torch fp32 vs float64 2.0e-5, vLLM vs torch fp32 1.3e-5;
the bound gives 2.0e-4. A stale or partial weight sync moves log-probs by the size of an update
(> 1e-3 in these tests, which each check that separately).
"""

from __future__ import annotations

import math

U32 = 2.0 ** -24          # fp32 unit roundoff


def fp32_logprob_tolerance(cfg, max_abs_logit: float = 20.0) -> float:
    """Max |log-prob difference| of two fp32 engines on the same weights. `cfg`: a transformers
    config (or anything with hidden_size, intermediate_size, num_hidden_layers)."""
    n = max(cfg.hidden_size, cfg.intermediate_size)
    return 2 * (cfg.num_hidden_layers + 1) * math.sqrt(n) * U32 * max_abs_logit


def model_tolerance(model_dir: str, max_abs_logit: float = 20.0) -> float:
    """`fp32_logprob_tolerance` of the checkpoint in `model_dir`."""
    from transformers import AutoConfig

    return fp32_logprob_tolerance(AutoConfig.from_pretrained(model_dir), max_abs_logit)
