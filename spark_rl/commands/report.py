"""`spark-rl report RUN_DIR [--out DIR]`: report.html + PNG plots of one run folder (train-rl,
synthesize, train-prm, eval-prm or eval), from the files the run wrote."""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("run_dir", help="a run folder (train-rl: metrics.jsonl; synthesize / eval-prm: report.json; "
                                   "train-prm: summary.json; eval: suite.json)")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/report)")


def run(args) -> int:
    import sys

    from spark_rl.pipelines.report import write_run_report

    try:
        path = write_run_report(args.run_dir, args.out)
    except FileNotFoundError as e:
        print(f"spark-rl report: {e}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0
