"""The bootstrapped tiny models ship with the package (the stand-in for pretrained checkpoints):
they must be exactly what the committed config would build, and `bootstrap` must use them without
training. That the bootstrap itself still trains is shown by the `easy_policy` fixture (conftest)."""

import json
import time
from pathlib import Path

import pytest

from spark_rl.config import load_config
from spark_rl.bootstrap import SHIPPED_DIR, BootstrapConfig, bootstrap

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "configs" / "demo" / "bootstrap.yaml"


def test_shipped_models_match_the_committed_config():
    cfg = load_config(BootstrapConfig, DEMO)
    wanted = {f"{name}-{cfg.model_key(name)}" for name in cfg.build}
    shipped = {p.name for p in SHIPPED_DIR.iterdir() if p.is_dir()}
    assert shipped == wanted, (
        f"shipped {sorted(shipped)} but {DEMO.name} builds {sorted(wanted)}: run "
        "`spark-rl bootstrap configs/demo/bootstrap.yaml --rebuild --ship` and commit spark_rl/assets/bootstrap")
    for name in cfg.build:
        d = cfg.shipped_dir(name)
        assert (d / ".complete").read_text().strip() == cfg.model_key(name)
        for f in ("config.json", "model.safetensors", "tokenizer.json", "bootstrap_report.json"):
            assert (d / f).is_file(), f"{d / f} missing"
        assert (d / "model.safetensors").stat().st_size < 16 * 2**20     # a few MB: fits in a repository
        report = json.loads((d / "bootstrap_report.json").read_text())
        assert report["final_loss"] < report["first_loss"] / 10          # trained, not a random init


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
