"""Typed configuration of an RL run (`spark-rl train-rl CONFIG`): dataclasses and OmegaConf only, so
`spark-rl ctl` validates a command without loading torch or Ray."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from spark_rl.config.algos import GRPOLossConfig
from spark_rl.config.checks import Schema
from spark_rl.config.cluster import ClusterConfig
from spark_rl.config.engines import PARITY_TOLERANCE, GeneratorConfig, LearnerConfig, PRMConfig
from spark_rl.config.loader import ConfigError, require, require_choice, validate
from spark_rl.config.resources import ResourceSpec
from spark_rl.config.rewards import VariantConfig
from spark_rl.rewards.variants import ALIASES, REWARD_VARIANTS, canonical_name, reward_variant
from spark_rl.tasks.domain import DomainConfig


@dataclass
class WandbConfig(Schema):
    """Weights & Biases beside TensorBoard: the same scalars as metrics.jsonl, per step (extra
    `wandb`). Off while `project` is empty. The run's files go to <output_dir>/wandb/."""

    project: str = ""
    entity: str = ""
    name: str = ""                      # empty: the run folder's name
    group: str = ""
    tags: list[str] = field(default_factory=list)
    mode: str = ""                      # online | offline | disabled; empty: WANDB_MODE, else wandb's default

    def validate(self) -> None:
        require(self.mode in ("", "online", "offline", "disabled"), "mode",
                f"must be online, offline, disabled or empty (WANDB_MODE), got {self.mode!r}")


@dataclass
class RunConfig(Schema):
    output_dir: str = "runs/rl"
    seed: int = 0
    tensorboard: bool = True
    wandb: WandbConfig = field(default_factory=WandbConfig)
    export_final: bool = True           # write the trained policy as an HF folder: <output_dir>/final_policy
    # Checkpoints kept in <output_dir>/checkpoints (the newest K; older ones are deleted once a new
    # one is complete). 0 keeps all: a ZeRO-3 7B checkpoint with Adam states is ~100 GB.
    keep_checkpoints: int = 0

    def validate(self) -> None:
        require(self.keep_checkpoints >= 0, "keep_checkpoints", f"must be >= 0 (0 keeps all), got {self.keep_checkpoints}")


@dataclass
class PolicyConfig(Schema):
    # An HF folder. Empty: the policy the bootstrap config builds (built first if not cached).
    model_path: str = ""
    bootstrap_config: str = "configs/demo/bootstrap.yaml"


@dataclass
class DataConfig(Schema):
    kind: str = "arith"                 # "arith" (embedded domain) or "benchmark" (a shipped benchmark or a JSONL)
    train_size: int = 4000              # arith: problems drawn (benchmark files: see train_limit)
    eval_size: int = 200                # arith: held-out problems; 0 = no evaluation (both kinds)
    # kind=benchmark: the first N rows of the train / eval file; 0 = the whole file. Benchmarks are
    # scored on every problem unless a limit is asked for (MATH500 means 500 problems).
    train_limit: int = 0
    eval_limit: int = 0
    seed: int = 2                       # training problems (the bootstrap's SFT draws use seeds 0, 1);
                                        # eval problems are removed from the training set
    eval_seed: int = 10_000             # = the bootstrap's held-out set for seed 0
    domain: DomainConfig = field(default_factory=DomainConfig)
    benchmark: str = "gsm8k_train"      # kind=benchmark: a name `load_benchmark` knows, or a JSONL path
    eval_benchmark: str = "gsm8k_test"

    def validate(self) -> None:
        require_choice(self.kind, "kind", {"arith", "benchmark"})
        require(self.train_size > 0 and self.eval_size >= 0, "train_size", "must be > 0 (eval_size >= 0)")
        require(self.train_limit >= 0, "train_limit", f"must be >= 0 (0 = the whole file), got {self.train_limit}")
        require(self.eval_limit >= 0, "eval_limit", f"must be >= 0 (0 = the whole file), got {self.eval_limit}")


@dataclass
class RolloutSection(Schema):
    num_workers: int = 1
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    engine: GeneratorConfig = field(default_factory=GeneratorConfig)

    def validate(self) -> None:
        require(self.num_workers >= 1, "num_workers", "must be >= 1")


# What `torch.device(name)` accepts ("cuda", "cuda:1", ...), checked without importing torch.
_TORCH_DEVICE = re.compile(r"(cpu|cuda|ipu|xpu|mkldnn|opengl|opencl|ideep|hip|ve|fpga|maia|xla|lazy|vulkan|mps|meta"
                           r"|hpu|mtia|privateuseone)(:(0|[1-9][0-9]*))?")


def _is_torch_device(name: str) -> bool:
    return _TORCH_DEVICE.fullmatch(name) is not None


