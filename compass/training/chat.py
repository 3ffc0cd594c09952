"""Instruct models read and answer in their chat template; base models read plain text.

An instruct model sees a user turn and answers in an assistant turn, closed by its end-of-turn
token. Training, the held-out NLL, lm-eval (``apply_chat_template``, few-shot examples as turns)
and the long-context prompts all use the same rendering, so an adapter is trained on the format
it is scored in. ``train.chat_template``: ``auto`` uses the template for the catalog's instruct
models (and names that end in -instruct, -it or -chat), ``true`` / ``false`` force it for every
model of the run.

The rendered prompt is handed to the tokenizer with its special tokens, as every other prompt
is: a template that writes the BOS token itself (Llama 3.1) loses it from the text when the
tokenizer adds one, so the tokens equal the template's exactly, once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from compass import model_catalog as catalog

SETTINGS = ("auto", True, False)
_PROBE = "\x00compass-response\x00"  # a response no template rewrites, to find the end of turn
_INSTRUCT_NAME = re.compile(r"-(instruct|it|chat)$")


class ChatTemplateError(ValueError):
    """A model asked to read chat turns whose tokenizer has no usable chat template."""


def is_instruct(name: str) -> bool:
    """An instruct (chat) model by its name: the catalog's, or a name ending -instruct/-it/-chat."""
    return name in catalog.INSTRUCT or bool(_INSTRUCT_NAME.search(name))


def wanted(setting, name: str) -> bool:
    """Whether ``train.chat_template`` = ``setting`` applies the template to model ``name``."""
    if setting not in SETTINGS:
        raise ValueError(f"train.chat_template = {setting!r}; allowed: auto, true, false")
    return is_instruct(name) if setting == "auto" else bool(setting)


@dataclass(frozen=True)
class Turn:
    """A tokenizer's chat template as the prompt of one user turn and the end of the answer."""

    tokenizer: object
    end: str  # what the template writes after the assistant's answer (its end-of-turn token...)
    strip_bos: str  # the BOS text the tokenizer adds itself ('' when it does not)

    @classmethod
    def of(cls, tokenizer, name: str = "the model") -> "Turn":
        """The template of ``tokenizer``, checked on a probe conversation."""
        if not getattr(tokenizer, "chat_template", None):
            raise ChatTemplateError(
                f"{name}'s tokenizer has no chat template, but train.chat_template asks for one: "
                "set train.chat_template: false, or use the model's instruct variant")
        user = [{"role": "user", "content": "x"}]
        prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(
            user + [{"role": "assistant", "content": _PROBE}], tokenize=False)
        if not full.startswith(prompt) or _PROBE not in full[len(prompt):]:
            raise ChatTemplateError(
                f"{name}'s chat template does not write the answer right after the prompt of a "
                "user turn, so training and scoring cannot share its format; set "
                "train.chat_template: false")
        end = full[len(prompt):].split(_PROBE, 1)[1]
        bos = tokenizer.bos_token or ""
        adds_bos = bool(bos) and tokenizer("x")["input_ids"][:1] == [tokenizer.bos_token_id]
        return cls(tokenizer, end, bos if adds_bos else "")

    def prompt(self, text: str) -> str:
        """``text`` as a user turn followed by the assistant's header, ready to be answered."""
        rendered = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
        if self.strip_bos and rendered.startswith(self.strip_bos):
            rendered = rendered[len(self.strip_bos):]
        return rendered


def turn_for(setting, name: str, tokenizer) -> Turn | None:
    """The :class:`Turn` of model ``name`` when ``setting`` applies the template, else None."""
    return Turn.of(tokenizer, name) if wanted(setting, name) else None


def for_scoring(turn: Turn | None, items: list[dict]) -> list[dict]:
    """Multiple-choice items (compass.evaluation.scoring) as a chat model reads them: the
    question as a user turn and each choice right after the assistant's header, as lm-eval does
    with ``apply_chat_template`` (no delimiter). Unchanged without a template."""
    if turn is None:
        return items
    return [{**item, "question": turn.prompt(item["question"]), "delimiter": ""} for item in items]
