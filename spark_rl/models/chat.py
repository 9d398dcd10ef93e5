"""Turning prompt text into model input, one rule for training and inference: a tokenizer with a
chat template gets the prompt as a user turn (plus the generation prompt); one without (the
embedded domain tokenizer) gets the text as it is."""

from __future__ import annotations


def chat_prompt(tok, text: str) -> str:
    if getattr(tok, "chat_template", None):
        return tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
    return text


def encode_sft(tok, prompt: str, response: str) -> dict:
    """Token ids of one SFT pair (the learner's sample format); the response ends with EOS."""
    return {"prompt_ids": tok(chat_prompt(tok, prompt), add_special_tokens=False)["input_ids"],
            "response_ids": tok(response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]}
