import json

import pytest

from spark_rl.tasks.loaders import (
    BENCHMARK_FILES,
    PROCESSBENCH_SUBSETS,
    DataFormatError,
    default_data_dir,
    load_benchmark,
    load_prm800k_stepwise,
    load_processbench,
)

DATA = default_data_dir()
needs_data = pytest.mark.skipif(not (DATA / "math500_test.jsonl").exists(), reason="shared/data not present")


def _lines(path):
    return sum(1 for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip())


@needs_data
@pytest.mark.parametrize("name", sorted(BENCHMARK_FILES))
def test_benchmarks_load_every_row(name):
    ds = load_benchmark(name)
    assert len(ds) == _lines(DATA / BENCHMARK_FILES[name])
    assert set(ds.column_names) == {"id", "problem", "answer", "solution", "source"}
    assert all(a.strip() for a in ds["answer"]) and len(set(ds["id"])) == len(ds)


@needs_data
@pytest.mark.parametrize("subset", PROCESSBENCH_SUBSETS)
def test_processbench_subsets(subset):
    ds = load_processbench(subset)
    assert len(ds) == _lines(DATA / f"processbench_{subset}.jsonl")
    assert all(-1 <= lab < len(st) for lab, st in zip(ds["label"], ds["steps"]))


@needs_data
def test_prm800k():
    ds = load_prm800k_stepwise()
    assert len(ds) == _lines(DATA / "prm800k_phase1_test_stepwise_critic.jsonl")
    assert set(ds["rating"]) <= {-1, 0, 1, None}


@pytest.mark.parametrize("row,field", [
    ({"answer": "3"}, "problem"),
    ({"problem": "p", "answer": 3}, "answer"),
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
