#!/usr/bin/env python
"""GPU smoke test of the device-sensitive pieces (issue #20), needing only torch and transformers
(a GPU box may have no ray, vllm or deepspeed):

1. the learner's collective helpers (`spark_rl.engines.collectives`) on a real NCCL group of two
   processes (one per GPU; with a single GPU a one-rank group, because NCCL refuses two ranks on one
   device), and that NCCL refuses the CPU tensors the helpers used to build;
2. the reference `Scorer` and the logprob code in bf16 on CUDA against fp32 (on CPU), within the
   bf16 parity tolerance, with the model's parameters on the GPU; fp32 on CUDA vs CPU stays tight;
3. weight packing (`FlatBucket`, the /dev/shm file) from CUDA tensors, byte-exact.

    python tests/gpu/smoke.py               # on a GPU machine; prints SKIP and exits 0 without CUDA
    python tests/gpu/smoke.py --device cpu  # the same checks on CPU with gloo (what the test suite runs)

Exit status 1 when a check fails. Every check prints one line: PASS/FAIL, what, the numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # run from a bare checkout

import torch  # noqa: E402

RESULTS: list[tuple[bool, str]] = []


def check(ok: bool, what: str) -> None:
    RESULTS.append((bool(ok), what))
    print(f"{'PASS' if ok else 'FAIL'}  {what}", flush=True)


# ---- 1. collectives ------------------------------------------------------------------------------


def _collective_rank(rank: int, world: int, backend: str, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    from spark_rl.engines.collectives import all_max, all_sum, collective_device

    device = torch.device(f"cuda:{rank}") if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank, world_size=world)
    lines = []
    try:
        comm = collective_device(backend, device)
        sums = all_sum(dist, [float(rank + 1), 2.0], comm)
        want = [float(sum(range(1, world + 1))), 2.0 * world]
        lines.append(f"{sums == want}\tall_sum on {comm}: {sums} (want {want})")
        top = all_max(dist, rank * 10, comm)
        lines.append(f"{top == (world - 1) * 10}\tall_max on {comm}: {top} (want {(world - 1) * 10})")
        if backend == "nccl":                      # the bug this guards against: a CPU tensor in NCCL
            try:
                dist.all_reduce(torch.tensor([1.0]))
                lines.append("False\tNCCL accepted a CPU tensor (expected it to refuse)")
            except Exception as e:  # any refusal is the point
                lines.append(f"True\tNCCL refuses a CPU tensor ({type(e).__name__})")
        dist.barrier()
    except Exception:
        lines.append("False\t" + traceback.format_exc().replace("\n", " | "))
    finally:
        dist.destroy_process_group()
    Path(out_dir, f"rank{rank}.txt").write_text("\n".join(lines))


def check_collectives(device: str) -> None:
    import torch.multiprocessing as mp

    backend = "nccl" if device == "cuda" else "gloo"
    world = min(2, torch.cuda.device_count()) if device == "cuda" else 2
    if device == "cuda" and world < 2:
        print("note: one GPU visible: NCCL cannot put two ranks on one device, running a one-rank NCCL group")
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_collective_rank, args=(world, backend, os.path.join(tmp, "pg"), tmp), nprocs=world, join=True)
        for r in range(world):
            for line in Path(tmp, f"rank{r}.txt").read_text().splitlines():
                ok, what = line.split("\t", 1)
                check(ok == "True", f"[{backend} rank {r}/{world}] {what}")


# ---- 2. Scorer and logprob code --------------------------------------------------------------------


def tiny_model(out: Path, logit_scale: float = 8.0) -> str:
    """A random 2-layer Qwen2 with logits of ~10 (a random model's are ~1; trained LMs' ~10-40)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=True)
    model = Qwen2ForCausalLM(cfg)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(logit_scale)
    model.save_pretrained(out)
    return str(out)


