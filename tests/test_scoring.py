"""The batched scorer gives the plain scorer's per-item log-likelihoods (fp32) on both model shapes."""
import numpy as np
import pytest
import torch

from compass.data.tiny import load_pairs
from compass.evaluation import scoring
from tests.tiny_lm import tiny_gemma, tiny_llama, tiny_tokenizer


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def merging_tokenizer():
    """Like tiny_tokenizer but without the pre-tokenizer's word split, so BPE learns merges such
    as "?\\n" that cross the question / choice boundary (as SentencePiece vocabularies do)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [f"{p['prompt']}\n{p['response']}" for p in load_pairs() if p["language"] in ("uk", "en")]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<pad>", "<eos>", "<bos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts[:1500], trainer)
    bos = tok.token_to_id("<bos>")
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>")


def make_items(n=14, seed=0):
    """Questions from one to three prompts (most longer than the tiny Gemma's sliding window of 8),
    2 to 5 choices, one question with trailing spaces, one with a single-token prefix."""
    pairs = [p for p in load_pairs() if p["language"] in ("uk", "en")]
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        question = " ".join(pairs[j]["prompt"] for j in rng.choice(len(pairs), int(rng.integers(1, 4))))
        choices = [pairs[j]["response"] for j in rng.choice(len(pairs), int(rng.integers(2, 6)))]
        items.append({"id": f"q{i}", "topic": f"t{i % 3}", "question": question, "choices": choices,
                      "answer": int(rng.integers(len(choices)))})
    items[0]["question"] += "  "
    items[1]["question"] = "A"
    return items


ITEMS = make_items()


def _assert_same(lls, reference):
    assert len(lls) == len(reference)
    for got, want in zip(lls, reference):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        assert np.argmax(got) == np.argmax(want)


@pytest.fixture(scope="module", params=[tiny_gemma, tiny_llama], ids=["gemma", "llama"])
def model_and_reference(request, tok):
    model = request.param(len(tok), seed=1)
    reference = [scoring.choice_loglikelihoods_plain(model, tok, it["question"], it["choices"])
                 for it in ITEMS]
    return model, reference


@pytest.mark.parametrize("prefix_reuse", [None, True, False], ids=["auto", "prefix", "full"])
@pytest.mark.parametrize("batch_tokens", [40, 300, 100_000])
def test_batched_scorer_equals_plain(tok, model_and_reference, prefix_reuse, batch_tokens):
    model, reference = model_and_reference
    lls = scoring.batched_loglikelihoods(model, tok, ITEMS, batch_tokens=batch_tokens,
                                         prefix_reuse=prefix_reuse)
    _assert_same(lls, reference)


def test_prefix_groups_mix_prefix_lengths(tok):
    """The equality above covers left-padded prefix batches: groups hold several prefix lengths."""
    planned = scoring._plan(tok, ITEMS, prefix_reuse=True)
    groups = scoring._prefix_groups([p for p in planned if p.n_shared > 0], 300)
    assert any(len({p.n_shared for p in g}) > 1 for g in groups)
    assert max(p.n_shared for p in planned) > 8  # beyond the tiny Gemma's sliding window


def test_per_item_scorer_equals_plain(tok, model_and_reference):
    model, reference = model_and_reference
    _assert_same([scoring.choice_loglikelihoods(model, tok, it["question"], it["choices"])
                  for it in ITEMS], reference)


@pytest.mark.parametrize("build", [tiny_gemma, tiny_llama], ids=["gemma", "llama"])
def test_merges_across_the_context_boundary(build):
    tok = merging_tokenizer()
    merged = [it for it in ITEMS for c in it["choices"]
              if tok(it["question"] + "\n" + c)["input_ids"][:len(tok(it["question"])["input_ids"])]
              != tok(it["question"])["input_ids"]]
    assert merged  # the case is really exercised
    model = build(len(tok), seed=2)
    reference = [scoring.choice_loglikelihoods_plain(model, tok, it["question"], it["choices"])
                 for it in ITEMS]
    for prefix_reuse in (None, True, False):
        _assert_same(scoring.batched_loglikelihoods(model, tok, ITEMS, batch_tokens=120,
                                                    prefix_reuse=prefix_reuse), reference)


def test_output_layer_chunks_and_progress(tok, model_and_reference, monkeypatch):
    """States gathered over passes go through the output layer in chunks (here 7 positions,
    which splits requests and items across chunks); every item is reported once."""
    model, reference = model_and_reference
    monkeypatch.setattr(scoring, "LOGIT_CHUNK_BYTES", 4 * len(tok) * 7)
    updates = []

    class Bar:
        def __init__(self, total, **kwargs):
            self.total = total

        def update(self, n):
            updates.append(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(scoring, "tqdm", Bar)
    lls = scoring.batched_loglikelihoods(model, tok, ITEMS, batch_tokens=64)
    _assert_same(lls, reference)
    assert sum(updates) == len(ITEMS) and len([n for n in updates if n]) > 1


def test_score_items_batched_equals_per_item(tok):
    model = tiny_gemma(len(tok), seed=3)
    model.train()
    batched = scoring.score_items(model, tok, ITEMS, show_progress_bar=False, batch_tokens=200)
    assert model.training  # the mode is restored
    per_item = scoring.score_items(model, tok, ITEMS, show_progress_bar=False,
                                   scorer=scoring.choice_loglikelihoods)
    for column in ("id", "pred", "pred_norm", "acc", "acc_norm"):
        assert batched[column].tolist() == per_item[column].tolist()
    np.testing.assert_allclose(np.concatenate(batched["loglikelihoods"].tolist()),
                               np.concatenate(per_item["loglikelihoods"].tolist()), atol=2e-5)
    assert batched["acc"].mean() == per_item["acc"].mean()


def test_cache_is_passed_by_the_decoders_own_argument_name(tok):
    import inspect

    decoder = tiny_llama(len(tok)).model
    assert scoring._cache_kwarg(decoder) in inspect.signature(decoder.forward).parameters


def test_bfloat16_batched_matches_per_item_choices(tok):
    model = tiny_gemma(len(tok), seed=4).to(torch.bfloat16)
    batched = scoring.batched_loglikelihoods(model, tok, ITEMS, batch_tokens=200)
    per_item = [scoring.choice_loglikelihoods(model, tok, it["question"], it["choices"]) for it in ITEMS]
    for got, want in zip(batched, per_item):
        np.testing.assert_allclose(got, want, rtol=0.02, atol=0.5)  # bf16: shapes change rounding


def _plain_answer_nll(model, tok, item):
    """Per-token NLL of the correct choice from one full-sequence pass: prompt + "\\n" + response
    through the model, log-softmax, the continuation tokens' log-probs summed and averaged."""
    context = item["question"].rstrip()  # lm-eval moves trailing whitespace to the continuation
    ctx = tok(context)["input_ids"]
    whole = tok(item["question"] + "\n" + item["choices"][item["answer"]])["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([whole])).logits.double(), dim=-1)[0]
    picked = [logp[i - 1, whole[i]].item() for i in range(len(ctx), len(whole))]
    return -sum(picked) / len(picked), len(picked), -sum(picked)


@pytest.mark.parametrize("build", [tiny_gemma, tiny_llama], ids=["gemma", "llama"])
def test_answer_nll_equals_full_sequence_computation(tok, build):
    model = build(len(tok), seed=5)
    frame = scoring.score_items(model, tok, ITEMS, show_progress_bar=False, batch_tokens=200)
    for item, row in zip(ITEMS, frame.itertuples()):
        nll, n_tokens, total = _plain_answer_nll(model, tok, item)
        assert row.answer_tokens == n_tokens
        assert row.answer_chars == len(item["question"]) - len(item["question"].rstrip()) + 1 \
            + len(item["choices"][item["answer"]])
        assert row.nll == pytest.approx(nll, abs=1e-5)
        assert row.bpc == pytest.approx(total / np.log(2) / row.answer_chars, abs=1e-5)
    assert frame.loc[0, "answer_chars"] == len(ITEMS[0]["choices"][ITEMS[0]["answer"]]) + 3  # "  \n"