@dataclass
class ReferenceSection(Schema):
    num_workers: int = 1
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    micro_batch_tokens: int = 8192
    # True: one reference worker per learner rank, in that rank's placement bundle (same node; on
    # GPU clusters give both fractional `num_gpus` to share a device). num_workers is then ignored.
    colocate_with_learner: bool = False
    # True: no reference workers; each learner rank keeps a frozen copy of the start policy in its
    # own process and scores its share of the samples (verl's actor+ref worker). Saves a process
    # (its start is seconds of importing torch and transformers) and a call per step; worth it when
    # the reference is small next to the learner, as on the embedded tiny models
    in_learner: bool = False
    # the Scorer's device: "auto" = the worker's GPU when Ray gave it one (resources.num_gpus > 0),
    # else the CPU; "cpu" keeps a CPU-declared reference worker off a GPU node's devices
    device: str = "auto"

    def validate(self) -> None:
        require(self.num_workers >= 1, "num_workers", "must be >= 1")
        require(not (self.in_learner and self.colocate_with_learner), "in_learner",
                "choose one: reference workers colocated with the learner ranks, or the reference inside them")
        require(self.device == "auto" or _is_torch_device(self.device), "device",
                f"must be 'auto' or a torch device such as 'cpu', 'cuda', 'cuda:1'; got {self.device!r}")


@dataclass
class LearnerSection(Schema):
    num_ranks: int = 1
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    engine: LearnerConfig = field(default_factory=LearnerConfig)

    def validate(self) -> None:
        require(self.num_ranks >= 1, "num_ranks", "must be >= 1")


@dataclass
class RewardSection(Schema):
    # A reward variant (SPARK_SPEC Stage 3, `spark_rl.rewards.variants`): rlvr | random | process_aware |
    # step_augmented | selective_advantage | global_step. "rule" is the old name of rlvr.
    kind: str = "rlvr"
    num_workers: int = 1
    use_gate: bool = False              # SPARK format gate in front of the reward (Stage 3 configs: true)
    seed: int = 0                       # the `random` variant's coin
    resources: ResourceSpec = field(default_factory=lambda: ResourceSpec(num_cpus=0.5))
    prm: PRMConfig = field(default_factory=PRMConfig)          # PRM variants only
    params: VariantConfig = field(default_factory=VariantConfig)

    @property
    def variant(self) -> str:
        return canonical_name(self.kind)

    @property
    def needs_prm(self) -> bool:
        return reward_variant(self.kind).needs_prm

    def validate(self) -> None:
        require_choice(self.kind, "kind", set(REWARD_VARIANTS) | set(ALIASES))
        require(self.num_workers >= 1, "num_workers", "must be >= 1")


@dataclass
class GRPOSection(Schema):
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
    # max |logprob diff| the probe may show; None: by dtype (`PARITY_TOLERANCE`, `parity_tolerance`)
    parity_tolerance: float | None = None

    def validate(self) -> None:
        require(self.steps >= 0, "steps", "must be >= 0")
        require(self.prompts_per_step >= 1, "prompts_per_step", "must be >= 1")
        require(self.group_size >= 1, "group_size", "must be >= 1")
        require(self.epochs >= 1, "epochs", "must be >= 1")
        require(self.temperature >= 0, "temperature", "must be >= 0")
        require(self.parity_tolerance is None or self.parity_tolerance > 0, "parity_tolerance",
                f"must be > 0 (or null: by dtype), got {self.parity_tolerance}")


def parity_tolerance(cfg: RLConfig) -> float:
    """`grpo.parity_tolerance` if set, else the default for the coarser of the learner's and the
    rollout engine's dtype (any dtype but float32 - bfloat16, float16, auto - counts as bf16)."""
    if cfg.grpo.parity_tolerance is not None:
        return cfg.grpo.parity_tolerance
    dtypes = {cfg.learner.engine.dtype, cfg.rollout.engine.dtype}
    return max(PARITY_TOLERANCE["float32" if d in ("float32", "fp32") else "bfloat16"] for d in dtypes)


ELASTIC_GROUPS = ("rollout", "reward", "reference")