def check_scorer(device: str, model_dir: str) -> None:
    from spark_rl.config.engines import PARITY_TOLERANCE
    from spark_rl.engines.logprobs import select_attn_implementation, token_logprobs
    from spark_rl.engines.scorer import Scorer, ScorerConfig

    g = torch.Generator().manual_seed(1)
    seqs = [torch.randint(0, 512, (n,), generator=g).tolist() for n in (17, 64, 120, 33)]
    ref = Scorer(ScorerConfig(model_path=model_dir, dtype="float32", device="cpu"))
    want = [torch.tensor(x) for x in ref.logprobs(seqs)]
    print(f"note: attention for a {device} bf16 model: {select_attn_implementation(device, 'bfloat16')}")

    for dtype, tol in (("float32", 1e-4), ("bfloat16", PARITY_TOLERANCE["bfloat16"])):
        s = Scorer(ScorerConfig(model_path=model_dir, dtype=dtype, device=device))
        places = {p.device.type for p in s.model.parameters()}
        check(places == {device}, f"Scorer {dtype}: parameters on {sorted(places)} (want {device})")
        got = [torch.tensor(x) for x in s.logprobs(seqs)]
        diff = max(float((a - b).abs().max()) for a, b in zip(got, want))
        check(diff <= tol, f"Scorer {dtype} on {device} vs fp32 on cpu: max |logprob diff| {diff:.2e} (tolerance {tol:.0e})")
        lps, ents = token_logprobs(s.model, seqs, with_entropy=True)
        check(all(t.device.type == "cpu" for t in lps + ents) and all(torch.isfinite(t).all() for t in ents),
              f"token_logprobs {dtype} on {device}: CPU results, finite entropies")
        del s
        if device == "cuda":
            torch.cuda.empty_cache()


# ---- 3. weight packing from device tensors ---------------------------------------------------------


def check_weight_packing(device: str) -> None:
    from spark_rl.engines.weight_transfer import (
        FlatBucket,
        SharedWeightFile,
        layout_of,
        specs_of,
        write_tensors,
    )

    g = torch.Generator().manual_seed(2)
    named = [("a.weight", torch.randn(64, 32, generator=g).to(torch.bfloat16)),
             ("b.bias", torch.randn(7, generator=g)), ("c.weight", torch.randn(3, 5, 2, generator=g).half())]
    on_dev = [(n, t.to(device)) for n, t in named]
    back = dict(FlatBucket.pack(on_dev).tensors())
    check(all(back[n].dtype == t.dtype and torch.equal(back[n], t) for n, t in named),
          f"FlatBucket.pack from {device} tensors: names, dtypes, shapes and bytes round-trip")
    if SharedWeightFile.available():
        slots, total = layout_of(specs_of(on_dev))
        shm = SharedWeightFile(SharedWeightFile.new_path("smoke"), total, create=True)
        try:
            write_tensors(shm.buffer, slots, [t for _, t in on_dev])
            reader = SharedWeightFile(shm.path, total, create=False)
            got = dict(reader.views(slots))
            check(all(torch.equal(got[n], t) for n, t in named), f"/dev/shm weight file written from {device} tensors")
            del got
            reader.close()
        finally:
            shm.close(unlink=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("SKIP: no CUDA device visible (torch.cuda.is_available() is False); nothing was checked. "
              "`--device cpu` runs the same checks on CPU.")
        return 0
    where = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    print(f"smoke on {args.device} ({where}), torch {torch.__version__}, {torch.cuda.device_count()} GPU(s) visible")
    def scorer() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            check_scorer(args.device, tiny_model(Path(tmp) / "tiny"))

    for name, fn in (("collectives", lambda: check_collectives(args.device)), ("scorer", scorer),
                     ("weight packing", lambda: check_weight_packing(args.device))):
        try:
            fn()
        except Exception:  # report and go on with the next check
            check(False, f"{name}: {traceback.format_exc()}")
    failed = [w for ok, w in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)}/{len(RESULTS)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
