"""Prompt lengths of the paper's benchmarks in Llama-3.1 tokens, measured on the fixtures' rows.

    python benchmarks/prompt_lengths.py [--languages en ja] [--rows N] [--fixtures DIR]
        [--out benchmarks/results/prompt_lengths.json]

The tokenizer is Llama-3.1-8B-Instruct's own BPE (``original/tokenizer.model`` of the fixture
folder, converted by transformers with ``tiktoken``). That conversion does not prepend the BOS
token, unlike the hub's tokenizer.json, so :data:`BOS` = 1 token is added to every plain prompt;
a chat prompt needs nothing added (the template writes ``<|begin_of_text|>`` itself).
Each prompt is rendered as lm-eval 0.4.13 renders it, plain and in the chat template of
Llama-3.1-Instruct (the paper preset runs instruct models in their template, with lm-eval's
``apply_chat_template`` and ``fewshot_as_multiturn``):

- Global-MMLU (``global_mmlu_lite_test``: the Lite test rows; ``global_mmlu_dev``: the full dev
  rows, the few-shot source): the task YAML's ``doc_to_text`` (question, options A-D,
  "Answer:") through ``lm_eval.utils.apply_template``; chat: one user turn + the generation
  prompt. An item is scored in one pass: ``item_tokens`` = context + the four continuations
  " A".." D" (in a chat template lm-eval drops the target delimiter: "A".."D"; one token each).
  ``shot_tokens``: what one row adds as a few-shot example (chat: a user/assistant pair).
- MMLU-ProX-Lite (``mmlu_prox_lite_test``, 5-shot chain of thought, lm-eval's ``first_n``
  sampler: the five validation rows of the item's category): the category's description, five
  shots (``utils.fewshot_to_text``) and the question (``utils.doc_to_text``); chat: the
  description as the system turn and each shot and the question as user turns. The fixtures
  have no chain-of-thought texts (cot_content is empty), so every shot's worked answer is an
  ESTIMATE added on top (see :func:`cot_estimates`): the English text of the same shot in
  lm-eval's MMLU flan-CoT examples (MMLU-Pro's validation CoTs come from that library), in
  other languages scaled by the shot's token ratio to English; :data:`COT_TOKENS_ESTIMATE`
  where no such text is found.

Per benchmark and language: rows, mean, median, p95 and max tokens (``mean``: each of these
averaged over the languages), and for ProX the 0-shot and 5-shot prompts. The JSON (written
atomically to ``--out``; by default to benchmarks/results/prompt_lengths.json, only for a run
over every row and language) is what compass.cost reads.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compass import io  # noqa: E402
from compass.data import paper  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "prompt_lengths.json"
FIXTURES = Path(os.environ.get("COMPASS_FIXTURES") or ROOT.parent / "shared" / "fixtures")
TOKENIZER = Path("models") / "llama-3.1-8b-instruct"
BOS = 1  # the converted tokenizer adds no <|begin_of_text|>; lm-eval's HFLM (hub tokenizer) does
GMMLU_LANGUAGES = ("en", "de", "ja", "zh", "ar", "es", "fr")  # Global-MMLU-Lite test fixtures
GMMLU_DEV_LANGUAGES = ("en", "es", "fr")  # full dev fixtures
PROX_LANGUAGES = ("en", "de", "ja", "zh")  # MMLU-ProX-Lite fixtures
LETTERS = ("A", "B", "C", "D")  # global_mmlu's doc_to_choice, after target_delimiter " "
PROX_SHOTS = 5  # the paper's evaluation.prox.num_fewshot (lm-eval's mmlu_prox default)
COT_TOKENS_ESTIMATE = 90  # ESTIMATE: tokens of one shot's worked answer ("Answer: Let's think
# step by step. ... The answer is (X)."), for a shot whose text is not found: the mean (89.5)
# of the 70 English validation shots' texts in lm-eval's mmlu flan_cot_fewshot (all 70 found)
# the validation split in blocks of 5 rows per category, in this order (read off the English
# rows: each row's question is an MMLU CoT example of a subject of that category)
PROX_VALIDATION_BLOCKS = ("math", "health", "physics", "business", "biology", "chemistry",
                          "computer science", "economics", "engineering", "philosophy", "other",
                          "history", "psychology", "law")
CHAT_PROBE = "x"  # a user turn after which a few-shot pair's chat tokens are counted


# ---- tokenizer and lm-eval's files ---------------------------------------------------------------
def load_tokenizer(folder: Path):
    """Llama-3.1's tokenizer from its tiktoken BPE file (needs the tiktoken package; ~10 s)."""
    from transformers import AutoTokenizer

    vocab = folder / "original" / "tokenizer.model"
    return AutoTokenizer.from_pretrained(folder, vocab_file=str(vocab))


