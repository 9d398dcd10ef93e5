"""Schemas of `spark-rl train-prm` and `spark-rl eval-prm` (SPARK Stage 2). Dataclasses only (no
torch, no Ray): `spark_rl.prm.train` and `spark_rl.prm.evaluate` run what they describe."""

from __future__ import annotations

from dataclasses import dataclass, field

from spark_rl.config.checks import Schema, require, require_choice
from spark_rl.config.cluster import ClusterConfig
from spark_rl.config.engines import GeneratorConfig
from spark_rl.config.resources import ResourceSpec
from spark_rl.config.rl import LearnerSection
from spark_rl.tasks.domain import DomainConfig
from spark_rl.verification.prm_formats import FORMATS


# ---- train-prm
@dataclass
class PRMDataSection(Schema):
    stage1_dir: str = "runs/demo/synthesize/datasets"    # one `save_to_disk` folder per variant
    variants: list[str] = field(default_factory=lambda: ["single", "outcome-consistency", "step-consistency",
                                                         "meta-critique-base", "meta-critique-outcome",
                                                         "reference-guided"])
    format: str = "prm-cot"
    # several formats: one student per (variant, format); the first format's students are named by
    # the variant alone, the others `<variant>.<format>` (e.g. step-consistency.prm). Empty: [format]
    formats: list[str] = field(default_factory=list)
    # a format -> the variants it is trained on, when not all of `variants` (e.g. {prm: [step-consistency]})
    format_variants: dict[str, list[str]] = field(default_factory=dict)
    heldout_share: float = 0.1          # held out by problem (no problem in both splits)

    def validate(self) -> None:
        require_choice(self.format, "format", set(FORMATS))
        for f in self.formats:
            require_choice(f, "formats", set(FORMATS))
        for f, vs in self.format_variants.items():
            require(f in (self.formats or [self.format]), "format_variants", f"{f!r} is not one of the formats")
            require(set(vs) <= set(self.variants), "format_variants",
                    f"{f}: {sorted(set(vs) - set(self.variants))} not in variants")
        require(0.0 <= self.heldout_share < 1.0, "heldout_share", "must be in [0, 1)")
        require(len(self.variants) >= 1, "variants", "name at least one Stage 1 variant")


@dataclass
class PRMTrainSection(Schema):
    epochs: float = 3.0                 # used when steps == 0
    steps: int = 0
    batch_size: int = 16
    eval_every: int = 25                # 0: only at the end
    bucket_batches: int = 8             # batches per length-sorting pool (1: no bucketing)
    # a format -> its learning rate, where not learner.engine.lr (a student that keeps its init's
    # output format needs a gentle update; one that learns a new format, a larger one)
    format_lr: dict[str, float] = field(default_factory=dict)

    def validate(self) -> None:
        require(self.steps >= 0 and self.epochs > 0, "steps", "need steps >= 0 and epochs > 0")
        for f, lr in self.format_lr.items():
            require_choice(f, "format_lr", set(FORMATS))
            require(lr > 0, f"format_lr.{f}", "must be > 0")
        require(self.batch_size >= 1, "batch_size", "must be >= 1")
        require(self.bucket_batches >= 1, "bucket_batches", "must be >= 1")


@dataclass
class TrainPRMConfig(Schema):
    output_dir: str = "runs/demo/prm"
    seed: int = 0
    init_model: str = ""                # a model folder; empty: the bootstrap's model named by `init_from`
    # which bootstrapped model the students start from when init_model is empty: "policy" (a base
    # that knows the domain, as the paper's instruct base) or "verifier" (already writes
    # verifications: the student distils the verifier's aggregated verdicts into one pass)
    init_from: str = "policy"
    bootstrap_config: str = "configs/demo/bootstrap.yaml"
    cluster: ClusterConfig = field(default_factory=lambda: ClusterConfig(num_cpus=8, log_to_driver=False))
    data: PRMDataSection = field(default_factory=PRMDataSection)
    train: PRMTrainSection = field(default_factory=PRMTrainSection)
    learner: LearnerSection = field(default_factory=LearnerSection)

    def validate(self) -> None:
        require_choice(self.init_from, "init_from", {"policy", "verifier"})


# ---- eval-prm
MODES = ("generative", "critic")


@dataclass
class PRMModel(Schema):
    name: str = ""
    path: str = ""
    format: str = "prm-cot"
    mode: str = "generative"

    def validate(self) -> None:
        require(bool(self.name) and bool(self.path), "name", "every model needs a name and a path")
        require_choice(self.mode, "mode", set(MODES))
        require(self.format in FORMATS and self.format != "orm", "format",
                "must be prm, prm-cot or think (an ORM names no step)")


@dataclass
class EvalDataSection(Schema):
    # "arith": a synthetic ProcessBench from the embedded domain (exact labels); a subset name of
    # the shipped ProcessBench (gsm8k, math, olympiadbench, omnimath); or a JSONL path in ProcessBench schema
    sources: list[str] = field(default_factory=lambda: ["arith"])
    arith_n: int = 200
    arith_seed: int = 30_000            # disjoint from every other draw of the embedded domain
    domain: DomainConfig = field(default_factory=DomainConfig)
    limit: int = 0                      # rows per source (0: all)


@dataclass
class CriticSection(Schema):
    k: int = 1                          # 1: greedy; > 1: vote over k samples
    temperature: float = 1.0

    def validate(self) -> None:
        require(self.k >= 1, "k", "must be >= 1")


START_PREFIX = "start-"                 # eval-prm's name of the students' starting model: start-<init_from>


@dataclass
class EvalPRMConfig(Schema):
    output_dir: str = "runs/demo/eval_prm"
    seed: int = 0
    models: list[PRMModel] = field(default_factory=list)
    train_prm_dir: str = ""             # also evaluate every student under a `train-prm` output folder
    # with train_prm_dir: also evaluate the model the students started from (`start-<init_from>`, in
    # PRM-CoT format), the baseline a student's training has to beat
    train_prm_start: bool = False
    data: EvalDataSection = field(default_factory=EvalDataSection)
    critic: CriticSection = field(default_factory=CriticSection)
    max_new_tokens: int = 512
    workers: int = 1
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    engine: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(max_model_len=2048))
    cluster: ClusterConfig = field(default_factory=lambda: ClusterConfig(num_cpus=8, log_to_driver=False))

    def validate(self) -> None:
        require(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")
        require(self.train_prm_dir or not self.train_prm_start, "train_prm_start",
                "needs train_prm_dir (the students whose starting model it evaluates)")
