"""SPARK Stage 1 (`spark-rl synthesize`): synthetic process-supervision data.

Per shard of problems: the generator samples n solutions per problem -> (optional) curation keeps
problems with both correct and incorrect solutions, capped -> the verifier writes N independent
verifications per solution (reference-free) and N_ref with the expected answer (reference-guided).
Raw shards are written atomically and skipped on a re-run, so a crash loses at most one shard.
Then, shard by shard again, the meta-critique passes (sequential scaling): a greedy critique of a
chosen verification and a greedy merge into one improved verification, over the first
verification ("base") and the outcome-consistency pick ("outcome"); these shards have their own
fingerprint (raw + aggregation + meta-critique settings), so changing them redoes only this part.
The variant datasets are then built from the shards by parsing and aggregation alone.

Lanes (`lanes`) run shards side by side, each shard whole on one lane's generator and verifier
workers. What a shard computes depends on its prompts, seeds and engine settings only, not on the
engine's earlier batches, so its file is the same byte for byte whichever lane runs it and however
many there are (measured on the demo: 6 shards, 1 lane vs 2, and shards rerun on a fresh engine).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from spark_rl.config import config_hash
from spark_rl.config.synthesize import (  # noqa: F401  (the schema, re-exported where it was defined before)
    DATASET_VARIANTS,
    META_BASES,
    CurationSection,
    GeneratorPass,
    MetaCritiqueSection,
    ModelsSection,
    SynthDataSection,
    SynthesizeConfig,
    VerifierPass,
)

log = logging.getLogger(__name__)

def load_problems(data: SynthDataSection) -> list[tuple]:
    """(Problem, exact-label source or None) pairs of the data section."""
    from spark_rl.trainer.data import arith_problem, benchmark_problems

    if data.benchmark:
        return [(p, None) for p in benchmark_problems(data.benchmark, limit=data.n_problems)]
    return [(arith_problem(p), p) for p in data.domain.problems(data.n_problems, data.seed)]


# ---- pure steps ------------------------------------------------------------------------------
def curate(solutions: list[dict], cfg: CurationSection, rng: random.Random) -> tuple[list[dict], str]:
    """Keep up to max_correct + max_incorrect solutions of a problem that has both kinds."""
    if not cfg.enabled:
        return solutions, "kept"
    good = [s for s in solutions if s["answer_correct"]]
    bad = [s for s in solutions if not s["answer_correct"]]
    if not good or not bad:
        return [], "all_correct" if good else "all_incorrect"
    rng.shuffle(good)
    rng.shuffle(bad)
    kept = good[:cfg.max_correct] + bad[:cfg.max_incorrect]
    return sorted(kept, key=lambda s: s["sample_index"]), "kept"


def solution_record(problem, arith, index: int, text: str) -> dict | None:
    """A policy solution with its steps and the verifier's view of it; graded by the exact checker
    (with true step labels) on the arithmetic domain, by math-verify elsewhere (no step labels)."""
    from spark_rl.formats import extract_answer, split_steps
    from spark_rl.grading import grade
    from spark_rl.tasks.arith import check_solution
    from spark_rl.verification.prompts import present_solution

    steps = split_steps(text).steps
    if not steps:
        return None
    if arith is not None:
        check = check_solution(arith, text)
        answer, correct, truth = check.answer, bool(check.answer_correct), [bool(x) for x in check.step_correct]
    else:
        answer = extract_answer(text)
        correct, truth = bool(answer is not None and grade(answer, problem.answer)), None
    return {"sample_index": index, "text": text, "steps": steps, "shown": present_solution(steps, answer),
            "answer": answer, "answer_correct": correct, "true_labels": truth[:len(steps)] if truth else None}


# ---- the driver ------------------------------------------------------------------------------
@dataclass
class Lane:
    """The generator and verifier workers that run one shard at a time (`SynthesizeConfig.lanes`)."""
    gen: object                     # ActorGroup
    ver: object


class Synthesizer:
    def __init__(self, cfg: SynthesizeConfig, policy: str, verifier: str, progress: bool = True):
        from actors.group import ActorGroup
        from spark_rl.pipelines.shards import ShardStore

        self.cfg, self.policy, self.verifier, self.progress = cfg, policy, verifier, progress
        self.out = Path(cfg.output_dir)
        self.problems = load_problems(cfg.data)
        n_shards = min(cfg.shards, len(self.problems))
        self.store = ShardStore(self.out, "raw", cfg.raw_fingerprint(), n_shards)
        self.meta_store = ShardStore(self.out, "meta", cfg.meta_fingerprint(), n_shards) if cfg.meta_critique.bases else None
        self._bar_lock = threading.Lock()
        # every group starts at once: each start is seconds of a worker importing torch and building
        # an engine, on its own core when the lanes have core lists
        n = min(cfg.lanes, n_shards)
        starts = [(name, section, model, lane) for lane in range(n) for name, section, model in
                  (("generator", cfg.generator, policy), ("verifier", cfg.verifier, verifier))]
        with ThreadPoolExecutor(max_workers=len(starts), thread_name_prefix="synth-start") as pool:
            futures = [pool.submit(self._start_group, *args, n) for args in starts]
        groups: list[ActorGroup] = [f.result() for f in futures if f.exception() is None]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            for g in groups:
                g.kill_all()
            raise errors[0]
        self.lanes = [Lane(groups[2 * i], groups[2 * i + 1]) for i in range(n)]

    def _start_group(self, name: str, section, model: str, lane: int, n_lanes: int):
        from dataclasses import replace

        from actors.rollout import rollout_group

        return rollout_group(name if n_lanes == 1 else f"{name}-{lane}",
                             replace(section.engine, model_path=model, seed=self.cfg.seed), section.resources,
                             section.workers, first_core_entry=lane * section.workers)

    def run_shard(self, lane: Lane, shard: int, start: int, end: int) -> list[dict]:
        from spark_rl.verification.prompts import verifier_prompt

        cfg, problems = self.cfg, self.problems[start:end]
        g = cfg.generator
        outs = lane.gen.map_shards("generate", [p.prompt for p, _ in problems], n=g.n,
                                   temperature=g.temperature, top_p=g.top_p, max_new_tokens=g.max_new_tokens,
                                   seed=cfg.seed * 1_000_003 + start * 101, logprobs=False)
        rng = random.Random(cfg.seed * 7919 + shard)
        rows, jobs = [], []
        for (p, arith), group in zip(problems, outs):
            sols = [r for j, c in enumerate(group) if (r := solution_record(p, arith, j, c.text)) is not None]
            kept, why = curate(sols, cfg.curation, rng)
            rows.append({"problem_id": p.id, "question": p.question, "gold": str(p.answer), "curation": why,
                         "generated": len(group), "no_steps": len(group) - len(sols), "solutions": kept})
            for s in kept:
                jobs.append((s, verifier_prompt(p.question, s["shown"]),
                             verifier_prompt(p.question, s["shown"], expected_answer=str(p.answer))))
        v = cfg.verifier
        if jobs:
            kw = dict(temperature=v.temperature, top_p=v.top_p, max_new_tokens=v.max_new_tokens, logprobs=False)
            free = lane.ver.map_shards("generate", [j[1] for j in jobs], n=v.n, seed=cfg.seed + 17 * start, **kw)
            ref = (lane.ver.map_shards("generate", [j[2] for j in jobs], n=v.reference_n,
                                       seed=cfg.seed + 31 * start, **kw) if v.reference_n else [[]] * len(jobs))
            for (s, _, _), f, r in zip(jobs, free, ref):
                s["verifications"] = [c.text for c in f]
                s["reference_verifications"] = [c.text for c in r]
        return rows

    def run_meta_shard(self, lane: Lane, raw_rows: list[dict]) -> list[dict]:
        """Greedy critique -> merge rounds over each solution's chosen verifications."""
        from spark_rl.verification.aggregate import aggregate
        from spark_rl.verification.prompts import critique_prompt, merge_prompt

        m = self.cfg.meta_critique
        chains = []          # (row index, sample_index, base, question, shown, current text)
        for r in raw_rows:
            for sol in r["solutions"]:
                for base in m.bases:
                    if base == "base":
                        text = sol["verifications"][0]
                    else:
                        text = aggregate(sol["verifications"], len(sol["steps"]), "outcome", self.cfg.aggregation,
                                         steps=sol["steps"]).target_text
                    if text is not None:
                        chains.append({"problem_id": r["problem_id"], "sample_index": sol["sample_index"],
                                       "base": base, "q": r["question"], "shown": sol["shown"], "start": text,
                                       "critiques": [], "merged": []})
        for _ in range(m.rounds):
            if not chains:
                break
            current = [c["merged"][-1] if c["merged"] else c["start"] for c in chains]
            crit = self._greedy(lane, [critique_prompt(c["q"], c["shown"], t) for c, t in zip(chains, current)],
                                m.critique_max_new_tokens)
            merged = self._greedy(lane, [merge_prompt(c["q"], c["shown"], t, k) for c, t, k in zip(chains, current, crit)],
                                  m.merge_max_new_tokens)
            for c, k, t in zip(chains, crit, merged):
                c["critiques"].append(k)
                c["merged"].append(t)
        return [{k: v for k, v in c.items() if k not in ("q", "shown")} for c in chains]

    def _greedy(self, lane: Lane, prompts: list[str], max_new_tokens: int) -> list[str]:
        outs = lane.ver.map_shards("generate", prompts, n=1, temperature=0.0, max_new_tokens=max_new_tokens,
                                   logprobs=False)
        return [o[0].text for o in outs]

    def _over_lanes(self, shards: list[int], work, bar) -> None:
        """`work(lane, shard)` for every shard, each lane taking the next one when it is free. A
        failure stops the lanes after their current shard (finished shards stay on disk for the
        re-run) and is raised."""
        todo, lock, failed = list(shards), threading.Lock(), threading.Event()

        def loop(lane: Lane) -> None:
            while not failed.is_set():
                with lock:
                    if not todo:
                        return
                    shard = todo.pop(0)
                try:
                    work(lane, shard)
                except BaseException:
                    failed.set()
                    raise
                with self._bar_lock:
                    bar.update(1)

        lanes = self.lanes[:max(1, len(todo))]
        if len(lanes) == 1:             # in this thread: a plain traceback, nothing to coordinate
            return loop(lanes[0])
        with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="synth-lane") as pool:
            futures = [pool.submit(loop, lane) for lane in lanes]
        for f in futures:
            f.result()

    def run(self) -> dict:
        from tqdm import tqdm

        from spark_rl.pipelines.shards import shard_ranges

        t0 = time.perf_counter()
        ranges = shard_ranges(len(self.problems), self.store.n_shards)
        stores = [self.store] + ([self.meta_store] if self.meta_store else [])
        todo = sum(len(st.pending()) for st in stores)
        total = len(ranges) * len(stores)
        bar = tqdm(total=total, initial=total - todo, desc="synthesize shards", disable=not self.progress,
                   dynamic_ncols=True)
        self._over_lanes(self.store.pending(),
                         lambda lane, shard: self.store.write(shard, self.run_shard(lane, shard, *ranges[shard])), bar)
        raw_s = time.perf_counter() - t0
        if self.meta_store:
            self._over_lanes(self.meta_store.pending(),
                             lambda lane, shard: self.meta_store.write(shard, self.run_meta_shard(
                                 lane, self.store.read(shard))), bar)
        bar.close()
        return {"raw_s": raw_s, "meta_s": time.perf_counter() - t0 - raw_s, "shards": len(ranges),
                "shard_passes_run": todo, "lanes": len(self.lanes)}

    def shutdown(self) -> None:
        for lane in self.lanes:
            lane.gen.kill_all()
            lane.ver.kill_all()


