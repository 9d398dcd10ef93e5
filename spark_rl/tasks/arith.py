"""The embedded synthetic math domain: chains of integer operations with exact ground truth.

Every step of any solution can be checked by recomputation, so the domain gives exact step labels
(ProcessBench-style earliest errors), exact rewards, and an error injector with known labels.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from spark_rl.formats.answers import extract_answer
from spark_rl.formats.steps import split_steps

OPS = ("+", "-", "*")
ERROR_KINDS = ("arithmetic_slip", "wrong_operand", "skipped_step", "wrong_final_answer")
_EQ = re.compile(r"(-?\d+)\s*([+\-*x×−])\s*(-?\d+)\s*=\s*(-?\d+)")
_OP_NORMAL = {"x": "*", "×": "*", "−": "-"}

_PLAIN_PHRASE = {"+": "Add {b}.", "-": "Subtract {b}.", "*": "Multiply by {b}."}
# (name, pronoun, thing); word phrasings must stay parseable by `tasks.processbench.parse_ops`.
_WORD_SUBJECTS = (("Mia", "She", "marbles"), ("Tom", "He", "apples"), ("Ava", "She", "stickers"),
                  ("Leo", "He", "coins"), ("Zoe", "She", "shells"), ("Sam", "He", "cards"))
_WORD_PHRASE = {"+": "{p} gets {b} more.", "-": "{p} gives away {b}.", "*": "{p} makes it {b} times as many."}


def apply_op(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


@dataclass(frozen=True)
class ArithProblem:
    id: str
    start: int
    ops: tuple[tuple[str, int], ...]
    question: str
    answer: int

    @property
    def values(self) -> list[int]:
        vals = [self.start]
        for op, b in self.ops:
            vals.append(apply_op(vals[-1], op, b))
        return vals


def _phrase(start: int, ops, rng: random.Random, word: bool) -> str:
    if not word:
        return f"Start with {start}. " + " ".join(_PLAIN_PHRASE[o].format(b=b) for o, b in ops) + \
            " What is the result?"
    name, pron, thing = rng.choice(_WORD_SUBJECTS)
    body = " ".join(_WORD_PHRASE[o].format(p=pron, b=b) for o, b in ops)
    return f"{name} has {start} {thing}. {body} How many {thing} does {pron.lower()} have now?"


def generate_problems(n: int, seed: int, min_ops: int = 3, max_ops: int = 6, word_share: float = 0.0,
                      max_operand: int = 9, max_value: int = 99, max_multiplier: int = 5) -> list[ArithProblem]:
    """`n` distinct problems, seeded. Every intermediate value stays in [0, max_value]."""
    if not 1 <= min_ops <= max_ops:
        raise ValueError(f"need 1 <= min_ops <= max_ops, got {min_ops}, {max_ops}")
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[ArithProblem] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"cannot draw {n} distinct problems with these bounds")
        v = start = rng.randint(1, max_operand)
        ops = []
        for _ in range(rng.randint(min_ops, max_ops)):
            choices = [("+", b) for b in range(1, max_operand + 1) if v + b <= max_value]
            choices += [("-", b) for b in range(1, max_operand + 1) if v - b >= 0]
            choices += [("*", b) for b in range(2, max_multiplier + 1) if v * b <= max_value]
            op, b = rng.choice(choices)
            ops.append((op, b))
            v = apply_op(v, op, b)
        q = _phrase(start, ops, rng, rng.random() < word_share)
        if q in seen:
            continue
        seen.add(q)
        out.append(ArithProblem(f"arith-{seed}-{len(out)}", start, tuple(ops), q, v))
    return out


def policy_prompt(p: ArithProblem) -> str:
    """What the policy sees. Short on purpose: tiny models pay for every prompt token."""
    return p.question + "\n"


def format_steps(equations: list[tuple[int, str, int, int]], answer: int | str) -> str:
    lines = [f"<step>Step {k}: {a} {op} {b} = {c}</step>" for k, (a, op, b, c) in enumerate(equations, start=1)]
    return "\n".join(lines + [f"<answer>\\boxed{{{answer}}}</answer>"])


def _exact_steps(p: ArithProblem, n_ops: int, answer: int) -> str:
    """The first `n_ops` operations worked exactly, then `answer` boxed."""
    vals = p.values
    return format_steps([(vals[i], op, b, vals[i + 1]) for i, (op, b) in enumerate(p.ops[:n_ops])], answer)


def reference_solution(p: ArithProblem) -> str:
    return _exact_steps(p, len(p.ops), p.answer)


def early_stop_solution(p: ArithProblem) -> str:
    """A solution that stops one operation short and boxes the intermediate result."""
    return _exact_steps(p, len(p.ops) - 1, p.values[len(p.ops) - 1])


def parse_equation(step: str) -> tuple[int, str, int, int] | None:
    m = _EQ.search(step)
    if not m:
        return None
    a, op, b, c = m.groups()
    try:
        return int(a), _OP_NORMAL.get(op, op), int(b), int(c)
    except ValueError:
        return None


@dataclass
class StepCheck:
    step_correct: list[bool]
    first_error: int            # earliest wrong step (0-based), -1 if none
    answer: str | None
    answer_correct: bool
    complete: bool              # as many steps as operations


def check_solution(p: ArithProblem, text: str) -> StepCheck:
    """Exact per-step labels of any solution text.

    Step i is correct iff its equation `a op b = c` starts from the previous correct result (the
    start value for step 0), applies the problem's i-th operation, and computes it right. After
    the first wrong step every later step is wrong (errors propagate, as in ProcessBench). Steps
    beyond the operations are wrong. The final answer belongs to the last step: right steps with a
    wrong answer make the last step wrong. A solution that stops early (fewer steps than operations)
    with right steps jumps to its answer in its last present step: that step is the earliest error
    (index 0 when there are no steps at all).
    """
    steps = split_steps(text).steps if isinstance(text, str) else []
    answer = extract_answer(text) if isinstance(text, str) else None
    try:
        answer_correct = answer is not None and int(answer.strip()) == p.answer
    except ValueError:
        answer_correct = False
    correct: list[bool] = []
    prev, chain_ok = p.start, True
    for i, step in enumerate(steps):
        eq = parse_equation(step)
        ok = chain_ok and i < len(p.ops) and eq is not None
        if ok:
            a, op, b, c = eq
            ok = a == prev and (op, b) == p.ops[i] and c == apply_op(a, op, b)
            prev = c
        chain_ok = ok
        correct.append(ok)
    complete = len(steps) == len(p.ops)
    if correct and all(correct) and (not answer_correct or not complete):
        correct[-1] = False
    first = next((i for i, ok in enumerate(correct) if not ok), -1)
    if not steps:
        first = 0
    return StepCheck(correct, first, answer, answer_correct, complete)


def inject_error(p: ArithProblem, kind: str, rng: random.Random) -> tuple[str, int]:
    """An erroneous solution of `p` and the index of its earliest wrong step."""
    if kind not in ERROR_KINDS:
        raise ValueError(f"unknown error kind {kind!r}; choose one of {ERROR_KINDS}")
    n = len(p.ops)
    ops = list(p.ops)
    if kind == "skipped_step":
        ks = [k for k in range(n - 1) if ops[k] != ops[k + 1]]
        if not ks:
            kind = "wrong_operand"
        else:
            k = rng.choice(ks)
            ops = ops[:k] + ops[k + 1:]
            eqs, v = [], p.start
            for op, b in ops:
                eqs.append((v, op, b, apply_op(v, op, b)))
                v = eqs[-1][3]
            return format_steps(eqs, v), k
    if kind == "wrong_final_answer":
        vals = p.values
        eqs = [(vals[i], op, b, vals[i + 1]) for i, (op, b) in enumerate(ops)]
        delta = rng.choice([d for d in (-3, -2, -1, 1, 2, 3) if p.answer + d >= 0])
        return format_steps(eqs, p.answer + delta), n - 1
    k = rng.randrange(n)
    eqs, v = [], p.start
    for i, (op, b) in enumerate(ops):
        if i == k and kind == "wrong_operand":
            b = rng.choice([x for x in range(1 if op != "*" else 2, 10) if x != b])
        c = apply_op(v, op, b)
        if i == k and kind == "arithmetic_slip":
            c = c + rng.choice([d for d in (-3, -2, -1, 1, 2, 3) if c + d >= 0])
        eqs.append((v, op, b, c))
        v = c
    return format_steps(eqs, v), k


def step_analyses(p: ArithProblem, steps: list[str], answer: str | None = None) -> list[str]:
    """A grader's one-line analysis of each step, from exact recomputation (verifier training text).
    With `answer`, a last step that is right but ends in a wrong final answer is called out."""
    out, prev, broken = [], p.start, False
    for i, step in enumerate(steps):
        eq = parse_equation(step)
        if broken:
            out.append("It builds on an earlier error.")
            continue
        if eq is None:
            out.append("There is no computation to check.")
            broken = True
            continue
        a, op, b, c = eq
        if i >= len(p.ops):
            out.append("The problem has no such operation.")
            broken = True
        elif a != prev:
            out.append(f"It starts from {a}, but the previous result is {prev}.")
            broken = True
        elif (op, b) != p.ops[i]:
            out.append(f"The operation should be {p.ops[i][0]} {p.ops[i][1]}, not {op} {b}.")
            broken = True
        elif c != apply_op(a, op, b):
            out.append(f"{a} {op} {b} = {apply_op(a, op, b)}, not {c}.")
            broken = True
        else:
            out.append(f"{a} {op} {b} = {c} is right.")
            prev = c
    if out and not broken and len(steps) < len(p.ops):
        out[-1] = f"It is right, but the problem has {len(p.ops)} operations and the solution stops after {len(steps)}."
    elif out and not broken and answer is not None and answer.strip() != str(prev):
        out[-1] = f"The result is {prev}, but the final answer says {answer.strip()}."
    return out
