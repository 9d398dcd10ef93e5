import threading
import time

import pytest

from spark_rl import grading
from spark_rl.grading import grade, grading_stats


@pytest.mark.parametrize("pred,gold,ok", [
    ("1/2", "0.5", True), ("\\frac{1}{2}", "0.5", True), ("\\boxed{3}", "3", True), ("3", "4", False),
    ("10.0", "10", True), ("\\sqrt{2}", "2^{1/2}", True), ("(1,2)", "(1, 2)", True), ("2", "(1, 2)", False),
])
def test_equivalences(pred, gold, ok):
    assert grade(pred, gold, exact_shortcut=False) is ok


@pytest.mark.parametrize("pred", [None, "", "   ", "\\boxed{", "}{}{", "\x00\x01", "a" * 5000])
def test_garbage_never_raises(pred):
    assert grade(pred, "3") is False


def test_same_results_off_the_main_thread():
    out = []
    t = threading.Thread(target=lambda: out.append([grade("\\frac{2}{4}", "0.5", exact_shortcut=False),
                                                    grade("7", "8", exact_shortcut=False)]))
    t.start()
    t.join()
    assert out == [[True, False]]


def test_time_limit_off_the_main_thread(monkeypatch):
    def slow(*a, **k):
        time.sleep(3)
        return True

    monkeypatch.setattr(grading, "_verify", slow)
    grading._grade_cached.cache_clear()
    before = grading_stats().get("timeouts", 0)
    out = []
    t0 = time.perf_counter()
    t = threading.Thread(target=lambda: out.append(grade("1", "2", timeout_s=0.3, exact_shortcut=False)))
    t.start()
    t.join()
    assert out == [False] and time.perf_counter() - t0 < 2.0
    assert grading_stats()["timeouts"] == before + 1
    grading._grade_cached.cache_clear()
