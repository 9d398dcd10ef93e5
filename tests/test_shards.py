"""ShardStore: atomic, resumable, fingerprint-guarded shards (pure Python)."""

import json

import pytest

from spark_rl.pipelines.shards import ShardStore, shard_ranges


def test_shard_ranges_cover_items_once_and_balance():
    assert shard_ranges(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert shard_ranges(2, 5) == [(0, 1), (1, 2)]          # never more shards than items
    assert shard_ranges(0, 4) == [(0, 0)]                  # one empty shard, not none
    for n, k in [(48, 6), (7, 7), (13, 4)]:
        r = shard_ranges(n, k)
        assert [i for a, b in r for i in range(a, b)] == list(range(n))
        assert max(b - a for a, b in r) - min(b - a for a, b in r) <= 1


def test_write_read_pending_and_rows(tmp_path):
    s = ShardStore(tmp_path, "raw", "fp1", 3)
    assert s.pending() == [0, 1, 2]
    s.write(1, [{"a": 1}, {"a": 2}])
    assert s.pending() == [0, 2] and s.done(1)
    assert s.read(1) == [{"a": 1, "_shard": 1, "_index": 0}, {"a": 2, "_shard": 1, "_index": 1}]
    with pytest.raises(RuntimeError, match=r"2 shard\(s\) not finished: \[0, 2\]"):
        s.rows()
    with pytest.raises(FileExistsError, match="shard 1 is already done"):
        s.write(1, [{"a": 3}])
    s.write(0, [{"a": 0}])
    s.write(2, [])
    assert [r["a"] for r in s.rows()] == [0, 1, 2]
    assert s.to_dataset().to_list() == [{"a": 0}, {"a": 1}, {"a": 2}]
    with pytest.raises(IndexError, match=r"shard 3 outside 0..2"):
        s.path(3)


def test_reopen_resumes_and_ignores_leftover_tmp(tmp_path):
    s = ShardStore(tmp_path, "raw", "fp1", 2)
    s.write(0, [{"x": "done"}])
    # a crash mid-write leaves only a .tmp: the shard is not done and is redone on the next run
    (s.dir / "shard-00001.jsonl.tmp").write_text('{"x": "half')
    again = ShardStore(tmp_path, "raw", "fp1", 2)
    assert again.pending() == [1]
    again.write(1, [{"x": "redone"}])
    assert [r["x"] for r in again.rows()] == ["done", "redone"]
    assert not list(again.dir.glob("*.tmp"))


def test_other_fingerprint_or_shard_count_is_refused(tmp_path):
    ShardStore(tmp_path, "raw", "fp1", 2)
    with pytest.raises(ValueError, match="fingerprint 'fp1'.*this run has 'fp2'"):
        ShardStore(tmp_path, "raw", "fp2", 2)
    with pytest.raises(ValueError, match=r"\(2 shards\); this run has 'fp1' \(3 shards\)"):
        ShardStore(tmp_path, "raw", "fp1", 3)
    assert json.loads((tmp_path / "raw" / "manifest.json").read_text()) == {"fingerprint": "fp1", "n_shards": 2}
    with pytest.raises(ValueError, match="n_shards must be >= 1"):
        ShardStore(tmp_path, "other", "fp", 0)
