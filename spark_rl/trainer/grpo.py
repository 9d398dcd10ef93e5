"""The GRPO driver: one step reads like the algorithm.

    prompts -> G samples each (rollout group) -> rewards (reward group) -> reference logprobs
    -> group advantages -> learner update -> weight sync -> metrics / checkpoint

The driver talks to actor *groups*, never to a fixed number of workers.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import ray
import torch

from actors.group import ActorGroup
from actors.learner import LearnerGroup
from actors.placement import bundle, engine_cores_env, worker_options
from actors.reference import ReferenceWorker
from actors.reward import PRMRewardWorker, RuleRewardWorker
from actors.rollout import rollout_group
from spark_rl.algos import grpo_loss, zero_variance_group_mask
from spark_rl.config.checks import freeze
from spark_rl.config.engines import ScorerConfig
from spark_rl.config.resources import ResourceSpec
from spark_rl.config.rl import RewardSection, RLConfig, parity_tolerance
from spark_rl.formats import extract_answer
from spark_rl.grading import grade
from spark_rl.rewards.agreement import prm_agreement
from spark_rl.rewards.base import RewardInput, sanitize
from spark_rl.rewards.hacking import hacking_indicators
from spark_rl.rewards.variants import reward_variant
from spark_rl.trainer.checkpoints import prune_checkpoints
from spark_rl.trainer.data import Problem, PromptStream
from spark_rl.trainer.elastic import ElasticController
from spark_rl.trainer.evaluation import EvalSettings, evaluate
from spark_rl.trainer.metrics import MetricsWriter, StepTimer
from spark_rl.trainer.rollout_batch import Sample, group_advantages, learner_samples, token_level_advantages

log = logging.getLogger(__name__)

PROBE_TEXT = "Start with 3. Add 4. Multiply by 2. <step>Step 1: 3 + 4 = 7</step>"


def sample_seed(run_seed: int, step: int) -> int:
    """Rollout sampling seed of a step: a pure function of (run seed, step), so a resumed run
    draws exactly the samples an uninterrupted one would."""
    return (run_seed * 1_000_003 + step * 7919) % (2**31 - 1)


def checkpoint_path(source: str | Path) -> Path | None:
    """The checkpoint `source` names: a checkpoint folder itself (`RUN/checkpoints/step_000010`)
    or a run folder (its latest checkpoint); None when the run has none yet."""
    src = Path(source)
    if (src / "state").is_dir():
        return src
    latest = src / "checkpoints" / "latest"
    return src / "checkpoints" / latest.read_text().strip() if latest.exists() else None


class GRPOTrainer:
    def __init__(self, cfg: RLConfig, policy_path: str, train: list[Problem], evalset: list[Problem]):
        self.cfg = freeze(cfg)      # what runs is what config.yaml says: live state lives on the groups
        self.run_dir = Path(cfg.run.output_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.policy_path = policy_path
        self.stream = PromptStream(train, seed=cfg.run.seed)
        self.evalset = evalset
        self.step = 0
        self.weights_version = 0
        self.metrics = MetricsWriter(self.run_dir, tensorboard=cfg.run.tensorboard, wandb=cfg.run.wandb, config=cfg)
        self.loss_fn = functools.partial(grpo_loss, cfg=cfg.grpo.loss)
        self._seed_everything(cfg.run.seed)

        rcfg = cfg.rollout
        engine = dataclasses.replace(rcfg.engine, model_path=policy_path)   # the config stays as loaded
        colocate = cfg.reference.resources if cfg.reference.colocate_with_learner else None
        with_reference = cfg.grpo.loss.kl_coef > 0      # the KL term is the reference policy's only use
        self.reference_in_learner = with_reference and cfg.reference.in_learner
        # the groups by name; the elastic controller resizes them and replaces the reward group
        self.groups: dict[str, ActorGroup | None] = {"rollout": None, "reward": None, "reference": None}
        self.learner: LearnerGroup | None = None

        def learner_and_colocated_reference():
            self.learner = LearnerGroup(policy_path, cfg.learner.engine, cfg.learner.num_ranks,
                                        cfg.learner.resources, colocate=colocate)
            if self.reference_in_learner:
                self.learner.call_all("attach_reference", self._reference_scorer_config())
            elif colocate is not None and with_reference:
                self.groups["reference"] = self._make_reference_group()

        def rollout():
            self.groups["rollout"] = rollout_group("rollout", engine, rcfg.resources, rcfg.num_workers,
                                                   on_new_worker=lambda h: self.sync_weights([h]),
                                                   **self._elastic_settings(rcfg.resources))

        def reference():
            self.groups["reference"] = self._make_reference_group()

        def reward():
            self.groups["reward"] = self._make_reward_group(cfg.reward)

        starts = [learner_and_colocated_reference, rollout, reward]
        if with_reference and colocate is None and not self.reference_in_learner:
            starts.append(reference)
        self._start_all(starts)
        self.tokenizer = None
        self.last_batch = None      # (problems, samples) of the step that just ran: its accounting
        # scaling, reward swap, health checks between steps
        self.elastic = ElasticController(cfg, self.groups, self, self._make_reward_group, self.run_dir)

    rollout = property(lambda self: self.groups["rollout"])
    reward = property(lambda self: self.groups["reward"])
    reference = property(lambda self: self.groups["reference"])

    def _elastic_settings(self, resources: ResourceSpec | None) -> dict:
        """ActorGroup settings of a worker group: replacement limits, and one worker's demand."""
        e = self.cfg.elastic
        return {"max_replacements": e.max_replacements, "replace_timeout_s": e.replace_timeout_s,
                "demand": bundle(resources) if resources is not None else None}

    def _start_all(self, starts: list) -> None:
        """Run the group starts at once: each is seconds of worker processes importing torch and
        building an engine, and one start leaves cores idle while it waits on Ray. When one fails,
        what the others started is shut down before the error goes up, so a rebuilt run (the
        supervisor) finds the cluster as free as the first try did."""
        with ThreadPoolExecutor(max_workers=len(starts), thread_name_prefix="group-start") as pool:
            futures = [pool.submit(start) for start in starts]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            self.shutdown()
            raise errors[0]

    def _reference_scorer_config(self) -> ScorerConfig:
        cfg = self.cfg
        return ScorerConfig(model_path=self.policy_path, dtype=cfg.learner.engine.dtype,
                            micro_batch_tokens=cfg.reference.micro_batch_tokens, device=cfg.reference.device)

    def _make_reference_group(self) -> ActorGroup:
        """Reference workers (the frozen start policy's logprobs for the KL term): one per learner
        rank in its placement bundle when colocated, else a group of its own."""
        cfg = self.cfg
        scfg = self._reference_scorer_config()
        if cfg.reference.colocate_with_learner:   # placed in the learner ranks' bundles: no demand of its own
            ref_opts, n_ref, ref_res = self.learner.colocated_options, cfg.learner.num_ranks, None
        else:
            ref_opts, n_ref = (lambda i: worker_options(cfg.reference.resources)), cfg.reference.num_workers
            ref_res = cfg.reference.resources
        return ActorGroup("reference", lambda i: ReferenceWorker.options(**ref_opts(i)).remote(scfg, i), n_ref,
                          **self._elastic_settings(ref_res))

    def _make_reward_group(self, section: RewardSection) -> ActorGroup:
        """The reward group a `RewardSection` describes (model-free rule/random workers, or PRM
        workers on vLLM or a remote endpoint); the driver only ever calls `score` on it."""
        rc = section
        if rc.needs_prm and not rc.prm.model_path and not rc.prm.remote.url:
            raise ValueError(f"reward.kind={rc.kind} needs reward.prm.model_path (a PRM HF folder) "
                             "or reward.prm.remote.url")
        worker = PRMRewardWorker if rc.needs_prm else RuleRewardWorker

        def make(i):
            env = engine_cores_env(rc.resources, i) if rc.needs_prm else None   # PRM workers run vLLM
            return worker.options(**worker_options(rc.resources, env)).remote(rc, i)

        return ActorGroup("reward", make, rc.num_workers, spec=section, **self._elastic_settings(rc.resources))

    @staticmethod
    def _seed_everything(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    # ---- one GRPO step -----------------------------------------------------------------------
    def train_step(self) -> dict:
        g = self.cfg.grpo
        timer = StepTimer()
        problems = self.stream.next_batch(g.prompts_per_step)
        with timer.section("generate"):
            samples = self.generate(problems, sample_seed(self.cfg.run.seed, self.step))
        with timer.section("reward"):
            reward_metrics = self.score(problems, samples)
        self.last_batch = problems, samples
        with timer.section("reference"):
            self.reference_logprobs(samples)
        advantages = group_advantages(samples, g.advantage)
        shaping = self.shape_advantages(samples, advantages)
        update = samples, advantages
        if g.filter_zero_variance:
            update = self._drop_flat_groups(samples, advantages)
        with timer.section("train"):
            train_metrics = self.learner.pg_step(learner_samples(*update), self.loss_fn, epochs=g.epochs)
        with timer.section("sync"):
            sync = self.sync_weights()
        self.step += 1
        metrics = {**self._rollout_metrics(samples), **{f"train/{k}": v for k, v in train_metrics.items()},
                   **reward_metrics,
                   **{f"shaping/{k}": v for k, v in shaping.items()},
                   **hacking_indicators([s.response_text for s in samples]),
                   **prm_agreement([s.prm_verdict for s in samples], [s.correct for s in samples]),
                   "sync/bytes": sync.get("bytes", 0), **timer.summary()}
        if sync.get("parity") is not None:
            metrics["sync/max_abs_logprob_diff"] = sync["parity"]
        return metrics

    # ---- the pieces ------------------------------------------------------------------------
    def generate(self, problems: list[Problem], seed: int) -> list[Sample]:
        g = self.cfg.grpo
        groups = self.rollout.map_shards("generate", [p.prompt for p in problems], n=g.group_size,
                                         temperature=g.temperature, top_p=g.top_p,
                                         max_new_tokens=g.max_new_tokens, seed=seed, logprobs=False,
                                         offset_kwarg="seed_offset")   # no sampler logprobs: the learner computes its own
        samples = []
        for gi, completions in enumerate(groups):
            for c in completions:
                samples.append(Sample(group=gi, prompt_ids=c.prompt_token_ids, response_ids=c.token_ids,
                                      response_text=c.text, finish_reason=c.finish_reason))
        return samples

    def score(self, problems: list[Problem], samples: list[Sample]) -> dict[str, float]:
        """Rewards onto the samples; returns the step's reward metrics: the count of each reason, and
        how many PRM verifications were reused for a repeated response (`reward/prm_reused`)."""
        inputs = [RewardInput(sample_id=f"{self.step}-{i}", problem=problems[s.group].question,
                              response=s.response_text, answer=problems[s.group].answer)
                  for i, s in enumerate(samples)]
        outputs, counts = sanitize(self.reward.map_shards("score", inputs), len(samples))
        for s, o in zip(samples, outputs):
            s.reward, s.reward_reason = float(o.reward), o.reason
            s.step_labels = o.step_labels
            s.prm_verdict = o.info.get("verdict")      # None for rule rewards and unjudged samples
            pred = extract_answer(s.response_text)
            # Validation signal: always the ground truth, whatever the training reward is.
            s.correct = pred is not None and grade(pred, problems[s.group].answer)
        metrics = {f"reward_reason/{k}": v for k, v in counts.items()}
        if any("prm_reused" in o.info for o in outputs):
            metrics["reward/prm_reused"] = sum(bool(o.info.get("prm_reused")) for o in outputs)
        return metrics

    def shape_advantages(self, samples: list[Sample], advantages: torch.Tensor) -> dict[str, int]:
        """Token-level variants spread the sequence advantage over tokens with the PRM's step verdicts
        (set on the samples); returns the counts of where that step part applied."""
        rc = self.reward.spec   # the reward section the reward group runs (a swap changes it)
        if not reward_variant(rc.variant).token_level:
            return {}
        tok = self._policy_tokenizer()
        return token_level_advantages(rc.variant, samples, advantages,
                                      lambda ids: tok.decode(ids, skip_special_tokens=True),
                                      global_step_mix=rc.params.global_step_mix)

    def _policy_tokenizer(self):
        if self.tokenizer is None:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.policy_path)
        return self.tokenizer

    def reference_logprobs(self, samples: list[Sample]) -> None:
        seqs = [s.input_ids for s in samples]
        if self.reference is not None:
            full = self.reference.map_shards("logprobs", seqs)
        elif self.reference_in_learner:
            full = self.learner.reference_logprobs(seqs)
        else:
            return
        for s, lp in zip(samples, full):
            s.ref_logprobs = lp[len(s.prompt_ids) - 1:]

    def _drop_flat_groups(self, samples, advantages):
        rewards = torch.tensor([s.reward for s in samples])
        groups = torch.tensor([s.group for s in samples])
        keep = ~zero_variance_group_mask(rewards, groups)
        idx = [i for i, k in enumerate(keep.tolist()) if k]
        return [samples[i] for i in idx], advantages[idx]

    def sync_weights(self, handles: list | None = None) -> dict:
        """Learner -> rollout workers (all of them, or the given new ones), then a parity probe."""
        g = self.cfg.grpo
        def push(targets):
            stats = self.learner.push_weights(targets, bucket_bytes=g.sync_bucket_mb << 20, version=self.weights_version)
            stats["parity"] = self.parity(targets[0]) if g.parity_check else None
            return stats

        if handles is None:
            self.weights_version += 1
            # a worker that dies during the push or the parity probe is replaced, not fatal
            stats = self.rollout.with_live_workers(push)
        else:
            stats = push(handles)
        tol = parity_tolerance(self.cfg)   # follows the dtype: bf16 engines round differently
        if stats["parity"] is not None and stats["parity"] > tol:
            raise RuntimeError(f"weight sync parity check failed: max |logprob diff| {stats['parity']:.2e} "
                               f"> {tol:.0e} (grpo.parity_tolerance)")
        return stats

    def parity(self, handle) -> float:
        seq = self._policy_tokenizer()(PROBE_TEXT, add_special_tokens=False)["input_ids"]
        got = ray.get(handle.sequence_logprobs.remote([seq]))[0]
        ref = self.learner.compute_logprobs([seq])[0]
        return float(np.max(np.abs(np.array(got) - np.array(ref))))

    def evaluate(self, problems: list[Problem] | None = None) -> dict:
        """Greedy accuracy on the held-out problems (graded against the ground truth)."""
        problems = self.evalset if problems is None else problems
        if not problems:
            return {}
        # no progress bar between steps, so one dispatch (chunks would only add vLLM calls)
        settings = EvalSettings(k=1, max_new_tokens=self.cfg.grpo.eval_max_new_tokens, chunk=len(problems))
        summary = evaluate(self.rollout, problems, settings, progress=False)
        return {"eval/accuracy": summary["pass@1_greedy"], "eval/n": summary["n"]}

    def _rollout_metrics(self, samples: list[Sample]) -> dict:
        r = np.array([s.reward for s in samples], dtype=np.float64)
        lens = np.array([len(s.response_ids) for s in samples], dtype=np.float64)
        groups: dict[int, list[float]] = {}
        for s in samples:
            groups.setdefault(s.group, []).append(s.reward)
        flat = sum(1 for v in groups.values() if max(v) == min(v))
        return {
            "reward/mean": float(r.mean()), "reward/std": float(r.std()),
            "rollout/accuracy": float(np.mean([s.correct for s in samples])),
            "rollout/response_len": float(lens.mean()),
            "rollout/truncated_share": float(np.mean([s.finish_reason == "length" for s in samples])),
            "rollout/zero_variance_group_share": flat / max(1, len(groups)),
            "rollout/samples": len(samples),
        }

    # ---- checkpoints -----------------------------------------------------------------------
    def checkpoint(self) -> Path:
        path = self.run_dir / "checkpoints" / f"step_{self.step:06d}"
        state = {"step": self.step, "weights_version": self.weights_version, "stream": self.stream.state(),
                 "py_random": random.getstate(), "np_random": np.random.get_state(),
                 "torch_random": torch.get_rng_state()}
        self.learner.save_checkpoint(str(path), state)
        (self.run_dir / "checkpoints" / "latest").write_text(path.name)
        prune_checkpoints(self.run_dir / "checkpoints", self.cfg.run.keep_checkpoints)
        return path

    def resume(self, source: str | Path | None = None) -> bool:
        """Continue from a checkpoint: `source` is a run folder (its latest checkpoint) or one
        checkpoint folder (`RUN/checkpoints/step_000010`); default this run's folder. Restores
        learner, optimizer, scheduler, data position, RNG states and step counter, then syncs the
        rollout workers. False when the run folder has no checkpoint yet."""
        path = checkpoint_path(source or self.run_dir)
        if path is None:
            return False
        state = self.learner.load_checkpoint(str(path))
        self.step = state["step"]
        self.weights_version = state["weights_version"]
        self.stream.restore(state["stream"])
        random.setstate(state["py_random"])
        np.random.set_state(state["np_random"])
        torch.set_rng_state(state["torch_random"])
        self.metrics.truncate_after(self.step)
        self.sync_weights()
        log.info("resumed from %s at step %d", path, self.step)
        return True

    # ---- the loop --------------------------------------------------------------------------
    def fit(self, progress: bool = True) -> list[dict]:
        from tqdm import tqdm

        g = self.cfg.grpo
        history = []
        if self.step == 0:
            self.sync_weights()   # rollout engines start from the learner's exact weights
            if g.eval_every:
                ev = self.evaluate()
                self.metrics.write(0, ev)
                history.append({"step": 0, **ev})
        bar = tqdm(total=g.steps, initial=self.step, desc="grpo", disable=not progress, dynamic_ncols=True)
        while self.step < g.steps:
            t = time.perf_counter()
            self.elastic.before_step()
            m = self.train_step()
            m.update(self.elastic.step_metrics(*self.last_batch, self.stream.state()))
            if g.eval_every and (self.step % g.eval_every == 0 or self.step == g.steps):
                m.update(self.evaluate())
            if g.checkpoint_every and (self.step % g.checkpoint_every == 0 or self.step == g.steps):
                self.checkpoint()
            m["time/wall_s"] = time.perf_counter() - t
            self.metrics.write(self.step, m)
            history.append({"step": self.step, **m})
            self.elastic.write_status()
            bar.update(1)
            bar.set_postfix(reward=f"{m['reward/mean']:.3f}", acc=f"{m['rollout/accuracy']:.3f}",
                            kl=f"{m.get('train/kl', 0.0):.4f}", len=f"{m['rollout/response_len']:.0f}")
        bar.close()
        self.elastic.write_status("finished")
        (self.run_dir / "final.json").write_text(json.dumps(history[-1] if history else {}, indent=1))
        if self.cfg.run.export_final:
            self.learner.export_hf(str(self.run_dir / "final_policy"))
        return history

    def shutdown(self) -> None:
        self.metrics.close()
        if self.learner is not None:
            self.learner.shutdown()
        for grp in self.groups.values():
            if grp is not None:
                grp.kill_all()
