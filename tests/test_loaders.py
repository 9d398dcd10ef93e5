import gzip
import hashlib
import json
import re

import pytest

from spark_rl.tasks.loaders import (
    BENCHMARK_FILES,
    PACKAGE_DATA_DIR,
    PROCESSBENCH_SUBSETS,
    DataFormatError,
    data_file,
    load_benchmark,
    load_prm800k_stepwise,
    load_processbench,
)

# The benchmark files ship with the package: these tests read that copy (SPARK_RL_DATA_DIR unset,
# below), whatever lies beside the repository. Row counts as their sources have them.
ROWS = {"math500": 500, "aime24": 30, "aime25": 30, "amc23": 40, "olympiadbench": 675, "minerva_math": 272,
        "gsm8k_train": 7473, "gsm8k_test": 1319, "college_math": 2818}
PB_ROWS = {"gsm8k": 400, "math": 1000, "olympiadbench": 1000, "omnimath": 1000}


@pytest.fixture(autouse=True)
def _shipped_copy(monkeypatch):
    monkeypatch.delenv("SPARK_RL_DATA_DIR", raising=False)


def _lines(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return sum(1 for ln in f if ln.strip())


def test_every_shipped_file_matches_its_sha256_in_data_md():
    """DATA.md lists each shipped file with the sha256 of its JSONL (uncompressed) and of the .gz
    file; the package holds exactly those files, unchanged."""
    listed = {name: (raw, gz) for name, raw, gz in re.findall(
        r"^([\w.]+\.jsonl\.gz)\s+([0-9a-f]{64})\s+([0-9a-f]{64})$", (PACKAGE_DATA_DIR / "DATA.md").read_text(), re.M)}
    shipped = sorted(p.name for p in PACKAGE_DATA_DIR.glob("*.jsonl.gz"))
    assert sorted(listed) == shipped and len(shipped) == 14
    for name in shipped:
        blob = (PACKAGE_DATA_DIR / name).read_bytes()
        got = (hashlib.sha256(gzip.decompress(blob)).hexdigest(), hashlib.sha256(blob).hexdigest())
        assert got == listed[name], name


@pytest.mark.parametrize("name", sorted(BENCHMARK_FILES))
def test_benchmarks_load_every_row(name):
    ds = load_benchmark(name)
    path = data_file(BENCHMARK_FILES[name])
    assert path.parent == PACKAGE_DATA_DIR and path.name.endswith(".jsonl.gz")
    assert len(ds) == _lines(path) == ROWS[name]
    assert set(ds.column_names) == {"id", "problem", "answer", "solution", "source"}
    assert all(a.strip() for a in ds["answer"]) and len(set(ds["id"])) == len(ds)


@pytest.mark.parametrize("subset", PROCESSBENCH_SUBSETS)
def test_processbench_subsets(subset):
    ds = load_processbench(subset)
    assert len(ds) == _lines(data_file(f"processbench_{subset}.jsonl")) == PB_ROWS[subset]
    assert set(ds["subset"]) == {subset}
    assert all(-1 <= lab < len(st) for lab, st in zip(ds["label"], ds["steps"]))


def test_prm800k():
    ds = load_prm800k_stepwise()
    assert len(ds) == _lines(data_file("prm800k_phase1_test_stepwise_critic.jsonl")) == 5449
    assert set(ds["rating"]) <= {-1, 0, 1, None}


def test_data_dir_env_overrides_the_shipped_copy(tmp_path, monkeypatch):
    """SPARK_RL_DATA_DIR wins, plain or gzip files; a name missing there is an error naming the path
    (no silent fall-back to the shipped copy)."""
    (tmp_path / "math500_test.jsonl").write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    with gzip.open(tmp_path / "processbench_gsm8k.jsonl.gz", "wt") as f:
        f.write(json.dumps({"problem": "p", "steps": ["a", "b"], "label": 1}) + "\n")
    monkeypatch.setenv("SPARK_RL_DATA_DIR", str(tmp_path))
    assert load_benchmark("math500")["answer"] == ["2"]
    assert load_processbench("gsm8k")["label"] == [1] and load_processbench("gsm8k")["subset"] == ["gsm8k"]
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "aime24_test.jsonl")):
        load_benchmark("aime24")
    # a path (as a config gives one) is read as is, gzip too
    assert load_processbench(tmp_path / "processbench_gsm8k.jsonl.gz")["subset"] == ["gsm8k"]


@pytest.mark.parametrize("row,field", [
    ({"answer": "3"}, "problem"),
    ({"problem": "p", "answer": True}, "answer"),
    ({"problem": "  ", "answer": "3"}, "problem"),
    ({"problem": "p", "answer": "3", "solution": 5}, "solution"),
])
def test_malformed_benchmark_rows_name_file_row_field(tmp_path, row, field):
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps({"problem": "ok", "answer": "1"}) + "\n\n" + json.dumps(row) + "\n")
    with pytest.raises(DataFormatError) as e:
        load_benchmark("custom", path=f)
    assert (e.value.file, e.value.row, e.value.field) == (str(f), 3, field)
    assert str(f) in str(e.value) and "row 3" in str(e.value) and field in str(e.value)


def test_bad_json_and_bad_labels(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"problem": "p", "answer": "1"}\n{not json\n')
    with pytest.raises(DataFormatError, match="row 2"):
        load_benchmark("custom", path=f)
    g = tmp_path / "pb.jsonl"
    g.write_text(json.dumps({"problem": "p", "steps": ["a", "b"], "label": 5}) + "\n")
    with pytest.raises(DataFormatError, match="field 'label'"):
        load_processbench(g)
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("nope")


def test_numeric_answers_are_read_as_strings_and_bad_bytes_name_the_row(tmp_path):
    f = tmp_path / "nums.jsonl"
    f.write_text(json.dumps({"problem": "1+1?", "answer": 2}) + "\n" + json.dumps({"problem": "half?", "answer": 0.5}) + "\n")
    assert load_benchmark("custom", path=f)["answer"] == ["2", "0.5"]
    g = tmp_path / "latin1.jsonl"
    g.write_bytes(json.dumps({"problem": "ok", "answer": "1"}).encode() + b'\n{"problem": "caf\xe9", "answer": "1"}\n')
    with pytest.raises(DataFormatError) as e:
        load_benchmark("custom", path=g)
    assert (e.value.row, e.value.field) == (2, "<text>") and "not UTF-8" in str(e.value)
    h = tmp_path / "cut.jsonl"
    h.write_text(json.dumps({"problem": "ok", "answer": "1"}) + '\n{"problem": "p", "ans')    # truncated last line
    with pytest.raises(DataFormatError, match="row 2: field '<json>': not valid JSON"):
        load_benchmark("custom", path=h)


def test_cli_names_a_bad_data_file_in_one_line(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"problem": "ok", "answer": "1"}) + "\n" + json.dumps({"problem": "p"}) + "\n")
    from spark_rl.bootstrap import SHIPPED_DIR

    policy = next(SHIPPED_DIR.glob("policy-*"))
    r = subprocess.run([sys.executable, "-m", "spark_rl.cli", "eval", "--model", str(policy), "--data", str(bad),
                        "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"spark-rl: {bad}: row 2: field 'answer': missing" in r.stderr
    assert "Traceback" not in r.stderr
