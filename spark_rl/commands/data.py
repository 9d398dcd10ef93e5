"""`spark-rl data ...`: build data sets."""

from __future__ import annotations

import json
from pathlib import Path


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="data_command", metavar="KIND", required=True)
    apb = sub.add_parser("arith-processbench",
                         help="synthetic ProcessBench (exact labels) from the embedded arithmetic domain")
    apb.add_argument("--n", type=int, default=1000, help="number of rows")
    apb.add_argument("--seed", type=int, default=0)
    apb.add_argument("--share-correct", type=float, default=0.4, help="share of rows with label -1")
    apb.add_argument("--word-share", type=float, default=0.0, help="share of word-problem phrasings")
    apb.add_argument("--out", required=True, help="output folder (writes arith.jsonl)")


def run(args) -> int:
    if args.data_command == "arith-processbench":
        return _arith_processbench(args)
    raise AssertionError(args.data_command)


def _arith_processbench(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from spark_rl.tasks.processbench import label_distribution, make_arith_processbench

    if args.n <= 0:
        raise SystemExit("spark-rl data arith-processbench: --n must be > 0")
    if not 0.0 <= args.share_correct <= 1.0:
        raise SystemExit("spark-rl data arith-processbench: --share-correct must be in [0, 1]")
    rows = make_arith_processbench(args.n, seed=args.seed, share_correct=args.share_correct,
                                   word_share=args.word_share)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "arith.jsonl"
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    tmp.replace(path)
    dist = label_distribution(rows)
    table = Table(title=f"{len(rows)} rows -> {path}")
    table.add_column("label")
    table.add_column("count", justify="right")
    for label, count in sorted(dist["counts"].items(), key=lambda kv: int(kv[0])):
        table.add_row(str(label), str(count))
    Console().print(table)
    print(f"share of label -1: {dist['share_correct']:.3f}")
    return 0
