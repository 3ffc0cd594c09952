"""Batched greedy generation (compass.evaluation.generation) against lm-eval's HF generation.

The reference is lm-eval's own ``HFLM.generate_until`` on the same model, tokenizer, prompts,
``until`` and ``max_gen_toks``: the outputs must be the same strings, at lm-eval's batch size 1
and batched, whatever our batch size. The models are the tiny random-weight ones of tiny_lm; their
text is garbage, so the stop strings are picked from what they generate without one (a short
ASCII piece that shows up in some outputs, not all), and EOS is made to happen by giving the EOS
row of the output layer the direction of a token the model generates (nothing is trained).
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from compass.evaluation import generation, lmeval, paper_tasks
from compass.evaluation.generation import CompassGenerationLM, greedy_generate
from tiny_lm import tiny_gemma, tiny_llama, tiny_tokenizer

MAX = 24  # max_gen_toks of the comparisons
PROX_UNTIL = ["</s>", "Q:", "Question:", "<|im_end|>"]  # mmlu_prox's until, ahead of ours


pytestmark = pytest.mark.usefixtures("no_network")  # every test here: the network refused


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def prompts():
    """Ten prompts from 1 to ~100 tokens (so left padding matters), English and Ukrainian."""
    from compass.data.tiny import load_pairs

    texts = [p["prompt"] for p in load_pairs() if p["language"] in ("en", "uk")]
    lengths = [3, 400, 40, 12, 250, 90, 7, 160, 60, 25]
    return ["\n".join(texts[20 * i:20 * i + 20])[:n] for i, n in enumerate(lengths)]


@pytest.fixture(scope="module")
def llama(tok):
    return tiny_llama(len(tok), seed=1)


@pytest.fixture(scope="module")
def gemma(tok):
    return tiny_gemma(len(tok), seed=1)


def hflm(model, tok, batch_size: int, cls=None, **kwargs):
    from lm_eval.models.huggingface import HFLM

    return (cls or HFLM)(pretrained=model, tokenizer=tok, batch_size=batch_size, device="cpu",
                         **kwargs)


def requests(prompts, gen_kwargs: dict):
    from lm_eval.api.instance import Instance

    return [Instance("generate_until", doc={}, arguments=(p, dict(gen_kwargs)), idx=i)
            for i, p in enumerate(prompts)]


def lm_eval_outputs(model, tok, prompts, until, max_gen_toks=MAX, batch_size=1) -> list[str]:
    """lm-eval's HFLM.generate_until, as its generative tasks call it."""
    gen_kwargs = {"until": list(until), "max_gen_toks": max_gen_toks, "do_sample": False}
    return hflm(model, tok, batch_size).generate_until(requests(prompts, gen_kwargs),
                                                       disable_tqdm=True)


def pick_stop(outputs: list[str]) -> str:
    """A short ASCII piece (no whitespace at its ends) found after the start of some outputs
    but not all: a stop string that cuts some rows and leaves others to max_gen_toks."""
    counts = {}
    for text in outputs:
        pieces = {text[i:i + n] for n in (3, 2) for i in range(1, len(text) - n + 1)}
        for piece in pieces:
            if piece.isascii() and piece.isprintable() and piece == piece.strip():
                counts[piece] = counts.get(piece, 0) + 1
    fits = [p for p, c in counts.items() if 0 < c < len(outputs)]
    assert fits, f"no stop string candidate in {outputs}"
    # the one closest to half the rows, longest first, then alphabetical: deterministic
    return min(fits, key=lambda p: (abs(counts[p] - len(outputs) / 2), -len(p), p))


def new_token_ids(model, tok, prompt: str, max_new_tokens: int = MAX) -> list[int]:
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id)
    return out[0, ids.shape[1]:].tolist()


# --------------------------------------------------------------------------------------------
# against lm-eval's HFLM.generate_until


@pytest.mark.parametrize("arch", ["llama", "gemma"])
def test_same_outputs_as_lm_eval_with_a_stop_string(arch, tok, prompts, request):
    model = request.getfixturevalue(arch)
    free = greedy_generate(model, tok, prompts, MAX, show_progress_bar=False)
    assert free == lm_eval_outputs(model, tok, prompts, [])  # no stop: max_gen_toks ends it
    stop = pick_stop(free)
    until = [*PROX_UNTIL, stop]
    reference = lm_eval_outputs(model, tok, prompts, until, batch_size=1)
    assert lm_eval_outputs(model, tok, prompts, until, batch_size=4) == reference
    for batch_size in (1, 4, len(prompts)):
        ours = greedy_generate(model, tok, prompts, MAX, stop=until, batch_size=batch_size,
                               show_progress_bar=False)
        assert ours == reference, batch_size
    # the stop string did cut some rows and not others
    cut = [stop in f for f in free]
    assert any(cut) and not all(cut)
    assert all(r == f.split(stop)[0] for r, f in zip(reference, free))
    assert all(stop not in r for r in reference)


