"""Instruct models read their chat template in training, NLL scoring, lm-eval and long context:
the real Llama-3.1-Instruct and Qwen2.5-Instruct templates on a small tokenizer, once each."""
from __future__ import annotations

import json

import pytest

from compass.evaluation import scoring
from compass.training import chat
from compass.training.adapters import IGNORE, encode_example
from tests.conftest import fixture_path
from tests.tiny_lm import tiny_tokenizer

SPECIAL = ["<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|im_start|>", "<|im_end|>"]


def _template(model: str) -> str:
    if model == "llama":
        path = fixture_path("models", "llama-3.1-8b-instruct", "tokenizer_config.json")
        key = lambda d: d["chat_template"]  # noqa: E731
    else:
        path = fixture_path("models", "qwen2.5-7b-instruct", "hf_api_model.json")
        key = lambda d: d["config"]["tokenizer_config"]["chat_template"]  # noqa: E731
    return key(json.loads(path.read_text()))


@pytest.fixture(scope="module")
def base_tok():
    return tiny_tokenizer()


def _tok(base_tok, model):
    tok = base_tok.__class__(tokenizer_object=base_tok.backend_tokenizer, bos_token="<bos>",
                             eos_token="<eos>", pad_token="<pad>")
    tok.add_special_tokens({"additional_special_tokens": SPECIAL})
    tok.chat_template = _template(model)
    return tok


@pytest.mark.parametrize("model, end", [("llama", "<|eot_id|>"), ("qwen", "<|im_end|>\n")])
def test_a_turn_is_the_template_and_the_bos_is_written_once(base_tok, model, end):
    tok = _tok(base_tok, model)
    turn = chat.Turn.of(tok, model)
    assert turn.end == end
    prompt = turn.prompt("Salam?")
    assert "Salam?" in prompt and not prompt.startswith("<bos>")
    ids = tok(prompt)["input_ids"]
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id  # Llama's template
    # writes a BOS and the tokenizer adds one: the text loses it, the tokens keep exactly one


@pytest.mark.parametrize("model", ["llama", "qwen"])
def test_training_learns_the_answer_and_the_end_of_turn_only(base_tok, model):
    tok = _tok(base_tok, model)
    turn = chat.Turn.of(tok, model)
    enc = encode_example(tok, "Salam?", "Salam, khubam.", 512, turn)
    learned = [i for i, label in zip(enc["input_ids"], enc["labels"]) if label != IGNORE]
    assert tok.decode(learned) == "Salam, khubam." + turn.end
    context = [i for i, label in zip(enc["input_ids"], enc["labels"]) if label == IGNORE]
    assert context == tok(turn.prompt("Salam?"))["input_ids"]


def test_without_a_template_the_encoding_is_the_plain_one(base_tok):
    """Negative control: base models (turn None) keep prompt + newline + response + eos."""
    enc = encode_example(base_tok, "Salam?", "khubam", 512, None)
    whole = base_tok("Salam?\nkhubam")["input_ids"] + [base_tok.eos_token_id]
    assert enc["input_ids"] == whole
    items = [{"id": "a", "question": "Q", "choices": ["x"], "answer": 0}]
    assert chat.for_scoring(None, items) is items
    assert scoring.context_of(items[0]) == "Q\n"


def test_scored_items_continue_the_assistant_header_without_a_delimiter(base_tok):
    tok = _tok(base_tok, "qwen")
    turn = chat.Turn.of(tok, "qwen")
    item = chat.for_scoring(turn, [{"id": "a", "question": "Q?", "choices": ["x", "y"], "answer": 1}])[0]
    assert scoring.context_of(item) == turn.prompt("Q?")  # lm-eval's chat delimiter is ''
    assert item["choices"] == ["x", "y"]


def test_which_models_read_chat_turns():
    assert chat.wanted("auto", "phi-4-mini") and chat.wanted("auto", "qwen2.5-7b-instruct")
    assert not chat.wanted("auto", "llama-3.1-8b") and not chat.wanted("auto", "gemma-3-270m")
    assert chat.wanted("auto", "my-model-it") and chat.wanted(True, "gemma-3-270m")
    assert not chat.wanted(False, "phi-4-mini")
    with pytest.raises(ValueError, match="'sometimes'"):
        chat.wanted("sometimes", "x")


def test_a_model_without_a_chat_template_is_refused_by_name(base_tok):
    with pytest.raises(chat.ChatTemplateError, match="my-model's tokenizer has no chat template"):
        chat.turn_for(True, "my-model", base_tok)
    assert chat.turn_for("auto", "my-model", base_tok) is None
