"""Tiny Qwen2-architecture models built on this machine (no hub downloads).

`build_base_model(out_dir, preset, seed)` writes an HF folder (config, safetensors, tokenizer)
that both transformers and vLLM load. Models are random at first; the bootstrap trains them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from spark_rl.models.tokenizer import EOS_TOKEN, train_bpe, wrap_for_transformers


@dataclass(frozen=True)
class ModelPreset:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int = 1024
    max_position_embeddings: int = 2048


# head_dim = hidden / heads must be one vLLM's CPU attention supports (32, 64, ...).
PRESETS: dict[str, ModelPreset] = {
    "tiny": ModelPreset(hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                        num_key_value_heads=2, intermediate_size=512),
    "small": ModelPreset(hidden_size=512, num_hidden_layers=8, num_attention_heads=8,
                         num_key_value_heads=4, intermediate_size=1408),
}


def get_preset(name: str) -> ModelPreset:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


def default_corpus(seed: int = 0) -> list[str]:
    """Texts the tokenizer is trained on: the embedded domain's prompts, solutions, verifications
    and instructions, plus the markers of every format the project parses."""
    from spark_rl.models.corpus import domain_corpus

    return domain_corpus(seed)


def qwen2_config(preset: ModelPreset, tokenizer) -> Qwen2Config:
    eos = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    return Qwen2Config(
        vocab_size=preset.vocab_size,
        hidden_size=preset.hidden_size,
        intermediate_size=preset.intermediate_size,
        num_hidden_layers=preset.num_hidden_layers,
        num_attention_heads=preset.num_attention_heads,
        num_key_value_heads=preset.num_key_value_heads,
        max_position_embeddings=preset.max_position_embeddings,
        tie_word_embeddings=True,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
        torch_dtype="float32",
    )


def build_base_model(out_dir: str | os.PathLike, preset: str = "tiny", seed: int = 0,
                     corpus: list[str] | None = None) -> Path:
    """Write a randomly initialised Qwen2 model + domain tokenizer to `out_dir`.

    Cached: if `out_dir` already holds a model built from the same recipe, nothing is redone.
    """
    out = Path(out_dir)
    spec = get_preset(preset)
    corpus = corpus if corpus is not None else default_corpus(seed)
    recipe = {"preset": preset, "spec": asdict(spec), "seed": seed,
              "corpus_sha": hashlib.sha256("\n".join(corpus).encode()).hexdigest()[:16]}
    stamp = out / "spark_rl_recipe.json"
    if stamp.exists() and json.loads(stamp.read_text()) == recipe:
        return out
    out.mkdir(parents=True, exist_ok=True)
    tok = wrap_for_transformers(train_bpe(corpus, spec.vocab_size))
    if len(tok) > spec.vocab_size:
        raise ValueError(f"tokenizer has {len(tok)} tokens, more than the preset's vocab {spec.vocab_size}")
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(qwen2_config(spec, tok))
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    stamp.write_text(json.dumps(recipe, indent=1))
    return out


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def base_model_dir(preset: str, seed: int = 0) -> Path:
    """A random model of `preset` with the domain tokenizer, in the cache (built on first use)."""
    from spark_rl.paths import cache_dir

    return build_base_model(cache_dir() / "models" / f"base-{preset}-s{seed}", preset=preset, seed=seed)