def meta_labels(chain: dict | None, n_steps: int) -> tuple[list[bool] | None, bool | None, str]:
    """Labels and final verdict of a chain's last merged verification, or None and why not."""
    from spark_rl.formats.verification import parse_verification

    if chain is None:
        return None, None, "no_base"
    parsed = parse_verification(chain["merged"][-1], expected_steps=n_steps)
    if not parsed.ok:
        return None, None, f"unparsable:{parsed.flags[0]}"
    return [bool(x) for x in parsed.step_labels], bool(parsed.final), "merged"


def _index_meta(meta_rows: list[dict]) -> dict[tuple, dict]:
    return {(m["problem_id"], m["sample_index"], m["base"]): m for m in meta_rows}


def build_variants(rows: list[dict], cfg: SynthesizeConfig,
                   meta_rows: list[dict] = ()) -> tuple[dict[str, list[dict]], dict]:
    """The Stage 1 datasets from raw rows: one verification ("single"), outcome- and step-level
    self-consistency over N, the reference-guided variant (step-level over N_ref), and the
    meta-critique variants (the last merged verification of each chain, when it parses)."""
    from collections import Counter

    from spark_rl.formats.verification import parse_verification
    from spark_rl.verification.aggregate import aggregate, summarize

    provenance = {"policy": cfg.models.policy_path, "verifier": cfg.models.verifier_path, "seed": cfg.seed,
                  "n": cfg.verifier.n, "reference_n": cfg.verifier.reference_n,
                  "temperature": cfg.verifier.temperature, "meta_rounds": cfg.meta_critique.rounds,
                  "config_hash": config_hash(cfg)}
    meta = _index_meta(list(meta_rows))
    out: dict[str, list[dict]] = {v: [] for v in DATASET_VARIANTS}
    aggs: dict[str, list] = {v: [] for v in DATASET_VARIANTS}
    meta_counts: dict[str, Counter] = {b: Counter() for b in cfg.meta_critique.bases}
    for row in rows:
        for s in row["solutions"]:
            n_steps = len(s["steps"])
            plans = {"single": (s["verifications"][:1], "step"), "outcome-consistency": (s["verifications"], "outcome"),
                     "step-consistency": (s["verifications"], "step"),
                     "reference-guided": (s.get("reference_verifications") or [], "step")}
            records = {}
            for variant, (texts, level) in plans.items():
                if not texts:
                    continue
                a = aggregate(texts, n_steps, level, cfg.aggregation, steps=s["steps"])
                aggs[variant].append(a)
                if a.target_text is None:
                    continue
                labels = a.labels
                if variant == "single":
                    parsed = parse_verification(texts[0], expected_steps=n_steps)
                    labels = [bool(x) for x in parsed.step_labels]
                records[variant] = {
                    "target": a.target_text, "labels": labels, "final": a.final,
                    "votes_correct": [c for c, _ in a.votes.step_votes], "votes_incorrect": [i for _, i in a.votes.step_votes],
                    "final_votes_yes": a.votes.final_votes[0], "final_votes_no": a.votes.final_votes[1],
                    "selection": a.reason}
            for base in cfg.meta_critique.bases:
                chain = meta.get((row["problem_id"], s["sample_index"], base))
                labels, final, why = meta_labels(chain, n_steps)
                meta_counts[base][why] += 1
                if labels is None:
                    continue
                start = parse_verification(chain["start"], expected_steps=n_steps)
                meta_counts[base]["changed_labels"] += int([bool(x) for x in start.step_labels] != labels)
                records[f"meta-critique-{base}"] = {
                    "target": chain["merged"][-1], "labels": labels, "final": final, "votes_correct": [],
                    "votes_incorrect": [], "final_votes_yes": 0, "final_votes_no": 0, "selection": why,
                    "critiques": chain["critiques"]}
            for variant, rec in records.items():
                out[variant].append({
                    "problem_id": row["problem_id"], "problem": row["question"], "solution": s["shown"],
                    "steps": s["steps"], **{k: v for k, v in rec.items() if k != "critiques"},
                    "critiques": rec.get("critiques", []), "true_labels": s["true_labels"], "variant": variant,
                    "provenance": json.dumps(provenance)})
    selection = {v: summarize(a) for v, a in aggs.items() if a}
    selection.update({f"meta-critique-{b}": dict(c) for b, c in meta_counts.items()})
    return out, selection


