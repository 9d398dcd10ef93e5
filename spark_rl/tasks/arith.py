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
_STEP_PREFIX = re.compile(r"^\s*Step\s+\d+\s*:\s*", re.IGNORECASE)
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


def op_phrase(op: str, b: int) -> str:
    """An operation in the plain problems' own words (`Add 7.`)."""
    return _PLAIN_PHRASE[op].format(b=b)


def operations_line(p: ArithProblem) -> str:
    """The verifier's first line: the problem's operations, numbered, in the problem's own words (so
    the line is copied from the question, never from the student's equations). Every step check then
    looks its operation up by number, and the last step can see whether one is left over."""
    return "Operations: " + " ".join(f"({k}) {op_phrase(op, b)}" for k, (op, b) in enumerate(p.ops, start=1))


def step_title(step: str, k: int, n_steps: int) -> str:
    """The heading of the verifier's check of step k (1-based): the student's step copied as it
    stands (`7 - 6 = 4`; text after the equation dropped). A tiny model copies a `Step k:` line
    reliably, which it cannot do for "the k-th step's result" somewhere in the prompt; the number
    the check compares against then sits right above it."""
    body = _STEP_PREFIX.sub("", " ".join(step.split())).replace("<step>", "").replace("</step>", "")
    m = _EQ.search(body)
    what = m.group(0) if m else (body if len(body) <= 40 else body[:37] + "...")
    return f"{what} (last step)" if k == n_steps else what


def _redo(k: int, op: str, b: int, prev: int, value: int) -> str:
    """The verifier's own computation of operation k, in a form the student never writes (`makes`,
    not `=`): copying the heading's result into it is not a pattern the text offers."""
    return f"({k}) {op_phrase(op, b).rstrip('.')}: {prev} {op} {b} makes {value}"


def _has(eq: tuple[int, str, int, int] | None) -> str:
    return f"the step has {eq[3]}" if eq is not None else "the step has no result"


def step_analyses(p: ArithProblem, steps: list[str], answer: str | None = None) -> list[str]:
    """A grader's analysis of each step that recomputes before it judges (verifier training text).

    Under a heading that copies the student's step (`step_title`), the check of step k looks the
    problem's k-th operation up in its operations line and computes it from its own previous
    result (`(2) Subtract 6: 7 - 6 makes 1`), reads the student's result from the heading
    (`; the step has 4.`) and compares the two visible numbers (`It matches.` / `It does not
    match.`): the verdict is a comparison, not one unaided token. The last step also checks the
    final answer and whether the problem has an operation left (`Op 4 is not done.`). After the
    first error the grader goes on with its own chain, still reading the student's numbers (which
    now differ from its own, so a grader that reads its own number instead is caught there too).
    """
    out, prev, broken = [], p.start, False
    for i, step in enumerate(steps):
        eq = parse_equation(step)
        if i >= len(p.ops):
            out.append(f"The problem has no op {i + 1}.")
            broken = True
            continue
        op, b = p.ops[i]
        want = apply_op(prev, op, b)
        redo = _redo(i + 1, op, b, prev, want)
        if broken:
            out.append(f"{redo}; {_has(eq)}. It builds on an earlier error.")
        elif eq is None or eq[3] != want:
            out.append(f"{redo}; {_has(eq)}. It does not match.")
            broken = True
        elif eq[:3] != (prev, op, b):       # the right number by a wrong route (2 * 2 for 2 + 2)
            out.append(f"{redo}; the step has {eq[0]} {eq[1]} {eq[2]} = {eq[3]}. It does not match.")
            broken = True
        else:
            out.append(f"{redo}; {_has(eq)}. It matches.")
        prev = want
    if out and not broken:
        if len(steps) < len(p.ops):
            out[-1] += f" Op {len(steps) + 1} is not done."
        elif answer is None:
            out[-1] += " There is no final answer."
        elif answer.strip() != str(prev):
            out[-1] += f" The answer should be {prev}, not {answer.strip()}."
        else:
            out[-1] += f" The answer {prev} is right."
    return out


def mistaken_analyses(p: ArithProblem, steps: list[str], labels: list[bool], rng: random.Random,
                      answer: str | None = None) -> list[str]:
    """Analyses of a grading with one mistake (`labels` differ from the exact ones), written the way
    a grader who errs would write them, with the verdict still following the visible comparison:
    the first step wrongly called incorrect carries a slip in the grader's own computation (the
    bootstrap draws only such false alarms, `sft_data._mistaken`). Were a wrong step called correct,
    its result would be shown as read equal to the grader's own; never is the student's result
    copied into the grader's computation (that would teach the copying shortcut)."""
    exact = step_analyses(p, steps, answer)
    first_bad = next((i for i, ok in enumerate(labels) if not ok), len(labels))
    out, prev = [], p.start
    for i, step in enumerate(steps):
        if i >= len(p.ops):
            out.append(f"The problem has no op {i + 1}.")
            continue
        op, b = p.ops[i]
        want = apply_op(prev, op, b)
        if i < first_bad:                       # called correct: the result read as its own
            out.append(f"{_redo(i + 1, op, b, prev, want)}; the step has {want}. It matches.")
        elif i == first_bad and not exact[i].endswith("It matches.") and "does not match" in exact[i]:
            out.append(exact[i])                # a true error, found (it was missed at an earlier step)
        elif i == first_bad:                    # a false alarm: a slip in the grader's own computation
            slip = want + rng.choice([d for d in (-2, -1, 1, 2) if want + d >= 0] or [1, 2])
            eq = parse_equation(step)
            out.append(f"{_redo(i + 1, op, b, prev, slip)}; the step has {eq[3] if eq else want}. It does not match.")
            want = slip
        else:
            eq = parse_equation(step)
            out.append(f"{_redo(i + 1, op, b, prev, want)}; {_has(eq)}. It builds on an earlier error.")
        prev = want
    if out and first_bad == len(labels):
        out[-1] += f" The answer {answer.strip() if answer else prev} is right."
    return out