def test_batch_ends_once_every_row_has_stopped(tok, prompts, llama):
    """Rows ending on different stop strings: lm-eval's batch runs on to max_gen_toks (it waits
    for one string to show up in every row), ours ends at the last row's stop; same outputs."""
    free = greedy_generate(llama, tok, prompts, MAX, show_progress_bar=False)
    first = {}
    for i, text in enumerate(free):
        for j in range(1, len(text) - 1):
            piece = text[j:j + 2]
            if piece.isascii() and piece.isprintable() and piece == piece.strip():
                first[i] = piece
                break
    rows = sorted(first)
    assert len(rows) >= 4
    chosen, until = [prompts[i] for i in rows], sorted({first[i] for i in rows})
    assert not any(all(u in free[i] for i in rows) for u in until)  # no string common to all

    steps = []
    hook = llama.register_forward_hook(lambda *args: steps.append(1))
    try:
        reference = lm_eval_outputs(llama, tok, chosen, until, batch_size=len(chosen))
        theirs = len(steps)
        steps.clear()
        ours = greedy_generate(llama, tok, chosen, MAX, stop=until, batch_size=len(chosen),
                               show_progress_bar=False)
    finally:
        hook.remove()
    assert ours == reference
    assert theirs == MAX and len(steps) < MAX


def steer(model, tok, prompts, target: int) -> None:
    """Make ``target`` come out where a token the model generates mid-way (in the most rows)
    would have: its output-layer row becomes twice that token's (nothing is trained)."""
    generated = [new_token_ids(model, tok, p) for p in prompts]
    token = max({t for ids in generated for t in ids[2:]},
                key=lambda t: (sum(t in ids[2:] for ids in generated), -t))
    with torch.no_grad():
        model.lm_head.weight[target] = 2 * model.lm_head.weight[token]


def test_eos_ends_generation_as_in_lm_eval(tok, prompts):
    """Some rows end on EOS (steered), the others at max_gen_toks."""
    model = tiny_llama(len(tok), seed=1)
    steer(model, tok, prompts, tok.eos_token_id)
    ended = [tok.eos_token_id in new_token_ids(model, tok, p) for p in prompts]
    assert any(ended) and not all(ended)
    reference = lm_eval_outputs(model, tok, prompts, [], batch_size=1)
    assert lm_eval_outputs(model, tok, prompts, [], batch_size=3) == reference
    for batch_size in (1, 3, len(prompts)):
        assert greedy_generate(model, tok, prompts, MAX, batch_size=batch_size,
                               show_progress_bar=False) == reference
    # EOS rows are shorter than a full MAX-token continuation
    full = [len(tok.decode(new_token_ids(model, tok, p), skip_special_tokens=True)) for p in prompts]
    assert all(len(r) <= n for r, n in zip(reference, full))


def test_special_stop_token_ends_its_row_as_lm_eval_does_one_by_one(tok, prompts):
    """A stop string that is a special token which decoding drops (here "<bos>"; Qwen's
    "<|im_end|>" in MMLU-ProX's until) ends its row where it is generated, as lm-eval's stop
    check does at batch size 1, at any batch size of ours."""
    model = tiny_llama(len(tok), seed=1)
    steer(model, tok, prompts, tok.bos_token_id)
    ended = [tok.bos_token_id in new_token_ids(model, tok, p) for p in prompts]
    assert any(ended) and not all(ended)
    reference = lm_eval_outputs(model, tok, prompts, ["<bos>"], batch_size=1)
    for batch_size in (1, 4, len(prompts)):
        assert greedy_generate(model, tok, prompts, MAX, stop=["<bos>"], batch_size=batch_size,
                               show_progress_bar=False) == reference
    free = greedy_generate(model, tok, prompts, MAX, show_progress_bar=False)
    assert [r == f for r, f in zip(reference, free)] == [not e for e in ended]


def test_left_truncation_as_in_lm_eval(tok, prompts, llama):
    """A small max_length: prompts are cut on the left to max_length - max_gen_toks tokens."""
    from lm_eval.models.huggingface import HFLM

    max_length = 40
    gen_kwargs = {"until": [], "max_gen_toks": 8, "do_sample": False}
    reference = HFLM(pretrained=llama, tokenizer=tok, batch_size=1, device="cpu",
                     max_length=max_length).generate_until(requests(prompts, gen_kwargs),
                                                           disable_tqdm=True)
    for batch_size in (1, 4):
        assert greedy_generate(llama, tok, prompts, 8, batch_size=batch_size,
                               max_length=max_length, show_progress_bar=False) == reference
    untruncated = greedy_generate(llama, tok, prompts, 8, show_progress_bar=False)
    long = [len(tok(p)["input_ids"]) > max_length - 8 for p in prompts]
    assert any(long)
    assert all(a == b for a, b, is_long in zip(reference, untruncated, long) if not is_long)
    assert generation.resolve_max_length(llama, tok) == 4096  # max_position_embeddings