def quality_report(rows: list[dict], cfg: SynthesizeConfig, meta_rows: list[dict] = ()) -> list[dict]:
    """F1 / step accuracy of the labels each variant produces, against the exact labels, for N in report_ns."""
    from spark_rl.pipelines.quality import label_quality, majority_labels, scaling_rows

    sols = [(r["problem_id"], s) for r in rows for s in r["solutions"] if s["true_labels"] is not None]
    if not sols:
        return []
    texts = [s["verifications"] for _, s in sols]
    steps = [s["steps"] for _, s in sols]
    truth = [s["true_labels"] for _, s in sols]
    table = scaling_rows(texts, steps, truth, list(cfg.report_ns), cfg.aggregation)
    if cfg.verifier.reference_n:
        preds = [majority_labels(s["reference_verifications"], s["steps"], "step", cfg.aggregation) for _, s in sols]
        table.append({**label_quality(preds, truth), "variant": "reference-guided", "n": cfg.verifier.reference_n})
    meta = _index_meta(list(meta_rows))
    for base in cfg.meta_critique.bases:
        preds = [meta_labels(meta.get((pid, s["sample_index"], base)), len(s["steps"]))[0] for pid, s in sols]
        table.append({**label_quality(preds, truth), "variant": f"meta-critique-{base}",
                      "n": 1 if base == "base" else cfg.verifier.n})
    return table


