"""The bootstrapped tiny models ship with the package (the stand-in for pretrained checkpoints):
they must be exactly what the committed config would build, and `bootstrap` must use them without
training. That the bootstrap itself still trains is shown by the `easy_policy` fixture (conftest)."""

import json
import time
from pathlib import Path

import pytest

from spark_rl.bootstrap import SHIPPED_DIR, BootstrapConfig, bootstrap
from spark_rl.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "configs" / "demo" / "bootstrap.yaml"


def test_shipped_models_match_the_committed_config():
    cfg = load_config(BootstrapConfig, DEMO)
    wanted = {f"{name}-{cfg.model_key(name)}" for name in cfg.build}
    # the verifier's first run ships too: a change of its slip phase retrains that phase alone
    wanted |= {f"{name}-{cfg.model_key(name, first_phase=True)}" for name in cfg.build if cfg.has_slip_phase(name)}
    shipped = {p.name for p in SHIPPED_DIR.iterdir() if p.is_dir()}
    assert shipped == wanted, (
        f"shipped {sorted(shipped)} but {DEMO.name} builds {sorted(wanted)}: run "
        "`spark-rl bootstrap configs/demo/bootstrap.yaml --rebuild --ship` and commit spark_rl/assets/bootstrap")
    for name in sorted(wanted):
        d = SHIPPED_DIR / name
        assert (d / ".complete").read_text().strip() == name.split("-", 1)[1]
        for f in ("config.json", "model.safetensors", "tokenizer.json", "bootstrap_report.json"):
            assert (d / f).is_file(), f"{d / f} missing"
        assert (d / "model.safetensors").stat().st_size < 16 * 2**20     # a few MB: fits in a repository
        report = json.loads((d / "bootstrap_report.json").read_text())
        start = report.get("first_phase", report)      # a slip phase starts from a trained model: its first run's loss
        assert report["final_loss"] < start["first_loss"] / 10           # trained, not a random init


def test_bootstrap_uses_the_shipped_models_without_training(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARK_RL_CACHE", str(tmp_path))
    cfg = load_config(BootstrapConfig, DEMO)
    t = time.perf_counter()
    res = bootstrap(cfg, progress=False)
    assert time.perf_counter() - t < 5
    assert res.policy == cfg.shipped_dir("policy") and res.verifier == cfg.shipped_dir("verifier")
    assert not (tmp_path / "models").exists()          # no base model built: nothing was trained
    # a config the shipped models do not match is trained into the cache, never served stale
    other = load_config(BootstrapConfig, DEMO, ["policy.steps=901"])
    assert other.model_key("policy") != cfg.model_key("policy")
    assert other.model_dir("policy").parent == tmp_path / "bootstrap"


@pytest.mark.parametrize("field", ["lazy_share=0.5", "trailing_share=0.2", "steps=10"])
def test_the_verifier_key_follows_the_policy_it_starts_from(field):
    cfg = load_config(BootstrapConfig, DEMO, ["verifier.init_from=policy"])
    other = load_config(BootstrapConfig, DEMO, ["verifier.init_from=policy", f"policy.{field}"])
    assert other.model_key("verifier") != cfg.model_key("verifier")
    # the demo's verifier starts from the base model: a policy change leaves it (and its shipped copy) alone
    demo = load_config(BootstrapConfig, DEMO)
    assert demo.verifier.init_from == "base"
    assert load_config(BootstrapConfig, DEMO, [f"policy.{field}"]).model_key("verifier") == demo.model_key("verifier")


def test_the_slip_phase_key_leaves_the_first_run_alone():
    demo = load_config(BootstrapConfig, DEMO)
    assert demo.has_slip_phase("verifier")
    other = load_config(BootstrapConfig, DEMO, ["verifier.slip_phase.label_noise=0.2"])
    assert other.model_key("verifier") != demo.model_key("verifier")
    assert other.model_key("verifier", first_phase=True) == demo.model_key("verifier", first_phase=True)
    # without the phase the verifier is its first run, under the key it had before phases existed
    off = load_config(BootstrapConfig, DEMO, ["verifier.slip_phase.steps=0"])
    assert not off.has_slip_phase("verifier")
    assert off.model_key("verifier") == demo.model_key("verifier", first_phase=True)
    assert load_config(BootstrapConfig, DEMO, ["verifier.steps=10"]).model_key("verifier", first_phase=True) != \
        demo.model_key("verifier", first_phase=True)


def test_the_slip_phase_trains_from_the_first_run_and_reuses_it(tmp_path):
    """Real training, CI-sized: the first run, then the slip phase from its weights; a changed slip
    phase retrains only itself."""
    from dataclasses import replace

    from safetensors.torch import load_file

    from spark_rl.config.bootstrap import SlipPhase, VerifierBootstrap
    from spark_rl.tasks.domain import DomainConfig

    cfg = BootstrapConfig(build=["verifier"], out_dir=str(tmp_path), domain=DomainConfig(min_ops=1, max_ops=2),
                          verifier=VerifierBootstrap(steps=4, batch_size=4, train_problems=200, warmup_steps=1,
                                                     label_noise=0.0,
                                                     slip_phase=SlipPhase(steps=3, warmup_steps=1, label_noise=0.9)))
    res = bootstrap(cfg, progress=False, evaluate=False)
    first = cfg.model_dir("verifier", first_phase=True)
    assert res.verifier == cfg.model_dir("verifier") != first
    assert (first / ".complete").read_text() == cfg.model_key("verifier", first_phase=True)
    assert (res.verifier / ".complete").read_text() == cfg.model_key("verifier")
    report = res.report["verifier"]
    assert report["steps"] == 3 and report["first_phase"]["steps"] == 4
    assert report["kinds"]["noisy"] > 0 and "noisy" not in report["first_phase"]["kinds"]   # the phase's own data
    a, b = load_file(first / "model.safetensors"), load_file(res.verifier / "model.safetensors")
    assert any(not a[k].equal(b[k]) for k in a)               # the phase changed the weights it started from

    stamp = (first / "model.safetensors").stat().st_mtime_ns
    again = replace(cfg, verifier=replace(cfg.verifier, slip_phase=SlipPhase(steps=2, warmup_steps=1)))
    res2 = bootstrap(again, progress=False, evaluate=False)
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp   # the first run was found, not retrained
    assert res2.report["verifier"]["steps"] == 2
