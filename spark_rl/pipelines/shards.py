"""A crash-safe, resumable store of work shards (pure Python + HF datasets).

root/<name>/manifest.json records what the shards were made from (a config fingerprint) and how
many there are; each finished shard is one JSONL file written to a temporary name and renamed
into place, so a file that exists is complete. A re-run skips finished shards; a leftover `.tmp`
from a crash is ignored and overwritten. A changed fingerprint is refused: outputs of two
different configs must never be mixed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def shard_ranges(n_items: int, n_shards: int) -> list[tuple[int, int]]:
    """Contiguous balanced [start, end) ranges; at most n_items shards, at least one."""
    n = max(1, min(n_shards, n_items)) if n_items > 0 else 1
    base, extra = divmod(max(n_items, 0), n)
    out, start = [], 0
    for i in range(n):
        end = start + base + (1 if i < extra else 0)
        out.append((start, end))
        start = end
    return out


class ShardStore:
    def __init__(self, root: str | Path, name: str, fingerprint: str, n_shards: int):
        if n_shards < 1:
            raise ValueError(f"ShardStore: n_shards must be >= 1, got {n_shards}")
        self.dir = Path(root) / name
        self.fingerprint, self.n_shards = fingerprint, n_shards
        self.dir.mkdir(parents=True, exist_ok=True)
        manifest = self.dir / "manifest.json"
        want = {"fingerprint": fingerprint, "n_shards": n_shards}
        if manifest.exists():
            have = json.loads(manifest.read_text())
            if have != want:
                raise ValueError(f"{self.dir} holds shards of fingerprint {have.get('fingerprint')!r} "
                                 f"({have.get('n_shards')} shards); this run has {fingerprint!r} ({n_shards} shards). "
                                 "Use another output folder, or delete it to start over.")
        else:
            _atomic_write(manifest, json.dumps(want))

    def path(self, shard: int) -> Path:
        if not 0 <= shard < self.n_shards:
            raise IndexError(f"shard {shard} outside 0..{self.n_shards - 1}")
        return self.dir / f"shard-{shard:05d}.jsonl"

    def done(self, shard: int) -> bool:
        return self.path(shard).exists()

    def pending(self) -> list[int]:
        return [i for i in range(self.n_shards) if not self.done(i)]

    def write(self, shard: int, rows: list[dict], overwrite: bool = False) -> Path:
        path = self.path(shard)
        if path.exists() and not overwrite:
            raise FileExistsError(f"shard {shard} is already done ({path})")
        text = "".join(json.dumps({**r, "_shard": shard, "_index": i}) + "\n" for i, r in enumerate(rows))
        _atomic_write(path, text)
        return path

    def read(self, shard: int) -> list[dict]:
        return [json.loads(line) for line in self.path(shard).read_text().splitlines() if line.strip()]

    def rows(self) -> list[dict]:
        missing = self.pending()
        if missing:
            raise RuntimeError(f"{self.dir}: {len(missing)} shard(s) not finished: {missing[:10]}")
        return [r for i in range(self.n_shards) for r in self.read(i)]

    def to_dataset(self):
        from datasets import Dataset

        return Dataset.from_list([{k: v for k, v in r.items() if k not in ("_shard", "_index")} for r in self.rows()])


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
