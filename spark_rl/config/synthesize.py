"""Schema of `spark-rl synthesize` (SPARK Stage 1): the generator and verifier passes, curation,
aggregation, meta-critique. Dataclasses only (no torch, no Ray): `spark_rl.pipelines.synthesize`
runs what it describes."""

from __future__ import annotations

from dataclasses import dataclass, field

from spark_rl.config.checks import Schema, require
from spark_rl.config.cluster import ClusterConfig
from spark_rl.config.engines import GeneratorConfig
from spark_rl.config.loader import config_hash
from spark_rl.config.resources import ResourceSpec
from spark_rl.tasks.domain import DomainConfig
from spark_rl.verification.aggregate import AggregationConfig

DATASET_VARIANTS = ("single", "outcome-consistency", "step-consistency", "reference-guided", "meta-critique-base",
                    "meta-critique-outcome")
META_BASES = ("base", "outcome")


@dataclass
class ModelsSection(Schema):
    policy_path: str = ""           # empty: the bootstrap's policy
    verifier_path: str = ""         # empty: the bootstrap's verifier
    bootstrap_config: str = "configs/demo/bootstrap.yaml"


@dataclass
class SynthDataSection(Schema):
    n_problems: int = 48
    seed: int = 20_000              # disjoint from bootstrap (0, 1), RL (2) and eval (10_000) draws
    domain: DomainConfig = field(default_factory=DomainConfig)
    # empty: the embedded arithmetic domain (exact step labels -> quality report); else a benchmark
    # name (the files shipped in the package, spark_rl/assets/data) or a JSONL path (answers graded
    # with math-verify; no step labels)
    benchmark: str = ""

    def validate(self) -> None:
        require(self.n_problems >= 1, "n_problems", "must be >= 1")


@dataclass
class GeneratorPass(Schema):
    n: int = 8
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 160
    workers: int = 1
    resources: ResourceSpec = field(default_factory=ResourceSpec)        # per worker
    engine: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(max_model_len=512))  # model_path: models

    def validate(self) -> None:
        require(self.n >= 1, "n", "must be >= 1")
        require(self.workers >= 1, "workers", "must be >= 1")


@dataclass
class CurationSection(Schema):
    enabled: bool = True            # uses ground truth for selection only
    max_correct: int = 3
    max_incorrect: int = 3


@dataclass
class VerifierPass(Schema):
    n: int = 16
    reference_n: int = 8            # reference-guided baseline (0: skip)
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 400
    workers: int = 1
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    engine: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(max_model_len=1024))

    def validate(self) -> None:
        require(self.n >= 1, "n", "must be >= 1")
        require(self.workers >= 1, "workers", "must be >= 1")
        require(self.reference_n >= 0, "reference_n", "must be >= 0")


@dataclass
class MetaCritiqueSection(Schema):
    bases: list[str] = field(default_factory=lambda: list(META_BASES))   # [] switches the passes off
    rounds: int = 1
    critique_max_new_tokens: int = 200
    merge_max_new_tokens: int = 400

    def validate(self) -> None:
        require(self.rounds >= 1, "rounds", "must be >= 1")
        for b in self.bases:
            require(b in META_BASES, "bases", f"unknown base {b!r} ({', '.join(META_BASES)})")


@dataclass
class SynthesizeConfig(Schema):
    output_dir: str = "runs/demo/synthesize"
    seed: int = 0
    shards: int = 6
    # Shards in flight at once, each run whole by its lane: a generator and a verifier group of
    # `workers` each (worker i of lane l takes entry l * workers + i of `resources.cpu_threads_bind`).
    # A shard's data does not depend on the lane that runs it nor on the number of lanes (unlike
    # `workers`, which splits each batch), so it is not in the shards' fingerprint.
    lanes: int = 1
    report_ns: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    cluster: ClusterConfig = field(default_factory=lambda: ClusterConfig(num_cpus=8, log_to_driver=False))
    models: ModelsSection = field(default_factory=ModelsSection)
    data: SynthDataSection = field(default_factory=SynthDataSection)
    generator: GeneratorPass = field(default_factory=GeneratorPass)
    curation: CurationSection = field(default_factory=CurationSection)
    verifier: VerifierPass = field(default_factory=VerifierPass)
    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    meta_critique: MetaCritiqueSection = field(default_factory=MetaCritiqueSection)

    def validate(self) -> None:
        require(self.shards >= 1, "shards", "must be >= 1")
        require(self.lanes >= 1, "lanes", "must be >= 1")
        require(all(1 <= n <= self.verifier.n for n in self.report_ns), "report_ns",
                f"every N must be in 1..verifier.n ({self.verifier.n})")

    def raw_fingerprint(self) -> str:
        """What the raw shards depend on (aggregation and reporting do not invalidate them)."""
        return config_hash({"seed": self.seed, "shards": self.shards, "models": self.models, "data": self.data,
                            "generator": self.generator, "curation": self.curation, "verifier": self.verifier})

    def meta_fingerprint(self) -> str:
        return config_hash({"raw": self.raw_fingerprint(), "aggregation": self.aggregation,
                            "meta_critique": self.meta_critique})
