"""`spark-rl bootstrap`: the embedded default's tiny policy and verifier, trained on CPU.

Both start from the random base model of their preset and are fine-tuned with the DeepSpeed
`Learner` (one rank, in this process) on data from `spark_rl.tasks.sft_data`. Each model is
cached under the hash of what it depends on (seed, domain, its own section): a second call with
the same config returns at once, and changing the verifier's settings does not retrain the policy. Deterministic for a
seed (fixed step counts, no wall-clock budget).
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from spark_rl.config import save_resolved
from spark_rl.config.bootstrap import (  # noqa: F401  (the schema, re-exported where it was defined before)
    DATA_VERSION,
    SHIPPED_DIR,
    VERIFIER_TRACE_FORMAT,
    BootstrapConfig,
    PolicyBootstrap,
    SFTConfig,
    VerifierBootstrap,
)
from spark_rl.models.factory import base_model_dir
from spark_rl.tasks.arith import ArithProblem
from spark_rl.tasks.sft_data import SFTExample, meta_critique_examples, policy_examples, verifier_examples

log = logging.getLogger(__name__)

@dataclass
class BootstrapResult:
    out_dir: Path
    policy: Path | None
    verifier: Path | None
    report: dict


def train_sft(examples: list[SFTExample], cfg: SFTConfig, init_dir: Path, out_dir: Path, seed: int,
              desc: str, progress: bool = True) -> dict:
    """Fine-tune `init_dir` on `examples` for `cfg.steps` steps of `cfg.batch_size`; export to `out_dir`."""
    import os

    from tqdm import tqdm
    from transformers import AutoTokenizer

    from spark_rl.engines.collectives import free_port
    from spark_rl.engines.learner import Learner, LearnerConfig
    from spark_rl.models.chat import encode_sft

    tok = AutoTokenizer.from_pretrained(init_dir)
    encoded = [encode_sft(tok, e.prompt, e.response) for e in examples]
    os.environ.setdefault("MASTER_PORT", str(free_port("127.0.0.1")))
    lcfg = LearnerConfig(zero_stage=0, lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_steps,
                         decay_steps=max(1, cfg.steps - cfg.warmup_steps), min_lr_ratio=cfg.min_lr_ratio,
                         micro_batch_size=cfg.batch_size, seed=seed)
    learner = Learner(str(init_dir), lcfg, rank=0, world_size=1)
    rng = random.Random(seed)
    order: list[int] = []
    losses, t0 = [], time.perf_counter()
    bar = tqdm(range(cfg.steps), desc=desc, disable=not progress, dynamic_ncols=True)
    for _ in bar:
        batch = []
        while len(batch) < cfg.batch_size:
            if not order:
                order = list(range(len(encoded)))
                rng.shuffle(order)
            batch.append(encoded[order.pop()])
        m = learner.sft_step(batch)
        losses.append(m["loss"])
        bar.set_postfix(loss=f"{m['loss']:.4f}", lr=f"{m['lr']:.2e}")
    learner.export_hf(str(out_dir))
    tail = losses[-max(1, len(losses) // 10):]
    return {"steps": cfg.steps, "final_loss": sum(tail) / len(tail), "first_loss": losses[0],
            "train_s": time.perf_counter() - t0, "examples": len(examples),
            "kinds": {k: sum(1 for e in examples if e.kind == k) for k in sorted({e.kind for e in examples})}}


def evaluate_policy(model_dir: Path, problems: list[ArithProblem], max_new_tokens: int = 160) -> dict:
    """Greedy accuracy of a policy on arithmetic problems (vLLM, graded with math-verify)."""
    from spark_rl.engines.generator import Generator, GeneratorConfig
    from spark_rl.formats import extract_answer
    from spark_rl.grading import grade
    from spark_rl.tasks.arith import policy_prompt

    gen = Generator(GeneratorConfig(model_path=str(model_dir), max_model_len=512))
    outs = gen.greedy([policy_prompt(p) for p in problems], max_new_tokens=max_new_tokens)
    correct = [bool((a := extract_answer(o.text)) is not None and grade(a, str(p.answer)))
               for p, o in zip(problems, outs)]
    del gen
    return {"greedy_accuracy": sum(correct) / max(1, len(correct)), "n": len(correct)}


def evaluate_verifier(model_dir: Path, cfg: BootstrapConfig, n: int = 100) -> dict:
    """Greedy verifications of held-out solutions: how often the first flagged step is the true
    first error; and greedy critique -> merge of held-out verifications (half with a grading
    mistake): the same score before and after the two passes."""
    from spark_rl.engines.generator import Generator, GeneratorConfig
    from spark_rl.formats.verification import parse_verification
    problems = cfg.domain.problems(n, cfg.eval_seed() + 1)
    v = cfg.verifier
    examples = verifier_examples(problems, v.share_correct, 0.0, cfg.eval_seed(), v.stopped_early_share)
    gen = Generator(GeneratorConfig(model_path=str(model_dir), max_model_len=1024))

    def first_error_hits(texts: list[str], truths: list[str]) -> tuple[int, int]:
        hit = parsed = 0
        for text, truth_text in zip(texts, truths):
            truth = parse_verification(truth_text)
            got = parse_verification(text, expected_steps=len(truth.step_labels))
            parsed += int(got.ok)
            hit += int(got.ok and got.first_incorrect == truth.first_incorrect)
        return hit, parsed

    outs = gen.greedy([e.prompt for e in examples], max_new_tokens=400)
    hit, parsed = first_error_hits([o.text for o in outs], [e.response for e in examples])
    res = {"first_error_accuracy": hit / max(1, len(examples)), "parsed_share": parsed / max(1, len(examples)),
           "n": len(examples)}
    if v.meta_share > 0:
        meta = meta_critique_examples(problems, v.share_correct, 0.5, 0.0, cfg.eval_seed() + 2, v.stopped_early_share)
        crit, merge = meta[0::2], meta[1::2]
        truths = [m.response for m in merge]           # with an exact critique, merge yields the exact labels
        given = [m.prompt.split("Teacher Verification:\n")[1].split("\nCritique:")[0] for m in merge]
        critiques = gen.greedy([c.prompt for c in crit], max_new_tokens=200)
        # the held-out merge prompt with the model's own critique in place of the exact one
        merged = gen.greedy([m.prompt.split("Critique:\n")[0] + f"Critique:\n{c.text.strip()}\nImproved Verification:\n"
                             for m, c in zip(merge, critiques)], max_new_tokens=400)
        before, _ = first_error_hits(given, truths)
        after, merged_ok = first_error_hits([o.text for o in merged], truths)
        res["meta_critique"] = {"n": len(merge), "first_error_accuracy_before": before / max(1, len(merge)),
                                "first_error_accuracy_after": after / max(1, len(merge)),
                                "merged_parsed_share": merged_ok / max(1, len(merge))}
    del gen
    return res


def sft_examples(name: str, cfg: BootstrapConfig) -> list[SFTExample]:
    seed = cfg.model_seed(name)
    problems = cfg.domain.problems(cfg.section(name).train_problems, seed)
    if name == "policy":
        pol = cfg.policy
        return policy_examples(problems, pol.slip_share, seed, pol.lazy_share, pol.lazy_min_ops, pol.trailing_share)
    v = cfg.verifier
    n_meta = round(len(problems) * v.meta_share)
    # the verification traces come from the same problems as before meta-critique existed (a prefix)
    out = verifier_examples(problems[:len(problems) - n_meta], v.share_correct, v.label_noise, seed,
                            v.stopped_early_share, v.slip_weight)
    if n_meta:
        out += meta_critique_examples(problems[len(problems) - n_meta:], v.share_correct, v.meta_mistake_share,
                                      v.meta_ignored_critique, seed + 7, v.stopped_early_share)
        random.Random(seed).shuffle(out)
    return out


def _is_complete(model_dir: Path, key: str) -> bool:
    try:
        return (model_dir / ".complete").read_text().strip() == key
    except OSError:
        return False


def _obtain(label: str, key: str, shipped: Path, model_dir: Path, train, rebuild: bool,
            use_shipped: bool) -> tuple[Path, dict]:
    """The model `key` names: the shipped copy (unless `rebuild`), else the cached one, else
    `train(model_dir) -> stats`, marked complete with its key only once trained."""
    if not rebuild and use_shipped and _is_complete(shipped, key):
        model_dir = shipped
    elif rebuild and model_dir.exists():
        shutil.rmtree(model_dir)
    report_path = model_dir / "bootstrap_report.json"
    if _is_complete(model_dir, key):
        log.info("bootstrap %s: %s %s", label, "shipped with the package:" if model_dir == shipped else "cached at",
                 model_dir)
        return model_dir, json.loads(report_path.read_text()) if report_path.exists() else {}
    stats = train(model_dir)
    report_path.write_text(json.dumps(stats, indent=1))
    (model_dir / ".complete").write_text(key)
    return model_dir, stats


def _train_first_run(model_dir: Path, cfg: BootstrapConfig, name: str, policy: Path | None, progress: bool,
                     evaluate: bool) -> dict:
    """A model from the random base of its preset (the verifier with init_from=policy: from `policy`)."""
    init = policy if name == "verifier" and cfg.verifier.init_from == "policy" else base_model_dir(cfg.section(name).preset)
    stats = train_sft(sft_examples(name, cfg), cfg.section(name), init, model_dir, cfg.model_seed(name),
                      desc=f"bootstrap {name}", progress=progress)
    save_resolved(cfg, model_dir, "bootstrap.yaml")
    if evaluate:
        stats["eval"] = _evaluate(name, model_dir, cfg)
    return stats


def _train_slip_phase(model_dir: Path, cfg: BootstrapConfig, first_run, progress: bool, evaluate: bool) -> dict:
    """The verifier's second run, from its first run (`first_run() -> (folder, stats)`, found or
    trained only now that it is needed): the verifier's data settings with the phase's label noise;
    the phase's steps and learning rate; a batch order of its own."""
    from dataclasses import replace

    start, start_stats = first_run()
    ph = cfg.verifier.slip_phase
    examples = sft_examples("verifier", replace(cfg, verifier=replace(cfg.verifier, label_noise=ph.label_noise)))
    train_cfg = replace(cfg.verifier, steps=ph.steps, lr=ph.lr, warmup_steps=ph.warmup_steps)
    stats = train_sft(examples, train_cfg, start, model_dir, cfg.model_seed("verifier") + 100,
                      desc="bootstrap verifier (slip phase)", progress=progress)
    save_resolved(cfg, model_dir, "bootstrap.yaml")
    if evaluate:
        stats["eval"] = _evaluate("verifier", model_dir, cfg)
    return {**stats, "first_phase": start_stats}


