"""`spark-rl train-prm`: SFT of generative reward models on Stage 1 datasets (SPARK Stage 2).

One student per Stage 1 variant, each from the same initial model, on a DeepSpeed `LearnerGroup`
of any number of ranks: loss on response tokens only; length-bucketed batches (padding stays
small without packing); held-out loss every `eval_every` steps; HF checkpoints that vLLM and
transformers load. A student whose `model/.complete` exists is skipped on a re-run, so a crash
costs at most the student being trained.
"""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path

from spark_rl.config import config_hash
from spark_rl.config.prm import PRMDataSection, PRMTrainSection, TrainPRMConfig  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)


# ---- pure data handling ----------------------------------------------------------------------
def split_by_problem(rows: list[dict], heldout_share: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, held-out); every solution of a problem lands on the same side."""
    ids = sorted({r["problem_id"] for r in rows})
    random.Random(seed).shuffle(ids)
    n_held = round(len(ids) * heldout_share) if len(ids) > 1 else 0
    held = set(ids[:n_held])
    return [r for r in rows if r["problem_id"] not in held], [r for r in rows if r["problem_id"] in held]


def length_bucketed_batches(lengths: list[int], batch_size: int, pool_batches: int, rng: random.Random) -> list[list[int]]:
    """One epoch of index batches: shuffle, sort each pool of `pool_batches` batches by length, cut,
    then shuffle the batch order (similar lengths share a batch; the order stays random)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * pool_batches
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def padding_share(batches: list[list[int]], lengths: list[int]) -> float:
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches if b)
    return 1.0 - sum(lengths[i] for b in batches for i in b) / max(1, padded)


def response_nll(samples: list[dict], logprobs: list[list[float]]) -> float:
    """Mean negative log-likelihood per response token (logprobs[i][t]: of token t + 1)."""
    total = count = 0.0
    for s, lp in zip(samples, logprobs):
        p, n = len(s["prompt_ids"]), len(s["response_ids"])
        total -= sum(lp[p - 1:p - 1 + n])
        count += n
    return total / max(1.0, count)


# ---- the driver ------------------------------------------------------------------------------
class StudentLearner:
    """The learner group the students train on, one after another: started for the first student,
    reset to the initial model (and the next student's learning rate) for each next one, so a student
    costs its model load, not rank processes importing DeepSpeed and joining a process group."""

    def __init__(self, cfg: TrainPRMConfig):
        self.cfg, self.group = cfg, None

    def ready(self, init_model: str, engine_cfg):
        from actors.learner import LearnerGroup

        if self.group is None:
            self.group = LearnerGroup(init_model, engine_cfg, num_ranks=self.cfg.learner.num_ranks,
                                      resources=self.cfg.learner.resources)
        else:
            self.group.reset(init_model, engine_cfg)
        return self.group

    def close(self) -> None:
        if self.group is not None:
            self.group.shutdown()
            self.group = None


def _load_variant(stage1_dir: Path, variant: str) -> list[dict]:
    from datasets import load_from_disk

    path = stage1_dir / variant
    if not (path / "dataset_info.json").exists():
        if path.is_dir():
            return []   # the variant exists but produced no rows
        raise FileNotFoundError(f"no Stage 1 dataset for variant {variant!r} at {path} "
                                "(run `spark-rl synthesize` first, or fix data.stage1_dir / data.variants)")
    return load_from_disk(str(path)).to_list()


def students(data: PRMDataSection) -> list[tuple[str, str, str]]:
    """(student name, Stage 1 variant, format) of every student a config trains."""
    formats = list(data.formats) or [data.format]
    return [(v if f == formats[0] else f"{v}.{f}", v, f) for f in formats for v in data.variants
            if v in data.format_variants.get(f, data.variants)]