def lm_eval_tasks() -> Path:
    import lm_eval

    return Path(lm_eval.__file__).parent / "tasks"


def read_yaml(path: Path) -> dict:
    """A task YAML as data; ``!function`` tags become None (only plain fields are read)."""
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)


def count(tokenizer, texts: list[str]) -> np.ndarray:
    """Tokens of each text as given (no special tokens added)."""
    if not texts:
        return np.zeros(0, dtype=int)
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return np.array([len(x) for x in ids])


def chat(tokenizer, messages: list[dict]) -> str:
    """The chat template's text with the assistant's header, as lm-eval hands it to the model."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def stats(tokens) -> dict:
    """rows, mean, median, p95 and max of a token count per row."""
    tokens = np.asarray(tokens, dtype=float)
    return {"rows": int(tokens.size), "mean": float(tokens.mean()),
            "median": float(np.median(tokens)), "p95": float(np.percentile(tokens, 95)),
            "max": int(tokens.max())}


# ---- Global-MMLU ---------------------------------------------------------------------------------
def gmmlu_template(lang: str) -> str:
    """lm-eval's global_mmlu doc_to_text of ``lang`` (the same for Lite and full)."""
    folder = lm_eval_tasks() / "global_mmlu" / "default" / lang
    return read_yaml(folder / f"_{lang}_template_yaml")["doc_to_text"]


def gmmlu_figures(tokenizer, rows: list[dict], lang: str) -> dict:
    """Context and item tokens (plain and chat) of Global-MMLU rows, and what one of them adds
    as a few-shot example (target " <letter>" and lm-eval's "\\n\\n"; chat: a user/assistant
    pair). An item: the context once + four one-letter continuations (scored in one pass)."""
    from lm_eval.utils import apply_template

    template = gmmlu_template(lang)
    texts = [apply_template(template, row) for row in rows]
    plain = count(tokenizer, texts) + BOS
    chats = [chat(tokenizer, [{"role": "user", "content": t}]) for t in texts]
    in_chat = count(tokenizer, chats)
    continuation = _continuation(tokenizer, texts[:20], " ")
    continuation_chat = _continuation(tokenizer, chats[:20], "")
    base = count(tokenizer, [chat(tokenizer, [{"role": "user", "content": CHAT_PROBE}])])[0]
    pairs = [chat(tokenizer, [{"role": "user", "content": t},
                              {"role": "assistant", "content": row["answer"].strip()},
                              {"role": "user", "content": CHAT_PROBE}])
             for t, row in zip(texts, rows)]
    shot = count(tokenizer, [f"{t} {row['answer'].strip()}\n\n" for t, row in zip(texts, rows)])
    return {"context": stats(plain), "context_chat": stats(in_chat),
            "continuation_tokens": continuation, "continuation_tokens_chat": continuation_chat,
            "item_tokens": float(plain.mean() + len(LETTERS) * continuation),
            "item_tokens_chat": float(in_chat.mean() + len(LETTERS) * continuation_chat),
            "shot_tokens": float(shot.mean()),
            "shot_tokens_chat": float(count(tokenizer, pairs).mean() - base)}


def _continuation(tokenizer, contexts: list[str], delimiter: str) -> float:
    """Mean tokens of a continuation delimiter + letter as lm-eval takes them: the tokens of
    context + continuation after the context's (target_delimiter " "; "" in a chat template)."""
    ends = [context + delimiter + letter for context in contexts for letter in LETTERS]
    alone = np.repeat(count(tokenizer, contexts), len(LETTERS))
    return float((count(tokenizer, ends) - alone).mean())


def gmmlu_rows(fixtures: Path, lang: str, split: str, rows: int | None) -> list[dict]:
    """The hub rows (every column as the data set has it) through compass.data.paper's loaders."""
    if split == "test":
        items = paper.load_global_mmlu_lite(lang, source=fixtures / "global_mmlu" / "lite_test")
    else:
        items = paper.load_global_mmlu(lang, "dev", source=fixtures / "global_mmlu" / "dev")
    return [item["row"] for item in items[:rows]]


# ---- MMLU-ProX-Lite ------------------------------------------------------------------------------
def prox_utils(lang: str):
    """lm-eval's mmlu_prox utils of ``lang`` (doc_to_text, fewshot_to_text)."""
    import importlib

    return importlib.import_module(f"lm_eval.tasks.mmlu_prox.{lang}.utils")


def prox_description(lang: str, category: str) -> str:
    """The description lm-eval's mmlu_prox_lite_<lang>_<category> task puts before the shots."""
    name = f"mmlu_prox_lite_{lang}_{category.replace(' ', '_')}.yaml"
    return read_yaml(lm_eval_tasks() / "mmlu_prox" / lang / name)["description"]


