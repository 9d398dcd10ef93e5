"""Schema of `spark-rl eval` (a policy on a suite of benchmarks). Dataclasses only (no torch, no
Ray): `spark_rl.pipelines.suite` runs what it describes."""

from __future__ import annotations

from dataclasses import dataclass, field

from spark_rl.config.checks import Schema, require
from spark_rl.config.cluster import ClusterConfig
from spark_rl.config.engines import GeneratorConfig
from spark_rl.config.resources import ResourceSpec
from spark_rl.tasks.loaders import BENCHMARK_FILES, PAPER_EVAL_SET, POLICY_PROMPT

SUITES = {"paper": PAPER_EVAL_SET}


@dataclass
class EvalConfig(Schema):
    model: str = "bootstrap"            # an HF folder, or "bootstrap": the policy `bootstrap_config` builds
    bootstrap_config: str = "configs/demo/bootstrap.yaml"
    suite: str = "arith"                # "paper", or names / JSONL paths separated by commas
    n: int = 0                          # items per benchmark: the first n rows (0: all; arith: 200)
    arith_seed: int = 10_000            # arith problems (10000 = the bootstrap's held-out set)
    k: int = 1                          # samples per problem for pass@k / maj@k (1: greedy pass@1 only)
    temperature: float = 1.0            # sampling (k > 1); pass@1 is always greedy
    top_p: float = 1.0
    max_new_tokens: int = 160
    seed: int = 0
    # What the policy sees: `{problem}` is replaced by the problem text. The default is the prompt
    # `train-rl` trains with (POLICY_PROMPT); chat_template: wrap it as a user turn of the model's
    # chat template (when its tokenizer has one).
    prompt_template: str = POLICY_PROMPT
    chat_template: bool = False
    output_dir: str = "runs/eval"
    workers: int = 1
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    engine: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(max_model_len=1024))
    cluster: ClusterConfig = field(default_factory=lambda: ClusterConfig(num_cpus=4, log_to_driver=False))

    def validate(self) -> None:
        require(self.n >= 0, "n", f"must be >= 0 (0: every row), got {self.n}")
        require(self.k >= 1, "k", f"must be >= 1, got {self.k}")
        require(self.workers >= 1, "workers", f"must be >= 1, got {self.workers}")
        require(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")
        require("{problem}" in self.prompt_template, "prompt_template", "must contain {problem}")
        for name in suite_names(self.suite):
            require(name == "arith" or name in BENCHMARK_FILES or name.endswith((".jsonl", ".jsonl.gz")), "suite",
                    f"unknown benchmark {name!r}: one of {sorted(BENCHMARK_FILES)}, arith, 'paper' or a JSONL path")


def suite_names(suite: str) -> list[str]:
    names = []
    for part in (s.strip() for s in suite.split(",")):
        if part:
            names += list(SUITES.get(part, [part]))
    if not names:
        raise ValueError("empty suite")
    return names
