"""`spark-rl` command line. Each subcommand lives in its own module under `spark_rl/commands/`
and is imported only when used, so `spark-rl --help` stays fast."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from spark_rl.config import ConfigError
from spark_rl.config.checks import DataFormatError

# name -> (module, one-line help). Only commands that work are listed here.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("spark_rl.commands.demo", "the main job: bootstrap -> Stage 1 -> Stage 2 -> Stage 3 runs -> report"),
    "data": ("spark_rl.commands.data", "build data sets (synthetic ProcessBench from the arithmetic domain)"),
    "bootstrap": ("spark_rl.commands.bootstrap", "train the embedded tiny policy and verifier on CPU (cached)"),
    "synthesize": ("spark_rl.commands.synthesize", "SPARK Stage 1: synthetic process-supervision data"),
    "train-prm": ("spark_rl.commands.train_prm", "SPARK Stage 2: SFT of generative reward models on Stage 1 data"),
    "eval-prm": ("spark_rl.commands.eval_prm", "ProcessBench-style evaluation of reward models"),
    "train-rl": ("spark_rl.commands.train_rl", "GRPO training (RLVR or PRM rewards) on Ray actor groups"),
    "eval": ("spark_rl.commands.eval", "greedy pass@1, pass@k and maj@k of a model on a dataset or a suite "
                                       "(--suite paper: the paper's six benchmarks)"),
    "report": ("spark_rl.commands.report", "report.html + PNG plots of one run folder (train-rl, synthesize, "
                                           "train-prm, eval-prm, eval)"),
    "ctl": ("spark_rl.commands.ctl", "control a running train-rl job: scale actor groups, swap the reward, status"),
    "chaos": ("spark_rl.commands.chaos", "fault injection: a run with random worker kills vs a clean run, compared"),
    "bench": ("spark_rl.commands.bench", "benchmarks: rollout throughput (actor vs bare engine), weight sync"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spark-rl", description="SPARK: reference-free process-reward RL on Ray.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not args.command:
        parser.print_help()
        return 0
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except (ConfigError, DataFormatError, FileNotFoundError) as e:
        # bad input named in one line, before any work starts: no traceback for the user to read
        if args.verbose:
            raise
        print(f"spark-rl: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
