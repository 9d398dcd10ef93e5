"""Loaders for the real benchmark files into one schema, as HF datasets.

The files ship with the package, gzip-compressed (`spark_rl/assets/data/*.jsonl.gz`; sources,
licences and checksums in its DATA.md). `SPARK_RL_DATA_DIR` points the loaders at another folder
(plain `.jsonl` or `.jsonl.gz` files of the same names); a path given in a config is read as is.

Benchmarks -> `id, problem, answer, solution (or None), source`.
ProcessBench-format files -> `id, problem, steps, label, final_answer_correct, subset`.
A malformed row raises `DataFormatError` naming the file, the 1-based row and the field: nothing
is dropped silently. Blank lines are skipped and counted.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from spark_rl.config.checks import DataFormatError  # noqa: F401  (raised here, caught by the CLI)

if TYPE_CHECKING:      # `datasets` pulls in pandas and pyarrow (~2 s): imported where a loader builds one
    from datasets import Dataset

# What the policy sees of a benchmark problem in `train-rl` (and, by default, in `spark-rl eval`):
# the problem text and a newline, no chat template. `{problem}` is replaced by the stripped text.
POLICY_PROMPT = "{problem}\n"

log = logging.getLogger(__name__)

BENCHMARK_FILES = {
    "math500": "math500_test.jsonl", "aime24": "aime24_test.jsonl", "aime25": "aime25_test.jsonl",
    "amc23": "amc23_test.jsonl", "olympiadbench": "olympiadbench_test.jsonl",
    "minerva_math": "minerva_math_test.jsonl", "gsm8k_train": "gsm8k_train.jsonl",
    "gsm8k_test": "gsm8k_test.jsonl", "college_math": "college_math_test.jsonl",
}
# The six benchmarks of the paper's RL evaluation.
PAPER_EVAL_SET = ("math500", "aime24", "aime25", "amc23", "olympiadbench", "minerva_math")
PROCESSBENCH_SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")




PACKAGE_DATA_DIR = Path(__file__).resolve().parents[1] / "assets" / "data"


def default_data_dir() -> Path:
    """`SPARK_RL_DATA_DIR`, else the copy shipped in the package (`spark_rl/assets/data`)."""
    env = os.environ.get("SPARK_RL_DATA_DIR")
    return Path(env) if env else PACKAGE_DATA_DIR


def data_file(filename: str, data_dir: str | Path | None = None) -> Path:
    """`filename` (e.g. `math500_test.jsonl`) in `data_dir` (default: `default_data_dir()`), plain
    or gzip-compressed (`.jsonl.gz`); the plain name when neither exists (the error names it)."""
    d = Path(data_dir or default_data_dir())
    for candidate in (d / filename, d / f"{filename}.gz"):
        if candidate.is_file():
            return candidate
    return d / filename


def file_stem(path: str | Path) -> str:
    """`math500_test` of `.../math500_test.jsonl` and of `.../math500_test.jsonl.gz`."""
    return Path(Path(path).name.removesuffix(".gz")).stem


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


ANSWER = (str, int, float)   # a field typed ANSWER takes a string or a JSON number, read as its string form


def load_jsonl_rows(path: str | Path, required: dict[str, type | tuple[type, ...]]) -> list[dict]:
    """Every non-blank line as a dict, each `required` field present with the right type."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    rows, blank = [], 0
    with _open_bytes(path) as f:
        for n, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:     # decoded per line, so the error names the row
                raise DataFormatError(path, n, "<text>", f"not UTF-8 (byte {e.start} of the line)") from None
            if not line.strip():
                blank += 1
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(path, n, "<json>", f"not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise DataFormatError(path, n, "<json>", "a row must be a JSON object")
            for field, typ in required.items():
                if field not in row or row[field] is None:
                    raise DataFormatError(path, n, field, "missing")
                if typ is ANSWER:                       # `"answer": 2` is common in users' files
                    if isinstance(row[field], bool) or not isinstance(row[field], ANSWER):
                        raise DataFormatError(path, n, field, f"expected a string or a number, got "
                                                              f"{type(row[field]).__name__}")
                    row[field] = str(row[field])
                    continue
                if not isinstance(row[field], typ) or isinstance(row[field], bool) and typ is int:
                    raise DataFormatError(path, n, field, f"expected {getattr(typ, '__name__', typ)}, "
                                                          f"got {type(row[field]).__name__}")
            rows.append((n, row))
    if blank:
        log.info("%s: skipped %d blank line(s)", path, blank)
    return rows


def _nonempty(path, n, row, field) -> str:
    value = row[field]
    if not str(value).strip():
        raise DataFormatError(path, n, field, "empty")
    return str(value)


def load_benchmark(name: str, path: str | Path | None = None, data_dir: str | Path | None = None) -> Dataset:
    if path is None:
        if name not in BENCHMARK_FILES:
            raise ValueError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARK_FILES)} (or give a path)")
        path = data_file(BENCHMARK_FILES[name], data_dir)
    rows = load_jsonl_rows(path, {"problem": str, "answer": ANSWER})
    out = {"id": [], "problem": [], "answer": [], "solution": [], "source": []}
    for n, row in rows:
        rid = row.get("id", row.get("idx", row.get("unique_id", n - 1)))
        out["id"].append(f"{name}-{rid}")
        out["problem"].append(_nonempty(path, n, row, "problem"))
        out["answer"].append(_nonempty(path, n, row, "answer"))
        sol = row.get("solution")
        if sol is not None and not isinstance(sol, str):
            raise DataFormatError(path, n, "solution", f"expected str, got {type(sol).__name__}")
        out["solution"].append(sol)
        out["source"].append(name)
    from datasets import Dataset

    return Dataset.from_dict(out)