def _evaluate(name: str, model_dir: Path, cfg: BootstrapConfig) -> dict:
    if name == "policy":
        return evaluate_policy(model_dir, cfg.domain.problems(cfg.eval_problems, cfg.eval_seed()))
    return evaluate_verifier(model_dir, cfg)


def bootstrap(cfg: BootstrapConfig, progress: bool = True, evaluate: bool = True, rebuild: bool = False,
              ship: bool = False) -> BootstrapResult:
    """Each model of `cfg.build`: the shipped one when its key matches (unless `rebuild`), else the
    cached one, else trained now; a verifier with a slip phase is trained from its first run's
    model, itself found or trained the same way. `ship` copies the result into the package's assets."""
    out = cfg.output_dir()
    out.mkdir(parents=True, exist_ok=True)
    find = partial(_obtain, rebuild=rebuild, use_shipped=not cfg.out_dir)
    built: dict[str, Path] = {}
    report: dict = {}
    for name in cfg.build:
        slips = cfg.has_slip_phase(name)
        train = partial(_train_first_run, cfg=cfg, name=name, policy=built.get("policy"), progress=progress,
                        evaluate=evaluate and not slips)
        if slips:
            first_run = partial(find, f"{name} (first run)", *cfg.locations(name, first_phase=True), train)
            train = partial(_train_slip_phase, cfg=cfg, first_run=first_run, progress=progress, evaluate=evaluate)
        model_dir, report[name] = find(name, *cfg.locations(name), train)
        shipped = cfg.shipped_dir(name)
        if ship and model_dir != shipped:
            if shipped.exists():
                shutil.rmtree(shipped)
            shutil.copytree(model_dir, shipped)
            log.info("bootstrap %s: shipped to %s", name, shipped)
        built[name] = model_dir
    return BootstrapResult(out, built.get("policy"), built.get("verifier"), report)