def test_prompt_starting_with_bos_text_gets_no_second_bos(tok, prompts, llama):
    with_bos = [tok.bos_token + p for p in prompts[:4]]
    assert greedy_generate(llama, tok, with_bos, 8, show_progress_bar=False) == \
        greedy_generate(llama, tok, prompts[:4], 8, show_progress_bar=False) == \
        lm_eval_outputs(llama, tok, with_bos, [], max_gen_toks=8)


def test_peft_model_uses_its_active_adapter(tok, prompts):
    from peft import LoraConfig, get_peft_model

    base = tiny_llama(len(tok), seed=2)
    plain = greedy_generate(base, tok, prompts, 12, show_progress_bar=False)
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"],
                        init_lora_weights=False)
    model = get_peft_model(base, config)
    model.train()
    ours = greedy_generate(model, tok, prompts, 12, batch_size=4, show_progress_bar=False)
    assert model.training  # training mode given back
    assert ours != plain  # the adapter is active
    assert ours == lm_eval_outputs(model.eval(), tok, prompts, [], max_gen_toks=12)
    with model.disable_adapter():
        assert greedy_generate(model, tok, prompts, 12, show_progress_bar=False) == plain


# --------------------------------------------------------------------------------------------
# batching, order, input checks


def test_batch_size_and_order_do_not_change_outputs(tok, prompts, llama):
    base = greedy_generate(llama, tok, prompts, 16, stop=["e"], batch_size=1,
                           show_progress_bar=False)
    for batch_size in (3, 4, len(prompts), 100):
        assert greedy_generate(llama, tok, prompts, 16, stop=["e"], batch_size=batch_size,
                               show_progress_bar=False) == base
    order = list(range(len(prompts)))
    random.Random(0).shuffle(order)
    shuffled = greedy_generate(llama, tok, [prompts[i] for i in order], 16, stop=["e"],
                               batch_size=4, show_progress_bar=False)
    assert shuffled == [base[i] for i in order]
    twice = greedy_generate(llama, tok, prompts[:3] + prompts[:3], 16, stop="e", batch_size=2,
                            show_progress_bar=False)
    assert twice == base[:3] * 2


def test_input_errors(tok, llama):
    assert greedy_generate(llama, tok, [], 8) == []
    with pytest.raises(ValueError, match=r"max_new_tokens must be an integer >= 1, got 0"):
        greedy_generate(llama, tok, ["a"], 0)
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1, got 0"):
        greedy_generate(llama, tok, ["a"], 4, batch_size=0)
    with pytest.raises(ValueError, match=r"prompts must be a list of strings, got str"):
        greedy_generate(llama, tok, "a prompt", 4)
    with pytest.raises(ValueError, match=r"prompt 1 is int"):
        greedy_generate(llama, tok, ["a", 3], 4)
    with pytest.raises(ValueError, match=r"stop must be strings"):
        greedy_generate(llama, tok, ["a"], 4, stop=[None])
    with pytest.raises(ValueError, match=r"max_new_tokens=8 leaves no room.*max_length=8"):
        greedy_generate(llama, tok, ["a"], 8, max_length=8)
    with pytest.raises(ValueError, match=r"gen_batch_size must be an integer >= 1, got 0"):
        hflm(llama, tok, 1, cls=CompassGenerationLM, gen_batch_size=0)


# --------------------------------------------------------------------------------------------
# CompassGenerationLM inside lm-eval


def write_generative_task(folder: Path, name: str, prompts, targets, until, max_gen_toks) -> Path:
    rows = [{"id": i, "prompt": p, "target": t} for i, (p, t) in enumerate(zip(prompts, targets))]
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    spec = {"task": name, "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(data)}}, "test_split": "test",
            "output_type": "generate_until", "doc_to_text": "{{prompt}}",
            "doc_to_target": "{{target}}",
            "generation_kwargs": {"until": list(until), "max_gen_toks": max_gen_toks,
                                  "do_sample": False},
            "metric_list": [{"metric": "exact_match", "aggregation": "mean",
                             "higher_is_better": True}]}
    (folder / f"{name}.yaml").write_text(json.dumps(spec, indent=2), "utf-8")
    return folder


