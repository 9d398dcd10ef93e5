"""`Scorer`: token logprobs of fixed sequences under a frozen transformers model (the reference
policy of GRPO's KL term). Micro-batched by a token budget with length-sorted batches."""

from __future__ import annotations

import torch

from spark_rl.config.engines import ScorerConfig


class Scorer:
    def __init__(self, cfg: ScorerConfig):
        from spark_rl.engines.logprobs import load_causal_lm, resolve_device

        if not cfg.model_path:
            raise ValueError("ScorerConfig.model_path is empty")
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        if self.device.type == "cpu":
            from spark_rl.engines.threads import set_cpu_threads

            set_cpu_threads(cfg.num_threads)
        self.model = load_causal_lm(cfg.model_path, dtype=cfg.dtype, device=str(self.device)).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.pad_id = self.model.config.pad_token_id or 0

    @torch.no_grad()
    def logprobs(self, seqs: list[list[int]]) -> list[list[float]]:
        """For each sequence, the logprob of tokens 1..L-1 given their prefix."""
        from spark_rl.engines.logprobs import token_logprobs

        if not seqs:
            return []
        out = token_logprobs(self.model, seqs, micro_batch_tokens=self.cfg.micro_batch_tokens, pad_id=self.pad_id)
        return [t.tolist() for t in out]
