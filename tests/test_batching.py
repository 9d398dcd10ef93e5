"""How the learner cuts a batch into micro-batches (pure: index lists only)."""

import random

import pytest

from spark_rl.engines.logprobs import length_grouped_chunks


def _padded_tokens(chunks, lengths):
    return sum(len(c) * max(lengths[i] for i in c) for c in chunks)


def test_chunks_group_neighbours_in_length_and_keep_every_row_once():
    lengths = [90, 12, 88, 15, 50, 11, 92, 49, 14]
    chunks = length_grouped_chunks(lengths, 3)
    assert chunks == [[1, 5, 8], [3, 4, 7], [0, 2, 6]]          # rows in input order inside each
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))
    in_order = [list(range(k, min(k + 3, len(lengths)))) for k in range(0, len(lengths), 3)]
    assert _padded_tokens(chunks, lengths) == 3 * 14 + 3 * 50 + 3 * 92 < _padded_tokens(in_order, lengths)


def test_chunk_count_and_sizes_match_input_order_chunking():
    rng = random.Random(0)
    for n in (0, 1, 7, 64, 65, 128):
        lengths = [rng.randint(20, 150) for _ in range(n)]
        for size in (1, 8, 32, 64):
            chunks = length_grouped_chunks(lengths, size)
            assert len(chunks) == -(-n // size)               # ZeRO ranks agree on counts, as before
            assert all(1 <= len(c) <= size for c in chunks)
            assert sorted(i for c in chunks for i in c) == list(range(n))
            widths = [max(lengths[i] for i in c) for c in chunks]
            assert widths == sorted(widths)                   # each chunk holds the next lengths up


def test_equal_lengths_keep_input_order():
    assert length_grouped_chunks([5] * 5, 2) == [[0, 1], [2, 3], [4]]


def test_bad_size_is_an_error():
    with pytest.raises(ValueError, match="size"):
        length_grouped_chunks([1, 2], 0)
