"""Packing named weight tensors for a learner -> rollout sync (no Ray here; the actors move the bytes).

Two carriers share one layout (name, dtype, shape, byte offset):

* `FlatBucket`: one contiguous byte buffer per bucket, a single object-store put per bucket and
  zero-copy tensor views on the receiving side (works across nodes).
* `SharedWeightFile`: a reusable file in /dev/shm that the learner writes in place and rollout
  workers on the same node map. Pages are touched once, so later syncs cost one memcpy of the
  weights instead of an object-store allocation per bucket.
"""

from __future__ import annotations

import math
import mmap
import os
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SHM_DIR = Path("/dev/shm")


@dataclass(frozen=True)
class TensorSlot:
    name: str
    dtype: str          # torch dtype name, e.g. "float32"
    shape: tuple[int, ...]
    offset: int         # bytes from the start of the buffer
    nbytes: int


def layout_of(specs: Iterable[tuple[str, torch.dtype, tuple[int, ...]]], align: int = 64) -> tuple[list[TensorSlot], int]:
    """Slots for tensors of these (name, dtype, shape) packed back to back (starts aligned), and the total size."""
    slots, offset = [], 0
    for name, dtype, shape in specs:
        offset = -(-offset // align) * align
        nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        slots.append(TensorSlot(name, str(dtype).removeprefix("torch."), tuple(shape), offset, nbytes))
        offset += nbytes
    return slots, offset


def specs_of(named: Iterable[tuple[str, torch.Tensor]]) -> list[tuple[str, torch.dtype, tuple[int, ...]]]:
    return [(n, t.dtype, tuple(t.shape)) for n, t in named]


def _byte_view(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def write_tensors(buffer: torch.Tensor, slots: list[TensorSlot], tensors: list[torch.Tensor]) -> None:
    """Copy each tensor into its slot of a uint8 buffer (one memcpy each, any device -> CPU)."""
    for s, t in zip(slots, tensors):
        buffer[s.offset:s.offset + s.nbytes].copy_(_byte_view(t).cpu() if t.device.type != "cpu" else _byte_view(t))


def read_tensors(buffer, slots: list[TensorSlot]) -> list[tuple[str, torch.Tensor]]:
    """Zero-copy named tensor views of a buffer (bytes-like, numpy array or uint8 tensor)."""
    if not isinstance(buffer, torch.Tensor):
        with warnings.catch_warnings():  # read-only object-store buffers: views are only read from
            warnings.simplefilter("ignore", UserWarning)
            buffer = torch.frombuffer(buffer, dtype=torch.uint8) if len(buffer) else torch.empty(0, dtype=torch.uint8)
    out = []
    for s in slots:
        raw = buffer[s.offset:s.offset + s.nbytes]
        out.append((s.name, raw.view(getattr(torch, s.dtype)).reshape(s.shape)))
    return out


@dataclass
class FlatBucket:
    """One bucket of a sync as a single byte array plus its layout."""

    slots: list[TensorSlot]
    data: np.ndarray

    @classmethod
    def pack(cls, named: list[tuple[str, torch.Tensor]]) -> FlatBucket:
        slots, total = layout_of(specs_of(named))
        buf = torch.empty(total, dtype=torch.uint8)
        write_tensors(buf, slots, [t for _, t in named])
        return cls(slots, buf.numpy())

    def tensors(self) -> list[tuple[str, torch.Tensor]]:
        return read_tensors(self.data, self.slots)


class SharedWeightFile:
    """A weights-sized file in /dev/shm, written by the learner and mapped by same-node readers."""

    def __init__(self, path: str | Path, nbytes: int, create: bool):
        self.path, self.nbytes = Path(path), nbytes
        if create:
            with open(self.path, "wb") as f:
                f.truncate(max(nbytes, 1))
        self._file = open(self.path, "r+b" if create else "rb")
        access = mmap.ACCESS_WRITE if create else mmap.ACCESS_READ
        self._map = mmap.mmap(self._file.fileno(), max(nbytes, 1), access=access)
        if create:
            self.buffer = torch.frombuffer(self._map, dtype=torch.uint8, count=nbytes)
            self.buffer.zero_()  # touch every page once, so syncs never page-fault
        else:
            self.buffer = None

    @staticmethod
    def available() -> bool:
        return SHM_DIR.is_dir() and os.access(SHM_DIR, os.W_OK)

    @staticmethod
    def new_path(tag: str = "weights") -> Path:
        return SHM_DIR / f"spark-rl-{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def views(self, slots: list[TensorSlot]) -> list[tuple[str, torch.Tensor]]:
        return read_tensors(self.buffer if self.buffer is not None else self._map, slots)

    def close(self, unlink: bool = False) -> None:
        self.buffer = None
        try:
            self._map.close()
        except BufferError:  # views still alive somewhere; the mapping goes with them
            pass
        self._file.close()
        if unlink:
            self.path.unlink(missing_ok=True)