def train_student(cfg: TrainPRMConfig, name: str, variant: str, fmt: str, init_model: str, out: Path,
                  progress: bool = True, learner: StudentLearner | None = None) -> dict:
    """One student; `learner`: the group to train on (kept for the next student), else one of its own."""
    from dataclasses import replace

    from tqdm import tqdm
    from transformers import AutoTokenizer

    from spark_rl.models.chat import encode_sft
    from spark_rl.verification.prm_formats import sft_example

    rows = _load_variant(Path(cfg.data.stage1_dir), variant)
    train_rows, held_rows = split_by_problem(rows, cfg.data.heldout_share, cfg.seed)
    if not train_rows:
        return {"variant": variant, "format": fmt, "skipped": "no training rows", "rows": len(rows)}
    tok = AutoTokenizer.from_pretrained(init_model)

    def encoded(r: dict) -> dict:
        ex = sft_example(r, fmt)
        return encode_sft(tok, ex.prompt, ex.response)

    train, held = [encoded(r) for r in train_rows], [encoded(r) for r in held_rows]
    lengths = [len(s["prompt_ids"]) + len(s["response_ids"]) for s in train]
    t = cfg.train
    steps = t.steps or max(1, round(t.epochs * len(train) / t.batch_size))
    lcfg = cfg.learner.engine
    lcfg = replace(lcfg, seed=cfg.seed, lr=t.format_lr.get(fmt, lcfg.lr),
                   decay_steps=lcfg.decay_steps or max(1, steps - lcfg.warmup_steps))
    own = learner is None
    learner = learner or StudentLearner(cfg)
    group = learner.ready(init_model, lcfg)
    rng = random.Random(cfg.seed)
    batches: list[list[int]] = []
    metrics_path = out / "metrics.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    history, t0, pads = [], time.perf_counter(), []
    try:
        bar = tqdm(range(1, steps + 1), desc=f"train-prm {name}", disable=not progress, dynamic_ncols=True)
        with open(metrics_path, "w") as mf:
            for step in bar:
                if not batches:
                    batches = length_bucketed_batches(lengths, t.batch_size, t.bucket_batches, rng)
                    pads.append(padding_share(batches, lengths))
                m = group.sft_step([train[i] for i in batches.pop()])
                rec = {"step": step, "loss": m["loss"], "lr": m["lr"], "padding_share": m.get("padding_share")}
                if held and (step == steps or (t.eval_every and step % t.eval_every == 0)):
                    rec["heldout_nll"] = response_nll(held, group.compute_logprobs(
                        [s["prompt_ids"] + s["response_ids"] for s in held]))
                mf.write(json.dumps(rec) + "\n")
                mf.flush()
                history.append(rec)
                bar.set_postfix({k: f"{v:.4f}" for k, v in rec.items() if k in ("loss", "heldout_nll")})
        group.export_hf(str(out / "model"))
    finally:
        if own:
            learner.close()
    evals = [h["heldout_nll"] for h in history if "heldout_nll" in h]
    return {"variant": variant, "format": fmt, "rows": len(rows), "train_rows": len(train_rows),
            "heldout_rows": len(held_rows),
            "steps": steps, "first_loss": history[0]["loss"], "final_loss": history[-1]["loss"],
            "heldout_nll": evals[-1] if evals else None, "epoch_padding_share": sum(pads) / max(1, len(pads)),
            "train_s": time.perf_counter() - t0, "model": str(out / "model"), "init_model": init_model}


def resolve_init(cfg: TrainPRMConfig) -> str:
    from spark_rl.trainer.model_paths import resolve_model_path

    # the bootstrap builds the policy first: its verifier may start from it (verifier.init_from)
    build = ["policy"] if cfg.init_from == "policy" else ["policy", "verifier"]
    return resolve_model_path(cfg.init_model, cfg.bootstrap_config, cfg.init_from, build)


def train_prm(cfg: TrainPRMConfig, progress: bool = True) -> dict:
    from actors.cluster import init_ray
    from spark_rl.config import save_resolved

    out = Path(cfg.output_dir)
    init = resolve_init(cfg)
    save_resolved(cfg, out)
    init_ray(cfg.cluster)
    fingerprint = config_hash({"init": init, "cfg": cfg})
    summary = {}
    todo = students(cfg.data)
    learner = StudentLearner(cfg)
    try:
        for k, (name, variant, fmt) in enumerate(todo, start=1):
            vdir = out / name
            done = vdir / "model" / ".complete"
            if done.exists() and done.read_text() == fingerprint:
                # the fingerprint holds the init: a student kept from before started where this one would
                summary[name] = {**json.loads((vdir / "summary.json").read_text()), "init_model": init}
                log.info("train-prm %s: done before, skipped", name)
                continue
            print(f"train-prm: student {k}/{len(todo)}: {name} ({fmt} on {variant} labels)", flush=True)
            res = train_student(cfg, name, variant, fmt, init, vdir, progress=progress, learner=learner)
            vdir.mkdir(parents=True, exist_ok=True)
            (vdir / "summary.json").write_text(json.dumps(res, indent=1))
            if "model" in res:
                done.write_text(fingerprint)
            summary[name] = res
    finally:
        learner.close()
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