def prox_split(fixtures: Path, lang: str, split: str) -> list[dict]:
    """MMLU-ProX-Lite rows in the hub's columns (compass.data.paper's loaders): English test from
    the Arrow copy (exact rows), the rest from the flattened TSVs (rows converted back; no
    category there: test rows take the English row's, as the files share its order, and
    validation rows their block's, :data:`PROX_VALIDATION_BLOCKS`)."""
    from compass.evaluation import paper_tasks

    base = fixtures / "mmlu_prox_lite"
    if lang == "en" and split == "test":
        return [item["row"] for item in paper.load_mmlu_prox_lite(
            "en", source=base / "en_arrow", source_split="test")]
    items = paper.load_mmlu_prox_lite(lang, split, source=base / "flattened_tsv" / lang)
    rows = paper_tasks.prox_rows(items)
    if split == "validation":
        if len(rows) != 5 * len(PROX_VALIDATION_BLOCKS):
            raise ValueError(f"{lang} validation: {len(rows)} rows, expected 5 per category")
        categories = [c for c in PROX_VALIDATION_BLOCKS for _ in range(5)]
    else:
        categories = [row["category"] for row in prox_split(fixtures, "en", "test")]
        if len(categories) != len(rows):
            raise ValueError(f"{lang} test: {len(rows)} rows, the English Arrow copy has "
                             f"{len(categories)}")
    return [dict(row, category=c) for row, c in zip(rows, categories)]


def english_cots() -> dict[str, str]:
    """lm-eval's MMLU flan-CoT few-shot answers, keyed by their question's normalised text."""
    out = {}
    for path in sorted((lm_eval_tasks() / "mmlu" / "flan_cot_fewshot").glob("mmlu_*.yaml")):
        for sample in (read_yaml(path).get("fewshot_config") or {}).get("samples", []):
            question = sample["question"].split("\n(A)")[0]
            for key in _keys(question):
                out[key] = sample["target"]
    return out


def _keys(question: str) -> tuple[str, str]:
    """The first and last 40 letters and digits of a question (escapes differ between copies)."""
    text = "".join(ch for ch in question.lower() if ch.isalnum())
    return "^" + text[:40], text[-40:] + "$"


def cot_estimates(tokenizer, shots: dict[str, list[dict]], utils: dict) -> dict[str, np.ndarray]:
    """ESTIMATE of each validation shot's worked-answer tokens per language: the English text of
    the same shot in lm-eval's MMLU flan-CoT examples ("Answer: " + it, as ProX's template
    prints it), scaled in other languages by the shot's question+options token ratio to English;
    :data:`COT_TOKENS_ESTIMATE` (scaled alike) where the text is not found."""
    library = english_cots()
    english = shots["en"]
    found = [next((library[k] for k in _keys(row["question"]) if k in library), None)
             for row in english]
    cot_en = np.array([count(tokenizer, ["Answer: " + text])[0] if text else COT_TOKENS_ESTIMATE
                       for text in found], dtype=float)
    shot_en = count(tokenizer, [utils["en"].fewshot_to_text(row) for row in english])
    out = {"found": sum(text is not None for text in found)}
    for lang, rows in shots.items():
        ratio = count(tokenizer, [utils[lang].fewshot_to_text(row) for row in rows]) / shot_en
        out[lang] = cot_en * ratio
    return out


def prox_figures(tokenizer, tests: list[dict], shots: list[dict], cots: np.ndarray,
                 lang: str) -> dict:
    """0-shot and 5-shot prompt tokens (plain and chat) of ProX test rows; each shot's worked
    answer is its ESTIMATE in ``cots`` (the fixture shots have none)."""
    utils = prox_utils(lang)
    by_category: dict[str, list[int]] = {}
    for index, row in enumerate(shots):
        by_category.setdefault(row["category"], []).append(index)
    plain0, plain5, chat0, chat5 = [], [], [], []
    for row in tests:
        chosen = by_category[row["category"]][:PROX_SHOTS]  # first_n of the category
        description = prox_description(lang, row["category"])
        question = utils.doc_to_text(row)
        shot_texts = [utils.fewshot_to_text(shots[i]) for i in chosen]
        cot = float(cots[chosen].sum())
        plain0.append(description + question)
        plain5.append(description + "".join(shot_texts) + question)
        system = [{"role": "system", "content": description}]
        chat0.append(chat(tokenizer, system + [{"role": "user", "content": question}]))
        chat5.append((chat(tokenizer, system + [{"role": "user", "content": s} for s in shot_texts]
                           + [{"role": "user", "content": question}]), cot))
    cot_sums = np.array([c for _, c in chat5])
    return {"prompt_0shot": stats(count(tokenizer, plain0) + BOS),
            "prompt_0shot_chat": stats(count(tokenizer, chat0)),
            "prompt_5shot": stats(count(tokenizer, plain5) + BOS + cot_sums),
            "prompt_5shot_chat": stats(count(tokenizer, [t for t, _ in chat5]) + cot_sums),
            "cot_tokens_per_shot": float(cots.mean())}


