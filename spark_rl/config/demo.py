"""Schema of `spark-rl demo`: which stage configs it chains and the Stage 3 runs it compares.
Dataclasses only: `spark_rl.pipelines.demo` runs the stages."""

from __future__ import annotations

from dataclasses import dataclass, field

from spark_rl.config.checks import Schema, require


@dataclass
class RLRun(Schema):
    name: str = ""
    overrides: list[str] = field(default_factory=list)   # dotted RL-config overrides, e.g. reward.kind=rlvr
    prm_student: str = ""       # the Stage 2 student this run's PRM reward uses (empty: the demo's prm_student)

    def validate(self) -> None:
        require(bool(self.name) and "/" not in self.name, "name", "must be a non-empty folder name")


def _default_runs() -> list[RLRun]:
    return [RLRun("prm-cot-gate", ["reward.kind=process_aware", "reward.use_gate=true"]),
            RLRun("rlvr", ["reward.kind=rlvr", "reward.use_gate=true"]),
            RLRun("prm-cot-no-gate", ["reward.kind=process_aware", "reward.use_gate=false"])]


@dataclass
class DemoConfig(Schema):
    output_dir: str = "runs/demo"
    bootstrap: str = "configs/demo/bootstrap.yaml"
    synthesize: str = "configs/demo/synthesize.yaml"
    train_prm: str = "configs/demo/train_prm.yaml"
    eval_prm: str = "configs/demo/eval_prm.yaml"
    rl: str = "configs/demo/rlvr.yaml"
    # Stage 2 students to train and compare (Stage 1 variant names); the first one that is
    # `prm_student` becomes the Stage 3 reward model.
    stage2_variants: list[str] = field(default_factory=lambda: ["single", "step-consistency", "meta-critique-outcome"])
    prm_student: str = "step-consistency"
    rl_runs: list[RLRun] = field(default_factory=_default_runs)
    rl_overrides: list[str] = field(default_factory=list)    # applied to every RL run
    stage_overrides: dict[str, list[str]] = field(default_factory=dict)   # stage name -> extra overrides
    # Stages that do not depend on each other (RLVR beside Stage 1; the PRM-reward runs beside each
    # other) run side by side, up to this many at once, each pinned to its share of the cores
    # (`spark_rl.pipelines.demo.waves`); 1: one after another.
    max_parallel: int = 2
    # The stages in the order they run, by name (synthesize, train_prm, eval_prm, rl:<run name>;
    # the bootstrap always runs first): the stages of one wave run side by side, each on its share
    # of the cores; a wave starts when the one before it has ended. Empty: by dependency level.
    waves: list[list[str]] = field(default_factory=list)
    # Each stage is a process forked from a server that has imported torch, Ray, transformers and
    # spark_rl once (`spark_rl.pipelines.stage_process`): it starts in a fraction of a second, not
    # after seconds of imports on its core. False: each stage a fresh `python -m spark_rl.cli`.
    preload_stages: bool = True

    def validate(self) -> None:
        require(self.max_parallel >= 1, "max_parallel", "must be >= 1")
        require(self.prm_student in self.stage2_variants, "prm_student", "must be one of stage2_variants")
        require(len({r.name for r in self.rl_runs}) == len(self.rl_runs), "rl_runs", "names must be unique")
        require(all(wave for wave in self.waves), "waves", "a wave must name at least one stage")
        for k in self.stage_overrides:
            require(k in ("bootstrap", "synthesize", "train_prm", "eval_prm"), "stage_overrides",
                    f"unknown stage {k!r} (bootstrap, synthesize, train_prm, eval_prm)")