def load_processbench(subset_or_path: str | Path, data_dir: str | Path | None = None) -> Dataset:
    """A ProcessBench subset by name (`gsm8k`, `math`, `olympiadbench`, `omnimath`) or any JSONL file
    in ProcessBench's schema (the synthetic arithmetic one included)."""
    p = Path(subset_or_path)
    if str(subset_or_path) in PROCESSBENCH_SUBSETS:
        subset = str(subset_or_path)
        p = data_file(f"processbench_{subset}.jsonl", data_dir)
    else:
        subset = file_stem(p).removeprefix("processbench_")
    rows = load_jsonl_rows(p, {"problem": str, "steps": list, "label": int})
    out = {"id": [], "problem": [], "steps": [], "label": [], "final_answer_correct": [], "subset": []}
    for n, row in rows:
        steps = row["steps"]
        if not steps or not all(isinstance(s, str) for s in steps):
            raise DataFormatError(p, n, "steps", "must be a non-empty list of strings")
        if not -1 <= row["label"] < len(steps):
            raise DataFormatError(p, n, "label", f"{row['label']} is outside -1..{len(steps) - 1}")
        out["id"].append(str(row.get("id", f"{subset}-{n - 1}")))
        out["problem"].append(row["problem"])
        out["steps"].append(steps)
        out["label"].append(row["label"])
        out["final_answer_correct"].append(bool(row.get("final_answer_correct", row["label"] == -1)))
        out["subset"].append(str(row.get("subset", subset)))
    from datasets import Dataset

    return Dataset.from_dict(out)


def load_prm800k_stepwise(path: str | Path | None = None, data_dir: str | Path | None = None) -> Dataset:
    """PRM800K phase-1 step-wise critic rows: `problem`, the previous steps (`responses`), the rated
    next step (`next_response`) and its human `rating` (-1, 0, 1; None where unrated)."""
    path = Path(path or data_file("prm800k_phase1_test_stepwise_critic.jsonl", data_dir))
    rows = load_jsonl_rows(path, {"problem": str, "next_response": str})
    out = {"problem": [], "previous_steps": [], "next_step": [], "rating": []}
    for n, row in rows:
        prev = row.get("responses", [])
        if isinstance(prev, str):
            try:
                prev = json.loads(prev)
            except json.JSONDecodeError:
                raise DataFormatError(path, n, "responses", "not a list") from None
        if not isinstance(prev, list):
            raise DataFormatError(path, n, "responses", "not a list")
        try:   # unrated rows exist (rating null): kept, with rating None
            rating = None if row.get("rating") in (None, "None") else int(row["rating"])
        except (TypeError, ValueError):
            raise DataFormatError(path, n, "rating", f"not an integer: {row.get('rating')!r}") from None
        out["problem"].append(row["problem"])
        out["previous_steps"].append([str(s) for s in prev])
        out["next_step"].append(row["next_response"])
        out["rating"].append(rating)
    from datasets import Dataset

    return Dataset.from_dict(out)
