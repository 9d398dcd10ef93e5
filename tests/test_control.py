"""The control surface without Ray: `spark-rl ctl` validation, the command queue, elastic config."""

from __future__ import annotations

import json

import pytest


def test_ctl_rejects_bad_requests_naming_them(tmp_path, capsys):
    from spark_rl.cli import main
    from spark_rl.config import save_resolved
    from spark_rl.config.rl import RLConfig

    save_resolved(RLConfig(), tmp_path)
    bad = {("scale", "rollout=0"): "rollout='0'", ("scale", "learner=2"): "learner cannot be resized",
           ("scale", "critic=2"): "unknown group 'critic'", ("scale", "rollout"): "'rollout' is not GROUP=N",
           ("scale", "rollout=1.5"): "integer >= 1",
           ("swap-reward", "bogus"): "'bogus' is not one of", ("swap-reward", "random", "sed=1"): "'sed'"}
    for argv, msg in bad.items():
        assert main(["ctl", *argv, "--run", str(tmp_path)]) == 2, argv
        assert msg in capsys.readouterr().err, argv
    assert main(["ctl", "scale", "rollout=2", "--run", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "control").exists()      # nothing was queued
    assert main(["ctl", "swap-reward", "random", "seed=3", "--run", str(tmp_path)]) == 0
    assert main(["ctl", "scale", "rollout=3", "reward=2", "--run", str(tmp_path)]) == 0
    assert "no driver has reported" in capsys.readouterr().out
    assert main(["ctl", "status", "--run", str(tmp_path)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["status"] is None and len(status["queued"]) == 2


def test_control_queue_keeps_order_and_outcomes(tmp_path):
    from spark_rl.trainer.control import ControlQueue, validate_command

    q = ControlQueue(tmp_path)
    a = q.submit({"op": "scale", "sizes": {"rollout": 2}})
    b = q.submit({"op": "swap_reward", "kind": "random", "overrides": []})
    (q.dir / "zz-broken.json").write_text("{not json")
    pending = q.pending()
    assert [p.name for p, _ in pending] == sorted([a.name, b.name, "zz-broken.json"])
    assert pending[0][1]["sizes"] == {"rollout": 2} and pending[-1][1] is None
    assert not list(q.dir.glob(".*.tmp"))               # written to a temporary name, then renamed
    q.finish(a, pending[0][1], ok=True, step=3, result={"rollout": {"to": 2}})
    q.finish(pending[-1][0], None, ok=False, step=3, error="unreadable")
    assert q.outcome(a.name)["status"] == "applied" and q.outcome(a.name)["step"] == 3
    assert q.outcome("zz-broken.json")["raw"] == "{not json"      # the bad file is kept, not lost
    assert [p.name for p, _ in q.pending()] == [b.name]
    assert validate_command({"op": "scale", "sizes": {"reward": "2"}}) == {"op": "scale", "sizes": {"reward": 2}}
    from spark_rl.config import ConfigError

    with pytest.raises(ConfigError, match="unknown control command"):
        validate_command({"op": "reboot"})


def test_elastic_config_is_typed_and_validated():
    from spark_rl.config import ConfigError, load_config
    from spark_rl.config.rl import RLConfig

    cfg = load_config(RLConfig, None, ["elastic.schedule=[{step: 3, rollout: 2}, {step: 5, reward: random}]",
                                       "elastic.chaos.kill_at=[{step: 4, group: reward}]"])
    assert [(e.step, e.rollout, e.reward) for e in cfg.elastic.schedule] == [(3, 2, None), (5, None, "random")]
    assert cfg.elastic.learner_restarts == 2 and cfg.elastic.control and cfg.elastic.chaos.active
    bad = {"elastic.schedule=[{step: 0, rollout: 2}]": "elastic.schedule[0].step: must be >= 1",
           "elastic.schedule=[{step: 2, rollout: 0}]": "elastic.schedule[0].rollout: must be >= 1",
           "elastic.schedule=[{step: 2}]": "changes nothing",
           "elastic.schedule=[{step: 2, rolout: 2}]": "rolout",
           "elastic.schedule=[{step: 2, reward: bogus}]": "'bogus' is not one of",
           "elastic.schedule=[{step: 2, reward: random, reward_overrides: [nope=1]}]": "'nope'",
           "elastic.chaos.kill_prob=2": "kill_prob: must be in [0, 1]",
           "elastic.chaos.groups=[learner]": "'learner' is not one of",
           "elastic.learner_restarts=-1": "learner_restarts"}
    for override, msg in bad.items():
        with pytest.raises(ConfigError, match=None) as e:
            load_config(RLConfig, None, [override])
        assert msg in str(e.value), (override, str(e.value))


def test_chaos_command_rejects_bad_settings_before_starting_anything(tmp_path, capsys):
    from spark_rl.cli import main
    from spark_rl.config import save_resolved
    from spark_rl.config.rl import RLConfig

    path = save_resolved(RLConfig(), tmp_path, "rl.yaml")
    assert main(["chaos", str(path), "--kill-prob", "1.5", "--out", str(tmp_path / "out")]) == 2
    assert "kill_prob" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
