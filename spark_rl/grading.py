"""Answer equivalence with math-verify, safe to call from any thread.

math-verify's own time limit uses `signal.alarm`, which only works in the main thread; Ray actor
threads, thread pools and async code call `grade` elsewhere. There the check runs in a helper
thread that the caller waits for at most `timeout_s`; a check that overruns is abandoned (counted
in `grading_stats()["timeouts"]`) and graded False.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from functools import lru_cache

log = logging.getLogger(__name__)
_STATS: Counter = Counter()
_LOCK = threading.Lock()


def _count(key: str) -> None:
    with _LOCK:
        _STATS[key] += 1


def grading_stats() -> dict[str, int]:
    with _LOCK:
        return dict(_STATS)


def _as_latex(answer: str) -> str:
    a = answer.strip()
    return a if "\\boxed" in a or a.startswith("$") else f"\\boxed{{{a}}}"


def _verify(pred: str, gold: str, use_signals: bool, timeout_s: float) -> bool:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    limit = max(1, int(round(timeout_s))) if use_signals else None
    configs = [LatexExtractionConfig(), ExprExtractionConfig()]
    gold_parsed = parse(_as_latex(gold), extraction_config=configs, parsing_timeout=limit)
    pred_parsed = parse(_as_latex(pred), extraction_config=configs, parsing_timeout=limit)
    if not gold_parsed or not pred_parsed:
        _count("parse_failures")
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=limit))


@lru_cache(maxsize=65536)
def _grade_cached(pred: str, gold: str, timeout_s: float, exact_shortcut: bool) -> bool:
    if exact_shortcut and pred.strip() == gold.strip():
        return True
    if threading.current_thread() is threading.main_thread():
        try:
            return _verify(pred, gold, True, timeout_s)
        except Exception as e:  # math-verify raises on timeouts and exotic input
            _count("errors")
            log.debug("grade(%r, %r) failed: %s", pred, gold, e)
            return False
    result: list[bool] = []

    def work() -> None:
        try:
            result.append(_verify(pred, gold, False, timeout_s))
        except Exception:
            _count("errors")
            result.append(False)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        _count("timeouts")
        log.warning("grade: check of %r against %r exceeded %.1fs; graded False", pred[:80], gold[:80], timeout_s)
        return False
    return result[0]


def grade(pred: str | None, gold: str | None, timeout_s: float = 5.0, exact_shortcut: bool = True) -> bool:
    """True iff `pred` is mathematically equivalent to `gold` (math-verify). Never raises.
    `exact_shortcut` skips math-verify for identical strings (the common case in GRPO)."""
    _count("calls")
    if pred is None or gold is None:
        return False
    pred, gold = str(pred), str(gold)
    if not pred.strip() or not gold.strip():
        return False
    return _grade_cached(pred, gold, float(timeout_s), exact_shortcut)


def grade_many(preds: list[str | None], golds: list[str | None], timeout_s: float = 5.0) -> list[bool]:
    return [grade(p, g, timeout_s) for p, g in zip(preds, golds)]