@dataclass
class ScheduleEntry(Schema):
    """One planned change (issue #8), e.g. `{step: 3, rollout: 2}` or `{step: 5, reward: random}`.
    `step` is the first step that runs with the change."""

    step: int = 1
    rollout: int | None = None          # rollout workers
    reward_workers: int | None = None   # reward workers
    reference: int | None = None        # reference workers (not when colocated with the learner)
    reward: str | None = None           # swap the reward group to this kind
    reward_overrides: list[str] = field(default_factory=list)   # with `reward`: e.g. ["prm.model_path=DIR"]

    def validate(self) -> None:
        require(self.step >= 1, "step", f"must be >= 1, got {self.step}")
        for key in ("rollout", "reward_workers", "reference"):
            v = getattr(self, key)
            require(v is None or v >= 1, key, f"must be >= 1, got {v}")
        require(any(getattr(self, k) is not None for k in ("rollout", "reward_workers", "reference", "reward")),
                "step", f"schedule entry at step {self.step} changes nothing (give rollout, reward_workers, "
                        "reference or reward)")
        require(not self.reward_overrides or self.reward is not None, "reward_overrides", "needs `reward`")
        if self.reward is not None:
            derive_reward_section(RewardSection(), self.reward, self.reward_overrides)


@dataclass
class KillAt(Schema):
    step: int = 1
    group: str = "rollout"              # its first call in that step loses a worker (rollout: during generation)


@dataclass
class ChaosSection(Schema):
    """Fault injection (`spark-rl chaos`, tests): kill in-flight non-learner workers, at random
    (`kill_prob`) and/or at given steps (`kill_at`, e.g. [{step: 4, group: reward}])."""

    kill_prob: float = 0.0              # per group call: chance to kill one worker holding a shard
    seed: int = 0
    groups: list[str] = field(default_factory=lambda: list(ELASTIC_GROUPS))
    max_kills: int = 8                  # random kills over the run (keep below elastic.max_replacements)
    kill_at: list[KillAt] = field(default_factory=list)   # steps listed here get only these kills

    @property
    def active(self) -> bool:
        return self.kill_prob > 0 or bool(self.kill_at)

    def validate(self) -> None:
        require(0.0 <= self.kill_prob <= 1.0, "kill_prob", f"must be in [0, 1], got {self.kill_prob}")
        for g in self.groups:
            require_choice(g, "groups", set(ELASTIC_GROUPS))
        require(self.max_kills >= 0, "max_kills", "must be >= 0")
        for i, k in enumerate(self.kill_at):
            require(k.step >= 1, f"kill_at[{i}].step", "must be >= 1")
            require_choice(k.group, f"kill_at[{i}].group", set(ELASTIC_GROUPS))


@dataclass
class ElasticSection(Schema):
    control: bool = True                # poll RUN_DIR/control/ for `spark-rl ctl` commands between steps
    schedule: list[ScheduleEntry] = field(default_factory=list)
    health_check: bool = True           # between steps: drop dead workers, restart to the target size
    replace_timeout_s: float = 120.0    # a new/replacement worker not up by then: go on without it (pending)
    max_replacements: int = 16          # per group over the run; more deaths fail the run
    learner_restarts: int = 2           # a dead learner rank: rebuild + resume from the last checkpoint
    run_restarts: int = 2               # a cluster fault (a group that cannot recover, a PRM endpoint down):
                                        # the same rebuild + resume, after a back-off
    restart_backoff_s: float = 10.0     # the first run restart's wait, doubled for each one after it
    chaos: ChaosSection = field(default_factory=ChaosSection)

    def validate(self) -> None:
        require(self.replace_timeout_s >= 0, "replace_timeout_s", "must be >= 0")
        require(self.max_replacements >= 0, "max_replacements", "must be >= 0")
        require(self.learner_restarts >= 0, "learner_restarts", "must be >= 0")
        require(self.run_restarts >= 0, "run_restarts", "must be >= 0")
        require(self.restart_backoff_s >= 0, "restart_backoff_s", "must be >= 0")
        for i, entry in enumerate(self.schedule):
            validate(entry, f"schedule[{i}].")


def derive_reward_section(base: RewardSection, kind: str, overrides: list[str] | None = None) -> RewardSection:
    """`base` with another kind and dotted overrides relative to the reward section
    (`prm.model_path=DIR`), validated; a bad key or value is a `ConfigError` naming it."""
    merged = OmegaConf.structured(base)
    for ov in [f"kind={kind}", *(overrides or [])]:
        if "=" not in ov:
            raise ConfigError(f"reward override {ov!r} is not of the form key=value")
        try:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist([ov]))
        except OmegaConfBaseException as e:
            raise ConfigError(f"reward override {ov!r}: {str(e).splitlines()[0]}") from None
    section = OmegaConf.to_object(merged)
    validate(section, "reward.")
    return section


@dataclass
class RLConfig(Schema):
    run: RunConfig = field(default_factory=RunConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutSection = field(default_factory=RolloutSection)
    reference: ReferenceSection = field(default_factory=ReferenceSection)
    learner: LearnerSection = field(default_factory=LearnerSection)
    reward: RewardSection = field(default_factory=RewardSection)
    grpo: GRPOSection = field(default_factory=GRPOSection)
    elastic: ElasticSection = field(default_factory=ElasticSection)
