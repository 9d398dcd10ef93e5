"""Typed configuration of an RL run (`spark-rl train-rl CONFIG`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.cluster import ClusterConfig
from spark_rl.algos import GRPOLossConfig
from spark_rl.config import require, require_choice
from spark_rl.config.resources import ResourceSpec
from spark_rl.engines.generator import GeneratorConfig
from spark_rl.engines.learner import LearnerConfig
from spark_rl.engines.prm_reward import PRMConfig
from spark_rl.rewards.variants import PRM_VARIANTS, VARIANTS, VariantConfig
from spark_rl.tasks.domain import DomainConfig


@dataclass
class RunConfig:
    output_dir: str = "runs/rl"
    seed: int = 0
    tensorboard: bool = True
    export_final: bool = True           # write the trained policy as an HF folder: <output_dir>/final_policy


@dataclass
class PolicyConfig:
    # An HF folder. Empty: the policy the bootstrap config builds (built first if not cached).
    model_path: str = ""
    bootstrap_config: str = "configs/demo/bootstrap.yaml"


@dataclass
class DataConfig:
    kind: str = "arith"                 # "arith" (embedded domain) or "benchmark" (files in shared/data)
    train_size: int = 4000
    eval_size: int = 200
    seed: int = 2                       # training problems (the bootstrap's SFT draws use seeds 0, 1);
                                        # eval problems are removed from the training set
    eval_seed: int = 10_000             # = the bootstrap's held-out set for seed 0
    domain: DomainConfig = field(default_factory=DomainConfig)
    benchmark: str = "gsm8k_train"      # kind=benchmark: a name `load_benchmark` knows, or a JSONL path
    eval_benchmark: str = "gsm8k_test"

    def validate(self) -> None:
        require_choice(self.kind, "kind", {"arith", "benchmark"})
        require(self.train_size > 0 and self.eval_size >= 0, "train_size", "must be > 0 (eval_size >= 0)")


@dataclass
class RolloutSection:
    num_workers: int = 1
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    engine: GeneratorConfig = field(default_factory=GeneratorConfig)

    def validate(self) -> None:
        require(self.num_workers >= 1, "num_workers", "must be >= 1")


@dataclass
class ReferenceSection:
    num_workers: int = 1
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    micro_batch_tokens: int = 8192
    # True: one reference worker per learner rank, in that rank's placement bundle (same node; on
    # GPU clusters give both fractional `num_gpus` to share a device). num_workers is then ignored.
    colocate_with_learner: bool = False

    def validate(self) -> None:
        require(self.num_workers >= 1, "num_workers", "must be >= 1")


@dataclass
class LearnerSection:
    num_ranks: int = 1
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    engine: LearnerConfig = field(default_factory=LearnerConfig)

    def validate(self) -> None:
        require(self.num_ranks >= 1, "num_ranks", "must be >= 1")


@dataclass
class RewardSection:
    # A reward variant (SPARK_SPEC Stage 3): rlvr | random | process_aware | step_augmented |
    # selective_advantage | global_step. "rule" is the old name of rlvr.
    kind: str = "rlvr"
    num_workers: int = 1
    use_gate: bool = False              # SPARK format gate in front of the reward (Stage 3 configs: true)
    seed: int = 0                       # the `random` variant's coin
    resources: ResourceSpec = field(default_factory=lambda: ResourceSpec(num_cpus=0.5))
    prm: PRMConfig = field(default_factory=PRMConfig)          # PRM variants only
    params: VariantConfig = field(default_factory=VariantConfig)

    @property
    def variant(self) -> str:
        return "rlvr" if self.kind == "rule" else self.kind

    @property
    def needs_prm(self) -> bool:
        return self.variant in PRM_VARIANTS

    def validate(self) -> None:
        require_choice(self.kind, "kind", set(VARIANTS) | {"rule"})
        require(self.num_workers >= 1, "num_workers", "must be >= 1")


@dataclass
class GRPOSection:
    steps: int = 40
    prompts_per_step: int = 16
    group_size: int = 8
    epochs: int = 1                     # passes over each batch (the paper: 1)
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 160
    advantage: str = "grpo"
    filter_zero_variance: bool = False  # drop groups whose rewards are all equal from the update
    loss: GRPOLossConfig = field(default_factory=GRPOLossConfig)
    eval_every: int = 10
    eval_max_new_tokens: int = 160
    checkpoint_every: int = 10
    sync_bucket_mb: int = 64
    parity_check: bool = True           # after every sync: rollout vs learner logprobs on a probe
    parity_tolerance: float = 1e-3

    def validate(self) -> None:
        require(self.steps >= 0, "steps", "must be >= 0")
        require(self.prompts_per_step >= 1, "prompts_per_step", "must be >= 1")
        require(self.group_size >= 1, "group_size", "must be >= 1")
        require(self.epochs >= 1, "epochs", "must be >= 1")
        require(self.temperature >= 0, "temperature", "must be >= 0")


@dataclass
class RLConfig:
    run: RunConfig = field(default_factory=RunConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutSection = field(default_factory=RolloutSection)
    reference: ReferenceSection = field(default_factory=ReferenceSection)
    learner: LearnerSection = field(default_factory=LearnerSection)
    reward: RewardSection = field(default_factory=RewardSection)
    grpo: GRPOSection = field(default_factory=GRPOSection)
