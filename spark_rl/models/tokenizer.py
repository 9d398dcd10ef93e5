"""A small byte-level BPE tokenizer for the embedded domain, built with `tokenizers`.

Digits are split one by one before BPE so that numbers are spelled digit by digit (tiny models
learn arithmetic far more easily that way). Byte-level pre-tokenization keeps every input
encodable, including LaTeX and unicode from the real benchmark files.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

EOS_TOKEN = "<|endoftext|>"
SPECIAL_TOKENS = [EOS_TOKEN, "<|im_start|>", "<|im_end|>"]


def train_bpe(corpus: Iterable[str], vocab_size: int = 1024) -> Tokenizer:
    """Train a byte-level BPE on `corpus`; deterministic for the same corpus and size."""
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    return tok


def wrap_for_transformers(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """The HF tokenizer object that transformers and vLLM load from a model folder."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        bos_token=None,
        unk_token=None,
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )
