"""Schema of `spark-rl bootstrap` (the embedded default's tiny policy and verifier) and the keys its
models are cached and shipped under. Dataclasses only (no torch, no Ray): `spark_rl.bootstrap`
trains what it describes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from spark_rl.config.checks import Schema, require
from spark_rl.config.loader import config_hash
from spark_rl.paths import cache_dir
from spark_rl.tasks.domain import DomainConfig

# Bump when the SFT data a config produces changes (sft_data, the verifier's trace format, the
# tokenizer corpus): the key of every model changes with it, so a stale shipped model is never used.
DATA_VERSION = 4
# Bump when only the verifier's trace format changes (spark_rl/tasks/arith.py `step_analyses`): the
# verifier is retrained, the policy (and its shipped checkpoint) is kept.
VERIFIER_TRACE_FORMAT = 5
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "assets" / "bootstrap"


@dataclass
class SFTConfig(Schema):
    preset: str = "tiny"
    steps: int = 600
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 30
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.0
    train_problems: int = 20000

    def validate(self) -> None:
        require(self.steps >= 1, "steps", "must be >= 1")
        require(self.batch_size >= 1, "batch_size", "must be >= 1")
        require(self.lr > 0, "lr", "must be > 0")
        require(self.train_problems >= 1, "train_problems", "must be >= 1")


@dataclass
class PolicyBootstrap(SFTConfig):
    slip_share: float = 0.25        # share of SFT solutions with an injected error
    lazy_share: float = 0.0         # share of long problems' solutions that stop one step early
    lazy_min_ops: int = 4           # "long": at least this many operations
    trailing_share: float = 0.0     # share of solutions that go on after </answer> (what the gate stops)

    def validate(self) -> None:
        super().validate()
        require(0.0 <= self.slip_share < 1.0, "slip_share", "must be in [0, 1)")
        require(0.0 <= self.lazy_share < 1.0, "lazy_share", "must be in [0, 1)")
        require(self.lazy_min_ops >= 2, "lazy_min_ops", "must be >= 2 (an early stop needs a step to skip)")
        require(0.0 <= self.trailing_share < 1.0, "trailing_share", "must be in [0, 1)")


@dataclass
class SlipPhase(Schema):
    """A second run of the verifier's training, from the first run's weights, on traces of which a
    larger share carries one slip in the grader's own computation (`label_noise`). The greedy
    verification stays about as accurate; the sampled ones slip more often, each draw on its own:
    independent errors, the kind self-consistency removes (SPARK Stage 1's premise). 0 steps: none."""
    steps: int = 0
    lr: float = 1e-3
    warmup_steps: int = 10
    label_noise: float = 0.3

    def validate(self) -> None:
        require(self.steps >= 0, "steps", "must be >= 0 (0: no second phase)")
        require(self.lr > 0, "lr", "must be > 0")
        require(0.0 <= self.label_noise < 1.0, "label_noise", "must be in [0, 1)")


@dataclass
class VerifierBootstrap(SFTConfig):
    steps: int = 500
    share_correct: float = 0.4      # share of graded solutions that are fully correct
    label_noise: float = 0.15       # share of traces with one grading mistake
    # meta-critique (Stage 1 sequential scaling): a share of the training problems become one
    # critique + one merge example instead of a verification trace (0: the verifier cannot critique)
    meta_share: float = 0.3
    meta_mistake_share: float = 0.5     # critiqued verifications that carry a grading mistake
    meta_ignored_critique: float = 0.15  # merge examples whose critique says nothing (merge keeps the text)
    stopped_early_share: float = 0.0    # erroneous graded solutions that stop one operation short instead
    slip_weight: float = 0.0            # erroneous graded solutions that are arithmetic slips (rest: uniform kinds)
    # "base": start from the random base model; "policy": from the bootstrapped policy, which
    # already computes the domain's arithmetic (the embedded stand-in for sharing a pretrained base)
    init_from: str = "base"
    # repr=False: the first run's key (the section's repr) stays what it was before the second phase
    # existed, so its cached or shipped model is found; `model_key` adds the phase when it runs
    slip_phase: SlipPhase = field(default_factory=SlipPhase, repr=False)

    def validate(self) -> None:
        super().validate()
        require(0.0 <= self.label_noise < 1.0, "label_noise", "must be in [0, 1)")
        for name in ("meta_share", "meta_mistake_share", "meta_ignored_critique", "stopped_early_share",
                     "slip_weight"):
            require(0.0 <= getattr(self, name) <= 1.0, name, "must be in [0, 1]")
        require(self.init_from in ("base", "policy"), "init_from", f"unknown {self.init_from!r} (base, policy)")


@dataclass
class BootstrapConfig(Schema):
    seed: int = 0
    build: list[str] = field(default_factory=lambda: ["policy", "verifier"])
    out_dir: str = ""               # empty: <cache>/bootstrap/<model>-<hash of what the model depends on>
    eval_problems: int = 200        # held-out problems for the report (seed + 10_000)
    domain: DomainConfig = field(default_factory=DomainConfig)
    policy: PolicyBootstrap = field(default_factory=PolicyBootstrap)
    verifier: VerifierBootstrap = field(default_factory=VerifierBootstrap)

    def validate(self) -> None:
        for b in self.build:
            require(b in ("policy", "verifier"), "build", f"unknown model {b!r} (policy, verifier)")
        if self.verifier.init_from == "policy" and "verifier" in self.build:
            require("policy" in self.build and self.build.index("policy") < self.build.index("verifier"), "build",
                    "verifier.init_from=policy needs the policy built first: build: [policy, verifier]")

    def output_dir(self) -> Path:
        return Path(self.out_dir) if self.out_dir else cache_dir() / "bootstrap"

    def section(self, name: str) -> SFTConfig:
        return self.policy if name == "policy" else self.verifier

    def model_seed(self, name: str) -> int:
        """Seed of a model's training data and run (the two models draw different problems)."""
        return self.seed + (0 if name == "policy" else 1)

    def has_slip_phase(self, name: str) -> bool:
        return name == "verifier" and self.verifier.slip_phase.steps > 0

    def model_key(self, name: str, first_phase: bool = False) -> str:
        """The hash of what the model depends on; `first_phase`: of the verifier's first run alone
        (the model its slip phase starts from)."""
        parts = {"seed": self.seed, "domain": self.domain, "eval_problems": self.eval_problems,
                 name: self.section(name), "data_version": DATA_VERSION}
        if name == "verifier":
            parts["trace_format"] = VERIFIER_TRACE_FORMAT
        if name == "verifier" and self.verifier.init_from == "policy":
            parts["init"] = self.model_key("policy")
        if self.has_slip_phase(name) and not first_phase:
            parts["slip_phase"] = self.verifier.slip_phase
        return config_hash(parts)

    def model_dir(self, name: str, first_phase: bool = False) -> Path:
        if self.out_dir:
            return self.output_dir() / (f"{name}.first" if first_phase else name)
        return self.output_dir() / f"{name}-{self.model_key(name, first_phase)}"

    def shipped_dir(self, name: str, first_phase: bool = False) -> Path:
        """Where the package keeps this model when it ships it (it may not)."""
        return SHIPPED_DIR / f"{name}-{self.model_key(name, first_phase)}"

    def locations(self, name: str, first_phase: bool = False) -> tuple[str, Path, Path]:
        """(key, shipped folder, cache folder) of a model."""
        return (self.model_key(name, first_phase), self.shipped_dir(name, first_phase),
                self.model_dir(name, first_phase))

    def eval_seed(self) -> int:
        return self.seed + 10_000
