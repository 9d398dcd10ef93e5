"""The elastic controller on stand-in groups (no Ray): it works through the groups and the
`Driver` view, changes no config, and hands its live state to a rebuilt driver."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from types import SimpleNamespace


@dataclass
class FakeGroup:
    name: str
    target: int
    spec: object = None
    pending: list = field(default_factory=list)
    hooks: list = field(default_factory=list)
    before_send: list = field(default_factory=list)
    killed: bool = False

    def __post_init__(self):
        self.workers = [object() for _ in range(self.target)]
        self.ledger = SimpleNamespace(events=[])

    @property
    def size(self) -> int:
        return len(self.workers)

    def resize(self, n: int) -> None:
        self.workers = self.workers[:n] + [object() for _ in range(n - len(self.workers))]
        self.target = n

    def kill_all(self) -> None:
        self.killed = True

    def take_stats(self) -> dict:
        return {k: 0 for k in ("items", "completed", "redispatched", "failures", "workers_used")} | {
            "size": self.size, "pending": 0, "replaced_total": 0}

    def reconcile(self) -> dict:
        return {"dead": 0, "joined": 0, "started": 0}


def _controller(tmp_path, cfg=None):
    from spark_rl.config.rl import RLConfig
    from spark_rl.trainer.elastic import ElasticController

    cfg = cfg or RLConfig()
    groups = {"rollout": FakeGroup("rollout", 1), "reward": FakeGroup("reward", 1, spec=cfg.reward),
              "reference": None}
    driver = SimpleNamespace(step=4, weights_version=4, parity=lambda h: 0.0)
    made = []

    def make_reward_group(section):
        made.append(section)
        return FakeGroup("reward", section.num_workers, spec=section)

    return ElasticController(cfg, groups, driver, make_reward_group, tmp_path), cfg, groups, made


def test_swap_and_scale_change_the_groups_not_the_config(tmp_path):
    ctl, cfg, groups, made = _controller(tmp_path)
    before = copy.deepcopy(cfg)
    old = groups["reward"]
    info = ctl.swap_reward("random", ["seed=3"], source="test")
    assert (info["from"], info["to"]) == ("rlvr", "random") and old.killed
    assert groups["reward"] is not old and groups["reward"].spec.seed == 3
    assert ctl.reward_section.variant == "random" and ctl.step_metrics()["reward/kind"] == "random"
    ctl.scale({"reward": 2}, source="test")
    assert groups["reward"].size == 2
    ctl.swap_reward("rlvr", [])                # a swap keeps the size a scale set
    assert groups["reward"].size == 2 and made[-1].num_workers == 2
    assert cfg == before                       # what was loaded is what the run folder records
    events = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(e["kind"], e["step"]) for e in events] == [("swap_reward", 5), ("scale", 5), ("swap_reward", 5)]


def test_a_rebuilt_driver_adopts_the_live_state(tmp_path):
    ctl, cfg, groups, _ = _controller(tmp_path)
    ctl.swap_reward("random", [])
    ctl.scale({"reward": 3})
    state = ctl.live_state()
    fresh, _, fresh_groups, made = _controller(tmp_path / "again", cfg)
    (tmp_path / "again").mkdir()
    fresh.adopt(state)
    assert fresh.reward_section.variant == "random" and len(made) == 1
    assert fresh_groups["reward"].size == 3 and fresh_groups["rollout"].size == 1
    assert cfg.reward.num_workers == 1 and cfg.reward.kind == "rlvr"