def resolve_models(cfg: SynthesizeConfig) -> SynthesizeConfig:
    """`cfg` with empty model paths filled by the bootstrap's policy and verifier (built first when
    not cached): the config the run records is the one that ran."""
    from dataclasses import replace

    from spark_rl.trainer.model_paths import resolve_model_paths

    m = cfg.models
    paths = resolve_model_paths({"policy": m.policy_path, "verifier": m.verifier_path}, m.bootstrap_config)
    return replace(cfg, models=replace(m, policy_path=paths["policy"], verifier_path=paths["verifier"]))


def synthesize(cfg: SynthesizeConfig, progress: bool = True) -> dict:
    """Raw shards (resumable) -> variant datasets (HF, `save_to_disk`) -> quality report (JSON, PNG)."""
    from datasets import Dataset

    from actors.cluster import init_ray
    from spark_rl.config import save_resolved
    from spark_rl.pipelines.quality import format_table, plot_f1_vs_n

    cfg = resolve_models(cfg)
    out = Path(cfg.output_dir)
    save_resolved(cfg, out)
    init_ray(cfg.cluster)
    synth = Synthesizer(cfg, cfg.models.policy_path, cfg.models.verifier_path, progress=progress)
    try:
        timing = synth.run()
    finally:
        synth.shutdown()
    rows = synth.store.rows()
    meta_rows = synth.meta_store.rows() if synth.meta_store else []
    variants, selection = build_variants(rows, cfg, meta_rows)
    for name, recs in variants.items():
        path = out / "datasets" / name
        Dataset.from_list(recs).save_to_disk(str(path)) if recs else path.mkdir(parents=True, exist_ok=True)
    table = quality_report(rows, cfg, meta_rows)
    curation: dict[str, int] = {}
    for r in rows:
        curation[r["curation"]] = curation.get(r["curation"], 0) + 1
    report = {**timing, "problems": len(rows), "curation": curation,
              "solutions": sum(len(r["solutions"]) for r in rows),
              "solutions_without_steps": sum(r["no_steps"] for r in rows),
              "dataset_sizes": {k: len(v) for k, v in variants.items()}, "selection": selection, "quality": table}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    if table:
        plot_f1_vs_n(table, out / "f1_vs_n.png")
        print(format_table(table))
    return report