# ---- the whole measurement ----------------------------------------------------------------------
def mean_over(languages: dict) -> dict:
    """The mean over languages of every figure (nested stats averaged key by key)."""
    first = next(iter(languages.values()))
    out = {}
    for key, value in first.items():
        values = [figures[key] for figures in languages.values()]
        out[key] = mean_over({i: v for i, v in enumerate(values)}) if isinstance(value, dict) \
            else float(np.mean(values))
    return out


def measure(fixtures: Path, languages: list[str] | None = None, rows: int | None = None,
            log=print) -> dict:
    """Every benchmark's figures per language (those of ``languages`` that it has), the first
    ``rows`` rows of each file (all by default)."""
    from importlib.metadata import version

    start = time.perf_counter()
    tokenizer = load_tokenizer(fixtures / TOKENIZER)
    log(f"# tokenizer loaded in {time.perf_counter() - start:.1f} s")

    def wanted(langs: tuple[str, ...]) -> list[str]:
        return [lang for lang in langs if languages is None or lang in languages]

    out = {"tokenizer": f"Llama-3.1-8B-Instruct, {TOKENIZER / 'original' / 'tokenizer.model'} "
                        "(converted with tiktoken)",
           "bos_added": BOS, "lm_eval": version("lm_eval"), "rows_per_file": rows,
           "fixtures": os.path.relpath(fixtures, ROOT), "benchmarks": {}}
    for name, split, langs in (("global_mmlu_lite_test", "test", GMMLU_LANGUAGES),
                               ("global_mmlu_dev", "dev", GMMLU_DEV_LANGUAGES)):
        figures = {lang: gmmlu_figures(tokenizer, gmmlu_rows(fixtures, lang, split, rows), lang)
                   for lang in wanted(langs)}
        if figures:
            out["benchmarks"][name] = {"languages": figures, "mean": mean_over(figures)}
    prox = wanted(PROX_LANGUAGES)
    if prox:
        utils = {lang: prox_utils(lang) for lang in {"en", *prox}}
        shots = {lang: prox_split(fixtures, lang, "validation") for lang in {"en", *prox}}
        cots = cot_estimates(tokenizer, shots, utils)
        figures = {lang: prox_figures(tokenizer, prox_split(fixtures, lang, "test")[:rows],
                                      shots[lang], cots[lang], lang) for lang in prox}
        out["benchmarks"]["mmlu_prox_lite_test"] = {
            "languages": figures, "mean": mean_over(figures), "num_fewshot": PROX_SHOTS,
            "cot": {"estimate": True, "shots_found": cots["found"], "fallback": COT_TOKENS_ESTIMATE,
                    "source": "English worked answers of lm-eval's mmlu/flan_cot_fewshot (the MMLU "
                              "CoT library MMLU-Pro's validation CoTs come from), matched to each "
                              "shot's question; other languages scaled by the shot's token ratio"}}
    log(f"# measured in {time.perf_counter() - start:.1f} s")
    return out


def table(result: dict) -> str:
    """The markdown table: one row per benchmark, prompt kind and language (and their mean)."""
    import pandas as pd

    kinds = {"global_mmlu_lite_test": ("context", "context_chat"),
             "global_mmlu_dev": ("context", "context_chat"),
             "mmlu_prox_lite_test": ("prompt_0shot", "prompt_0shot_chat", "prompt_5shot",
                                     "prompt_5shot_chat")}
    rows = []
    for name, bench in result["benchmarks"].items():
        for lang, figures in [*bench["languages"].items(), ("mean", bench["mean"])]:
            for kind in kinds[name]:
                s = figures[kind]
                rows.append({"benchmark": name, "prompt": kind, "language": lang,
                             "rows": round(s["rows"]), "mean": s["mean"], "median": s["median"],
                             "p95": s["p95"], "max": s["max"]})
    return pd.DataFrame(rows).to_markdown(index=False, floatfmt=".0f")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", nargs="+", default=None, help="only these languages")
    parser.add_argument("--rows", type=int, default=None, help="only the first N rows of a file")
    parser.add_argument("--fixtures", default=str(FIXTURES), help="the shared fixtures folder")
    parser.add_argument("--out", default=None, help="JSON results (default: see the module doc)")
    args = parser.parse_args(argv)
    result = measure(Path(args.fixtures), args.languages, args.rows)
    print(table(result))
    partial = args.languages is not None or args.rows is not None
    out = Path(args.out) if args.out else (None if partial else RESULTS)
    if out is not None:
        io.write_json(out, result, digits=5)
        print(f"# results: {out}")
    return result


if __name__ == "__main__":
    main()
