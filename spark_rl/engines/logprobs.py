"""Token logprobs of sequences under a causal LM, micro-batched by a token budget with
length-sorted batches (little padding), results in input order. Shared by the learner and the
reference scorer."""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """The device an engine puts its model on. "auto": the first CUDA device this process sees
    (Ray sets CUDA_VISIBLE_DEVICES to the worker's GPUs), else the CPU. An explicit CUDA device
    with no CUDA visible is an error, not a silent CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"device {name!r} is not a torch device ({e})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: no CUDA device is visible to this process")
    return device


def select_attn_implementation(device: torch.device | str = "cpu", dtype: str = "float32") -> str:
    """flash-attention 2 for a CUDA model in half precision when flash-attn is installed, SDPA
    otherwise: flash-attn has no CPU kernels and no fp32 kernels, so it must follow where the
    model runs and in which dtype, not only whether the machine has a GPU."""
    choice = "sdpa"
    if torch.device(device).type == "cuda" and torch_dtype(dtype) in (torch.bfloat16, torch.float16):
        try:
            import flash_attn  # noqa: F401

            choice = "flash_attention_2"
        except ImportError:
            pass
    log.info("attention implementation: %s", choice)
    return choice


def torch_dtype(name: str) -> torch.dtype:
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if name not in table:
        raise ValueError(f"unknown dtype {name!r}; choose one of {sorted(table)}")
    return table[name]


def load_causal_lm(path: str, dtype: str = "float32", device: str = "auto", move: bool = True):
    """An HF causal LM in `dtype` for `device` (see `resolve_device`). `move=False` leaves it on the
    CPU but still picks the attention kernel for `device` (the learner: DeepSpeed moves it)."""
    from transformers import AutoModelForCausalLM

    target = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype(dtype),
                                                 attn_implementation=select_attn_implementation(target, dtype))
    return model.to(target) if move else model


def pad_batch(seqs: list[list[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, :len(s)] = 1
    return ids, mask


def batch_logprobs(model, ids: torch.Tensor, mask: torch.Tensor, with_entropy: bool = False):
    """[B, T-1] logprob of token t+1 given its prefix (and the entropy of that distribution)."""
    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float()
    logp_all = torch.log_softmax(logits, dim=-1)
    lp = logp_all.gather(-1, ids[:, 1:, None]).squeeze(-1)
    ent = -(logp_all.exp() * logp_all).sum(-1) if with_entropy else None
    return lp, ent


def length_sorted_batches(lengths: list[int], token_budget: int) -> list[list[int]]:
    """Index batches, longest first, each padded size (len(batch) * longest) within the budget."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, cur = [], []
    for i in order:
        width = lengths[cur[0]] if cur else lengths[i]
        if cur and (len(cur) + 1) * width > token_budget:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def length_grouped_chunks(lengths: list[int], size: int) -> list[list[int]]:
    """Index chunks of at most `size`, neighbours in length together (each chunk's rows in input
    order): a chunk is padded to its longest sequence, so this wastes the least on padding for a
    fixed number of sequences per chunk. The chunk count is ceil(n / size), as in input order."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    by_length = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [sorted(by_length[k:k + size]) for k in range(0, len(by_length), size)]


def token_logprobs(model, seqs: list[list[int]], micro_batch_tokens: int = 8192, pad_id: int = 0,
                   with_entropy: bool = False, grad: bool = False):
    """Per sequence, the logprobs of tokens 1..L-1 (float32 tensors), in input order."""
    out: list = [None] * len(seqs)
    ents: list = [None] * len(seqs)
    device = next(model.parameters()).device
    ctx = torch.enable_grad() if grad else torch.no_grad()
    with ctx:
        for batch in length_sorted_batches([len(s) for s in seqs], micro_batch_tokens):
            ids, mask = pad_batch([seqs[i] for i in batch], pad_id)
            lp, ent = batch_logprobs(model, ids.to(device), mask.to(device), with_entropy)
            for row, i in enumerate(batch):
                n = len(seqs[i]) - 1
                out[i] = lp[row, :n].cpu() if not grad else lp[row, :n]
                if with_entropy:
                    ents[i] = ent[row, :n].detach().cpu()
    return (out, ents) if with_entropy else out
