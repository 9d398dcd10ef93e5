"""Packing weights for a sync: layouts, flat buckets and the shared-memory file (pure torch)."""

import pytest
import torch

from spark_rl.engines.weight_transfer import FlatBucket, SharedWeightFile, layout_of, specs_of, write_tensors


def _named():
    g = torch.Generator().manual_seed(0)
    return [("a.weight", torch.randn(3, 5, generator=g)), ("b.bias", torch.randn(7, generator=g)),
            ("c.half", torch.randn(4, 2, generator=g).to(torch.bfloat16)), ("d.empty", torch.zeros(0, 3))]


def test_layout_is_aligned_and_disjoint():
    slots, total = layout_of(specs_of(_named()), align=64)
    assert [s.offset % 64 for s in slots] == [0, 0, 0, 0]
    assert [s.nbytes for s in slots] == [60, 28, 16, 0]
    ends = [s.offset + s.nbytes for s in slots]
    assert all(ends[i] <= slots[i + 1].offset for i in range(len(slots) - 1)) and total == ends[-1]


def test_flat_bucket_round_trip_keeps_dtype_shape_and_values():
    named = _named()
    bucket = FlatBucket.pack(named)
    out = bucket.tensors()
    assert [n for n, _ in out] == [n for n, _ in named]
    for (_, a), (_, b) in zip(named, out):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def test_flat_bucket_copies_so_later_param_updates_do_not_leak():
    named = _named()
    bucket = FlatBucket.pack(named)
    named[0][1].add_(1.0)
    assert not torch.equal(bucket.tensors()[0][1], named[0][1])


@pytest.mark.skipif(not SharedWeightFile.available(), reason="no writable /dev/shm")
def test_shared_file_writer_and_reader_see_the_same_bytes():
    named = _named()
    slots, total = layout_of(specs_of(named))
    w = SharedWeightFile(SharedWeightFile.new_path("test"), total, create=True)
    try:
        write_tensors(w.buffer, slots, [t for _, t in named])
        r = SharedWeightFile(w.path, total, create=False)
        for (_, a), (_, b) in zip(named, r.views(slots)):
            assert torch.equal(a, b)
        named[1][1].fill_(3.0)  # a second sync rewrites in place; the reader's views follow
        write_tensors(w.buffer, slots[1:2], [named[1][1]])
        assert torch.equal(r.views(slots)[1][1], torch.full((7,), 3.0))
        r.close()
    finally:
        w.close(unlink=True)
    assert not w.path.exists()