def test_compass_lm_runs_an_lm_eval_task_with_the_same_responses(tok, prompts, gemma, tmp_path):
    free = greedy_generate(gemma, tok, prompts, MAX, show_progress_bar=False)
    stop = pick_stop(free)
    expected = greedy_generate(gemma, tok, prompts, MAX, stop=[stop], show_progress_bar=False)
    targets = [e if i % 2 == 0 else "no" for i, e in enumerate(expected)]  # exact_match 0.5
    folder = write_generative_task(tmp_path, "compass_gen", prompts, targets, [stop], MAX)
    theirs = lmeval.run(gemma, tok, ["compass_gen"], include_path=folder)
    ours = lmeval.run(gemma, tok, ["compass_gen"], include_path=folder, generator="compass",
                      gen_batch_size=4)

    def by_doc(result):
        return {s["doc"]["id"]: (s["resps"], s["filtered_resps"], s["exact_match"])
                for s in result["samples"]["compass_gen"]}

    assert by_doc(ours) == by_doc(theirs)
    assert [by_doc(ours)[i][0][0][0] for i in range(len(prompts))] == expected
    assert ours["results"]["compass_gen"]["exact_match,none"] == \
        theirs["results"]["compass_gen"]["exact_match,none"] == 0.5


def test_compass_lm_leaves_sampling_to_hflm(tok, prompts, llama, monkeypatch):
    from lm_eval.models.huggingface import HFLM

    lm = hflm(llama, tok, 1, cls=CompassGenerationLM, gen_batch_size=4)
    assert lm._greedy_key({"until": ["a"], "max_gen_toks": 5, "do_sample": False}) == (("a",), 5)
    assert lm._greedy_key({"until": "a", "temperature": 0.0}) == (("a",), 256)
    assert lm._greedy_key({"until": ["a"], "do_sample": True, "temperature": 0.7}) is None
    assert lm._greedy_key({"until": ["a"], "temperature": 0.7}) is None  # lm-eval samples
    assert lm._greedy_key({"until": ["a"], "do_sample": False, "top_k": 5}) is None
    assert lm._greedy_key({"until": ["a"], "max_length": 50}) is None

    handed = []
    original = HFLM.generate_until

    def spy(self, reqs, disable_tqdm=False):
        handed.extend(r.args[0] for r in reqs)
        return original(self, reqs, disable_tqdm=disable_tqdm)

    monkeypatch.setattr(HFLM, "generate_until", spy)
    greedy = requests(prompts[:3], {"until": ["e"], "max_gen_toks": 6, "do_sample": False})
    other = requests(prompts[3:5], {"until": ["e"], "max_gen_toks": 6, "do_sample": False,
                                    "repetition_penalty": 1.3})
    mixed = [greedy[0], other[0], greedy[1], other[1], greedy[2]]
    out = lm.generate_until(mixed, disable_tqdm=True)
    assert handed == [prompts[3], prompts[4]]  # only the requests it does not answer itself
    expected = greedy_generate(llama, tok, prompts[:3], 6, stop=["e"], show_progress_bar=False)
    assert [out[0], out[2], out[4]] == expected


def test_unknown_generator_is_named(tok, llama, tmp_path):
    with pytest.raises(ValueError, match=r"unknown generator 'vllm'; allowed: 'lm-eval', 'compass'"):
        lmeval.run(llama, tok, ["x"], include_path=tmp_path, generator="vllm")
    with pytest.raises(ValueError, match=r"unknown generator 'hf'"):
        paper_tasks.run_prox_lite(llama, tok, [], [], "en", tmp_path, generator="hf")
    with pytest.raises(ValueError, match=r"gen_batch_size must be an integer >= 1, got 0"):
        lmeval.run(llama, tok, ["x"], include_path=tmp_path, generator="compass",
                   gen_batch_size=0)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_prox_lite_compass_generator_same_as_lm_eval(tok, tmp_path):
    """The paper path: lm-eval's mmlu_prox_lite_en (5-shot CoT prompts of ~1.5k tokens, its
    until list) on fixture rows, generated by HFLM and by CompassGenerationLM."""
    from test_paper_tasks import prox_english_rows

    _, business = prox_english_rows()
    fewshot = [dict(r, cot_content=f"A: Let's think step by step. The answer is ({r['answer']}).")
               for r in business[4:9]]
    model = tiny_gemma(len(tok), seed=4)
    common = dict(items=business[:4], fewshot_items=fewshot, lang="en", max_gen_toks=12)
    with pytest.warns(UserWarning, match="answer extraction failed"):
        theirs, their_summary = paper_tasks.run_prox_lite(model, tok, folder=tmp_path / "a",
                                                          **common)
    with pytest.warns(UserWarning, match="answer extraction failed"):
        ours, our_summary = paper_tasks.run_prox_lite(model, tok, folder=tmp_path / "b",
                                                      generator="compass", gen_batch_size=4,
                                                      **common)
    assert len(ours) == 4
    assert list(ours["generated"]) == list(theirs["generated"])
    assert our_summary == their_summary
