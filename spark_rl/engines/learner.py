"""`Learner`: one data-parallel rank of DeepSpeed training (ZeRO 0-3, fp32/bf16, gloo or nccl).

Each call to `sft_step`/`pg_step` gets THIS rank's share of a global batch and makes one
optimizer step. Losses are normalised by counts over the global batch (all-reduced), and each
loss is multiplied by the world size before backward because DeepSpeed averages gradients over
ranks: the update is then the same whatever the number of ranks or micro-batches.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from spark_rl.config.engines import LearnerConfig
from spark_rl.engines.collectives import all_max, all_sum, collective_device
from spark_rl.engines.logprobs import (
    batch_logprobs,
    length_grouped_chunks,
    load_causal_lm,
    pad_batch,
    token_logprobs,
)
from spark_rl.engines.threads import set_cpu_threads

log = logging.getLogger(__name__)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "generation_config.json", "chat_template.jinja")


def lr_lambda(cfg: LearnerConfig) -> Callable[[int], float]:
    def f(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.decay_steps:
            t = min(1.0, (step - cfg.warmup_steps) / cfg.decay_steps)
            return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))
        return 1.0
    return f


def _forget_stale_deepspeed_groups() -> None:
    """DeepSpeed caches process groups in module globals (e.g. its clone of the world group) and
    never drops them when the world they belong to is destroyed. A process that builds a second
    learner after that (one test session that trains twice, a rebuilt run) would hand DeepSpeed a
    group of the dead world ("Group ... is not registered"). Forget those; DeepSpeed re-creates
    them on the live world."""
    from deepspeed.utils import groups
    from torch.distributed import ProcessGroup, distributed_c10d

    live = getattr(distributed_c10d, "_world", None)
    registered = getattr(live, "pg_group_ranks", None)
    if registered is None:
        return
    for name, value in list(vars(groups).items()):
        if isinstance(value, ProcessGroup) and value not in registered:
            setattr(groups, name, None)


class Learner:
    def __init__(self, model_path: str, cfg: LearnerConfig, rank: int | None = None, world_size: int | None = None):
        import deepspeed

        self.cfg, self.model_path = cfg, model_path
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29511")
        os.environ.setdefault("RANK", str(rank or 0))
        os.environ.setdefault("WORLD_SIZE", str(world_size or 1))
        os.environ.setdefault("LOCAL_RANK", "0")
        backend = cfg.backend if cfg.backend != "auto" else ("nccl" if torch.cuda.is_available() else "gloo")
        deepspeed.init_distributed(dist_backend=backend)
        _forget_stale_deepspeed_groups()
        if not torch.cuda.is_available():
            set_cpu_threads(cfg.num_threads)
        self.dist = torch.distributed
        self.rank, self.world_size = self.dist.get_rank(), self.dist.get_world_size()
        torch.manual_seed(cfg.seed)
        # DeepSpeed moves (ZeRO-3: partitions) the model onto its device; load on the CPU, but pick
        # the attention kernel for the device it will run on
        model = load_causal_lm(model_path, dtype=cfg.dtype, device="auto", move=False)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        self.max_len = getattr(model.config, "max_position_embeddings", 1 << 30)
        self.pad_id = model.config.pad_token_id or 0
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2),
                                eps=cfg.adam_eps, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
        ds_config = {
            "train_micro_batch_size_per_gpu": 1,
            "gradient_accumulation_steps": 1,
            "gradient_clipping": cfg.grad_clip,
            "zero_optimization": {"stage": cfg.zero_stage},
            "bf16": {"enabled": cfg.dtype == "bfloat16"},
            "zero_allow_untested_optimizer": True,
            "steps_per_print": 1 << 30,
            "wall_clock_breakdown": False,
        }
        # DeepSpeed's wrapper of the model (its docs' `model_engine`); "engine" in a config is the
        # section of engine settings, and spark_rl.engines the layer of plain engine classes
        self.model_engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=opt, lr_scheduler=sched, config=ds_config)
        self.device = self.model_engine.device
        # NCCL takes CUDA tensors only: every tensor of our own collectives lives here
        self.comm_device = collective_device(backend, self.device)
        self.steps = 0
        self.reference = None       # a frozen Scorer of the start policy, when the reference lives here

    # ---- the reference policy, when it lives in the learner ---------------------------------
    def attach_reference(self, scorer_cfg) -> None:
        """Keep a frozen copy of `scorer_cfg.model_path` (the start policy) next to the trained model."""
        from dataclasses import replace

        from spark_rl.engines.scorer import Scorer

        self.reference = Scorer(replace(scorer_cfg, device=str(self.device)))

    def reference_logprobs(self, seqs: list[list[int]]) -> list[list[float]]:
        if self.reference is None:
            raise RuntimeError("reference_logprobs: no reference attached (attach_reference first)")
        return self.reference.logprobs(seqs)

    # ---- collectives ------------------------------------------------------------------------
    def _all_sum(self, values: list[float]) -> list[float]:
        return all_sum(self.dist, values, self.comm_device)

    def _all_max(self, value: int) -> int:
        return all_max(self.dist, value, self.comm_device)

    def barrier(self) -> None:
        self.dist.barrier()

    # ---- batches ----------------------------------------------------------------------------
    def _check_lengths(self, seqs: list[list[int]]) -> None:
        for i, s in enumerate(seqs):
            if len(s) > self.max_len:
                raise ValueError(f"sample {i} has {len(s)} tokens; the model allows {self.max_len}")

    def _micro_batches(self, lengths: list[int]) -> list[list[int]]:
        """Index micro-batches of `micro_batch_size` sequences, neighbours in length together: each
        is padded to its longest sequence (a GRPO batch of 128 responses of 40-110 tokens, 64 a
        micro-batch: pg_step 2.8 s in input order, 2.1 s grouped, on one CPU core). Every rank runs
        the same number (empty ones do a zero-loss pass), because ZeRO's gradient reduction is
        collective."""
        chunks = length_grouped_chunks(lengths, self.cfg.micro_batch_size)
        count = self._all_max(len(chunks))
        return chunks + [[] for _ in range(count - len(chunks))]

    def _optimizer_step(self, micro_batches: list, loss_of: Callable[[list[int]], torch.Tensor]) -> float:
        """Backward every micro-batch (boundary only on the last), then one optimizer step."""
        for k, mb in enumerate(micro_batches):
            self.model_engine.set_gradient_accumulation_boundary(k == len(micro_batches) - 1)
            loss = loss_of(mb) * self.world_size
            self.model_engine.backward(loss, scale_wrt_gas=False)
        grad_norm = 0.0
        if micro_batches:
            self.model_engine.step()
            grad_norm = float(self.model_engine.get_global_grad_norm() or 0.0)
            self.steps += 1
        return grad_norm

    def _dummy_loss(self) -> torch.Tensor:
        ids = torch.tensor([[self.pad_id, self.pad_id]], device=self.device)
        return self.model_engine(input_ids=ids, use_cache=False).logits.sum() * 0.0

    # ---- SFT --------------------------------------------------------------------------------
    def sft_step(self, samples: list[dict]) -> dict:
        """Cross-entropy on response tokens, averaged over every response token of the global batch."""
        skipped = sum(1 for s in samples if not s["response_ids"])
        samples = [s for s in samples if s["response_ids"]]
        if skipped:
            log.warning("sft_step: skipped %d sample(s) with an empty response", skipped)
        seqs = [list(s["prompt_ids"]) + list(s["response_ids"]) for s in samples]
        self._check_lengths(seqs)
        local_tokens = sum(len(s["response_ids"]) for s in samples)
        global_tokens, global_seqs = self._all_sum([local_tokens, len(samples)])
        if global_tokens == 0:
            return {"loss": 0.0, "tokens": 0, "skipped_empty": skipped, "stepped": False}
        micro = self._micro_batches([len(q) for q in seqs])
        loss_sum = [0.0]
        pad_tokens = [0, 0]

        def loss_of(mb: list[int]) -> torch.Tensor:
            if not mb:
                return self._dummy_loss()
            ids, mask = pad_batch([seqs[i] for i in mb], self.pad_id)
            pad_tokens[0] += int(mask.numel() - mask.sum())
            pad_tokens[1] += int(mask.numel())
            lp, _ = batch_logprobs(self.model_engine, ids.to(self.device), mask.to(self.device))
            resp = torch.zeros_like(lp)
            for row, i in enumerate(mb):
                p = len(samples[i]["prompt_ids"])
                resp[row, p - 1:len(seqs[i]) - 1] = 1.0
            loss = -(lp * resp).sum() / global_tokens
            loss_sum[0] += loss.item()
            return loss

        self.model_engine.train()
        grad_norm = self._optimizer_step(micro, loss_of)
        (loss,) = self._all_sum([loss_sum[0]])
        return {"loss": loss, "grad_norm": grad_norm, "lr": self.scheduler.get_last_lr()[0],
                "tokens": int(global_tokens), "seqs": int(global_seqs), "skipped_empty": skipped,
                "padding_share": pad_tokens[0] / max(1, pad_tokens[1]), "stepped": True}

    # ---- policy gradient --------------------------------------------------------------------
    def pg_step(self, samples: list[dict], loss_fn, epochs: int = 1) -> dict:
        """One optimizer step per epoch over this rank's samples. `loss_fn(logp, old_logp, ref_logp,
        advantages, mask, entropy=..., num_tokens=..., num_seqs=...) -> (loss, metrics)` gets padded
        [B, T] response-token tensors and global denominators. With `old_logprobs` None and one
        epoch, the old policy is the current one (ratio 1): no extra forward pass is spent on it."""
        empty = sum(1 for s in samples if len(s["input_ids"]) <= s["prompt_len"])
        samples = [s for s in samples if len(s["input_ids"]) > s["prompt_len"]]
        seqs = [list(s["input_ids"]) for s in samples]
        self._check_lengths(seqs)
        n_resp = [len(s["input_ids"]) - s["prompt_len"] for s in samples]
        global_tokens, global_seqs = self._all_sum([sum(n_resp), len(samples)])
        need_old = epochs > 1 and any(s.get("old_logprobs") is None for s in samples)
        if need_old:
            fresh = self.compute_logprobs(seqs)
            for s, lp in zip(samples, fresh):
                if s.get("old_logprobs") is None:
                    s["old_logprobs"] = lp[s["prompt_len"] - 1:]
        micro = self._micro_batches([len(q) for q in seqs])
        sums: dict[str, float] = {}
        tokens_seen = [0.0]

        def resp_tensor(rows: list[int], key: str, width: int) -> torch.Tensor | None:
            if any(samples[i].get(key) is None for i in rows):
                return None
            t = torch.zeros(len(rows), width)
            for r, i in enumerate(rows):
                v = samples[i][key]
                v = [float(v)] * n_resp[i] if isinstance(v, (int, float)) else list(v)
                if len(v) != n_resp[i]:
                    raise ValueError(f"pg_step: sample {i} has {len(v)} values in '{key}' for {n_resp[i]} response tokens")
                t[r, :n_resp[i]] = torch.tensor(v)
            return t.to(self.device)

        def loss_of(mb: list[int]) -> torch.Tensor:
            if not mb:
                return self._dummy_loss()
            ids, mask = pad_batch([seqs[i] for i in mb], self.pad_id)
            lp_all, ent_all = batch_logprobs(self.model_engine, ids.to(self.device), mask.to(self.device), with_entropy=True)
            width = max(n_resp[i] for i in mb)
            logp = torch.zeros(len(mb), width, device=self.device)
            ent = torch.zeros(len(mb), width, device=self.device)
            rmask = torch.zeros(len(mb), width, device=self.device)
            for r, i in enumerate(mb):
                p = samples[i]["prompt_len"]
                logp[r, :n_resp[i]] = lp_all[r, p - 1:p - 1 + n_resp[i]]
                ent[r, :n_resp[i]] = ent_all[r, p - 1:p - 1 + n_resp[i]].detach()
                rmask[r, :n_resp[i]] = 1.0
            old = resp_tensor(mb, "old_logprobs", width)
            ref = resp_tensor(mb, "ref_logprobs", width)
            adv = resp_tensor(mb, "advantages", width)
            loss, metrics = loss_fn(logp, old, ref, adv, rmask, entropy=ent, num_tokens=global_tokens,
                                    num_seqs=global_seqs)
            w = float(rmask.sum())
            tokens_seen[0] += w
            for k, v in metrics.items():   # losses are partial sums already; rates are token-weighted
                sums[k] = sums.get(k, 0.0) + (float(v) if k.endswith("loss") else float(v) * w)
            sums["loss"] = sums.get("loss", 0.0) + loss.item()
            return loss

        self.model_engine.train()
        grad_norms = []
        for _ in range(epochs):
            grad_norms.append(self._optimizer_step(micro, loss_of))
        keys = sorted(sums)
        totals = self._all_sum([sums.get(k, 0.0) for k in keys] + [tokens_seen[0]])
        weight = max(totals[-1], 1.0)
        out = {k: (v / epochs if k.endswith("loss") else v / weight) for k, v in zip(keys, totals[:-1])}
        out.update(grad_norm=grad_norms[-1] if grad_norms else 0.0, lr=self.scheduler.get_last_lr()[0],
                   tokens=int(global_tokens), seqs=int(global_seqs), skipped_empty=empty)
        return out

    # ---- scoring ----------------------------------------------------------------------------
    def compute_logprobs(self, seqs: list[list[int]]) -> list[list[float]]:
        if not seqs:
            return []
        self.model_engine.eval()
        out = token_logprobs(self.model_engine.module, seqs, pad_id=self.pad_id)
        return [t.tolist() for t in out]

    # ---- weights ----------------------------------------------------------------------------
    def _named_weights(self) -> list[tuple[str, torch.nn.Parameter]]:
        """Every tensor of the HF checkpoint, tied `lm_head.weight` included under its own name."""
        module = self.model_engine.module
        named = list(module.named_parameters(remove_duplicate=False))
        if module.config.tie_word_embeddings and all(n != "lm_head.weight" for n, _ in named):
            named.append(("lm_head.weight", module.get_input_embeddings().weight))
        return named

    def weight_specs(self) -> list[tuple[str, torch.dtype, tuple[int, ...]]]:
        """(name, dtype, full shape) of every tensor a sync sends, in `iter_weight_buckets` order."""
        return [(n, p.dtype, tuple(getattr(p, "ds_shape", p.shape))) for n, p in self._named_weights()]

    def iter_weight_buckets(self, bucket_bytes: int = 64 << 20) -> Iterator[list[tuple[str, torch.Tensor]]]:
        """Full weights in HF checkpoint naming in buckets of about `bucket_bytes`.

        Under ZeRO 0-2 the tensors are views of the live parameters (no copy): consume them before
        the next optimizer step. Under ZeRO-3 each parameter is gathered (collective: every rank
        must iterate) and copied out."""
        import deepspeed

        bucket, size = [], 0
        for name, p in self._named_weights():
            if self.cfg.zero_stage == 3:
                with deepspeed.zero.GatheredParameters([p], modifier_rank=None):
                    t = p.detach().to("cpu", copy=True).contiguous()
            else:
                t = p.detach()
            bucket.append((name, t))
            size += t.numel() * t.element_size()
            if size >= bucket_bytes:
                yield bucket
                bucket, size = [], 0
        if bucket:
            yield bucket

    def state_dict_cpu(self) -> dict[str, torch.Tensor]:
        return {n: t.to("cpu", copy=True) for bucket in self.iter_weight_buckets() for n, t in bucket}

    def param_checksum(self) -> float:
        return float(sum(t.double().abs().sum().item() for t in self.state_dict_cpu().values()))

    # ---- checkpoints ------------------------------------------------------------------------
    def save_checkpoint(self, path: str, client_state: dict) -> None:
        self.model_engine.save_checkpoint(path, tag="state", client_state={"spark_rl": client_state, "steps": self.steps})

    def load_checkpoint(self, path: str) -> dict:
        _, client = self.model_engine.load_checkpoint(path, tag="state", load_optimizer_states=True,
                                                load_lr_scheduler_states=True)
        if client is None:
            raise FileNotFoundError(f"no learner checkpoint in {path}")
        self.steps = client.get("steps", 0)
        return client["spark_rl"]

    def export_hf(self, out_dir: str) -> Path:
        """An HF folder transformers and vLLM load (rank 0 writes; all ranks take part)."""
        sd = self.state_dict_cpu()
        out = Path(out_dir)
        if self.rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            module = self.model_engine.module
            if module.config.tie_word_embeddings:
                sd.pop("lm_head.weight", None)
            module.save_pretrained(out, state_dict=sd, safe_serialization=True)
            for f in TOKENIZER_FILES:
                src = Path(self.model_path) / f
                if src.exists():
                    shutil.copy(src, out / f)
        self.barrier()
        return out
