import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM
from peft import get_peft_model

from compass import config
from compass.continual import update as ecda
from compass.training.adapters import lora_config, serve_adapter
from compass.continual.stream import shift_share, simulate
from tests.tiny_lm import tiny_gemma, tiny_tokenizer

EXAMPLES = [{"prompt": f"Привіт {i}?", "response": f"Добре {i}."} for i in range(8)]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture
def peft_model(tok):
    model = get_peft_model(tiny_gemma(len(tok)), lora_config(config.TrainConfig()))
    with torch.no_grad():  # non-zero B so that the adapter matters
        for n, p in ecda.trainable(model).items():
            p.normal_(0, 0.05)
    return model.eval()


def test_ewc_penalty_zero_at_anchor_and_quadratic(tok, peft_model):
    fisher = ecda.fisher_diagonal(peft_model, tok, EXAMPLES, 48, 4, seed=0).values
    assert all((f >= 0).all() for f in fisher.values())
    assert sum(float(f.sum()) for f in fisher.values()) > 0
    anchor = ecda.snapshot(peft_model)
    assert ecda.ewc_penalty(peft_model, fisher, anchor).item() == 0.0
    direction = {n: torch.randn_like(p) for n, p in anchor.items()}
    penalties = []
    for scale in (1e-2, 2e-2, 4e-2):
        ecda.restore(peft_model, {n: anchor[n] + scale * direction[n] for n in anchor})
        penalties.append(ecda.ewc_penalty(peft_model, fisher, anchor).item())
    assert penalties[1] / penalties[0] == pytest.approx(4.0, rel=1e-3)
    assert penalties[2] / penalties[0] == pytest.approx(16.0, rel=1e-3)


def test_the_fisher_is_per_example_and_on_the_laplace_scale(tok, peft_model):
    """Each example's squared gradient, averaged: larger than the square of the averaged gradient
    (Jensen), which is what the batch-mean estimate computed; N_old rides along for the scale."""
    from compass.training.adapters import batch_of, completion_loss, encode_example

    fisher = ecda.fisher_diagonal(peft_model, tok, EXAMPLES, 48, len(EXAMPLES), seed=0)
    assert fisher.n_data == len(EXAMPLES)
    encoded = [encode_example(tok, e["prompt"], e["response"], 48) for e in EXAMPLES]
    peft_model.zero_grad(set_to_none=True)
    batch = batch_of(encoded, 0, len(encoded), 0, tok.pad_token_id, "cpu")
    loss, _ = completion_loss(peft_model, batch)
    loss.backward()
    batch_mean = sum(float((p.grad ** 2).sum()) for p in ecda.trainable(peft_model).values())
    peft_model.zero_grad(set_to_none=True)
    assert sum(float(f.sum()) for f in fisher.values.values()) > 10 * batch_mean
    assert ecda.ewc_weight(2.0, fisher, new_tokens=100) == pytest.approx(len(EXAMPLES) / 100)


def test_ewc_pulls_the_update_toward_the_anchor(tok, peft_model):
    """Positive control of the EWC term: from the same weights, batches and seed, the EWC update
    differs from the naive one, ends closer to the anchor, and logs a gradient ratio that is not
    negligible (the old term's was ~1e-5)."""
    anchor = ecda.snapshot(peft_model)
    fisher = ecda.fisher_diagonal(peft_model, tok, EXAMPLES, 48, len(EXAMPLES), seed=0)
    moved = {}
    for name, kwargs in (("naive", {}), ("ewc", dict(fisher=fisher, anchor=anchor, lambda_ewc=2.0))):
        ecda.restore(peft_model, anchor)
        result = ecda.update(peft_model, tok, EXAMPLES[::-1], 12, 5e-3, 4, 48, 0, **kwargs)
        after = ecda.snapshot(peft_model)
        moved[name] = (sum(float(((after[n] - anchor[n]) ** 2).sum()) for n in anchor) ** 0.5, after,
                       result)
    assert not same_weights(moved["naive"][1], moved["ewc"][1])
    assert moved["ewc"][0] < moved["naive"][0]
    ratios = moved["ewc"][2].ewc_ratios
    assert len(ratios) == 12 and ratios[0] == 0.0 and max(ratios) > 0.05
    ecda.restore(peft_model, anchor)


def test_replay_buffer_is_stratified_by_cluster():
    history = pd.DataFrame({"id": [f"x{i:03d}" for i in range(200)],
                            "cluster": [0] * 120 + [1] * 60 + [2] * 20,
                            "prompt": "p", "response": "r"})
    buffer = ecda.stratified_replay(history, 0.05, seed=0)
    assert len(buffer) == 10
    assert buffer["cluster"].value_counts().to_dict() == {0: 6, 1: 3, 2: 1}
    assert buffer["id"].tolist() == ecda.stratified_replay(history, 0.05, seed=0)["id"].tolist()
    rand = ecda.random_replay(history, 0.05, seed=0)
    assert len(rand) == 10 and rand["id"].is_unique


def test_rollback_on_planted_nan(tok, peft_model):
    before = ecda.snapshot(peft_model)

    def poisoned_update():
        with torch.no_grad():
            next(iter(ecda.trainable(peft_model).values())).fill_(float("nan"))
        return ecda.update(peft_model, tok, EXAMPLES, steps=2, lr=1e-3, batch_size=4,
                           max_length=48, seed=0)

    accepted, event, _ = ecda.guarded_update(peft_model, poisoned_update, lambda: 0.5, 0.1)
    assert not accepted and event["event"] == "rolled_back" and "non-finite" in event["reason"]
    for n, p in ecda.trainable(peft_model).items():
        torch.testing.assert_close(p, before[n])


def test_rollback_when_validation_drops(tok, peft_model):
    scores = iter([0.8, 0.5])
    accepted, event, result = ecda.guarded_update(
        peft_model, lambda: ecda.update(peft_model, tok, EXAMPLES, 2, 1e-2, 4, 48, 0),
        lambda: next(scores), tolerance=0.1)
    assert not accepted and event["reason"] == "validation accuracy dropped" and result.steps == 2
    scores = iter([0.8, 0.75])
    accepted, event, _ = ecda.guarded_update(
        peft_model, lambda: ecda.update(peft_model, tok, EXAMPLES, 2, 1e-2, 4, 48, 0),
        lambda: next(scores), tolerance=0.1)
    assert accepted and event["event"] == "accepted"


def test_update_is_deterministic(tok):
    results = []
    for _ in range(2):
        model = get_peft_model(tiny_gemma(len(tok)), lora_config(config.TrainConfig()))
        replay = EXAMPLES[:3]
        fisher = ecda.fisher_diagonal(model, tok, EXAMPLES, 48, 4, 0)
        out = ecda.update(model, tok, EXAMPLES, 3, 1e-2, 4, 48, 0, fisher=fisher,
                          anchor=ecda.snapshot(model), lambda_ewc=2.0, replay=replay, beta=0.1)
        results.append((out.losses, ecda.snapshot(model)))
    assert results[0][0] == results[1][0]
    for n in results[0][1]:
        torch.testing.assert_close(results[0][1][n], results[1][1][n])


def test_update_does_not_depend_on_the_global_rng(tok):
    """LoRA dropout draws from the update's own seeded generator: two updates from the same
    weights agree whatever ran before them, and the caller's random state is left as it was."""
    results = []
    for earlier in (1, 2):
        model = get_peft_model(tiny_gemma(len(tok)), lora_config(config.TrainConfig()))
        torch.manual_seed(earlier)  # stands for whatever consumed random numbers before
        state = torch.get_rng_state()
        out = ecda.update(model, tok, EXAMPLES, 3, 1e-2, 4, 48, 0)
        assert torch.equal(torch.get_rng_state(), state)
        results.append((out.losses, ecda.snapshot(model)))
    assert results[0][0] == results[1][0]
    assert same_weights(results[0][1], results[1][1])


def test_served_adapter_swap_is_atomic(tok, peft_model, tmp_path, monkeypatch):
    folder = serve_adapter(peft_model, tmp_path / "served", "tiny")
    before = (folder / "adapter_model.safetensors").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(peft_model), "save_pretrained", crash)
    with pytest.raises(OSError, match="disk full"):
        serve_adapter(peft_model, tmp_path / "served", "tiny")
    assert (folder / "adapter_model.safetensors").read_bytes() == before


def test_served_adapter_names_its_base_model_not_this_machines_folder(tok, tmp_path):
    """An adapter's files must not depend on where the workspace is: the config and peft's model
    card name the base model, never the folder it was loaded from (a DVC output's bytes would
    differ between clones and cluster worktrees)."""
    base = tmp_path / "somewhere" / "base-model"
    tiny_gemma(len(tok)).save_pretrained(base)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           lora_config(config.TrainConfig()))
    folder = serve_adapter(model, tmp_path / "served", "tiny")
    for name in ("adapter_config.json", "README.md"):
        text = (folder / name).read_text(encoding="utf-8")
        assert str(base) not in text and "tiny" in text, name
    # served again from a model whose adapter config already holds the name (ECDA's updates)
    model.peft_config["default"].base_model_name_or_path = "tiny"
    folder = serve_adapter(model, tmp_path / "served", "tiny")
    assert str(base) not in (folder / "README.md").read_text(encoding="utf-8")


def test_stream_schedules_and_determinism():
    assert [shift_share(t, 4, "gradual", 0.9, 2) for t in range(4)] == pytest.approx([0, 0.3, 0.6, 0.9])
    assert [shift_share(t, 4, "abrupt", 0.9, 2) for t in range(4)] == [0, 0, 0.9, 0.9]
    rng = np.random.default_rng(0)
    topics = [f"t{i}" for i in range(5)]
    pairs = pd.DataFrame({"id": [f"p{i}" for i in range(300)], "topic": rng.choice(topics, 300),
                          "prompt": "p", "response": "r"})
    items = [{"id": f"i{i}", "topic": topics[i % 5], "question": "q", "choices": ["a", "b"],
              "answer": 0} for i in range(100)]
    cfg = config.EcdaConfig(steps=4, window=50, test_items_per_step=10, val_items_per_step=4,
                            shift="topic", schedule="gradual", shift_topics=1, shift_strength=0.9)
    a = simulate(pairs, items, cfg, seed=1)
    b = simulate(pairs, items, cfg, seed=1)
    assert [s.window["id"].tolist() for s in a] == [s.window["id"].tolist() for s in b]
    focus = max(a[-1].mixture, key=a[-1].mixture.get)
    share = [float((s.window["topic"] == focus).mean()) for s in a]
    assert share[-1] > share[0] + 0.3  # the stream really drifts toward the focus topic
    assert all(len(s.test) == 10 and len(s.validation) == 4 for s in a)
    # a fixed partition: no item at two steps, no item both a validation and a test item
    used = [i["id"] for s in a for i in (*s.test, *s.validation)]
    assert len(used) == len(set(used)) == 4 * 14
    val = {i["id"] for s in a for i in s.validation}
    assert not val & {i["id"] for s in a for i in s.test}


def test_full_retraining_starts_from_a_fresh_lora(tok, peft_model):
    """peft's own initialisation (A random, B zero), seeded, not the trained A with B zeroed."""
    trained = ecda.snapshot(peft_model)
    fresh = ecda.fresh_lora(peft_model, seed=0)
    assert same_weights(ecda.snapshot(peft_model), trained)  # the model is left as it was
    assert fresh.keys() == trained.keys()
    for name, value in fresh.items():
        if "lora_B" in name:
            assert not value.any()
        else:
            assert not torch.equal(value, trained[name]) and value.abs().max() > 0
    again = ecda.fresh_lora(peft_model, seed=0)
    assert same_weights(fresh, again) and not same_weights(fresh, ecda.fresh_lora(peft_model, seed=1))


# ---- the continual runner on the tiny model ----------------------------------------------------
UPDATING = ("naive", "ewc", "random_rehearsal", "full_retrain")  # update at every step after T0


def ecda_cfg(**ecda_changes):
    """A three-step stream small enough for the tiny model (seconds per run)."""
    return config.from_dict({
        "languages": {"targets": ["uk"], "auxiliary": "all"},
        "clustering": {"k_min": 2, "k_max": 4},
        "train": {"batch_size": 4, "max_length": 32},
        "evaluation": {"n_bootstrap": 200},
        "ecda": {"steps": 3, "window": 20, "test_items_per_step": 4, "val_items_per_step": 3,
                 "shift": "topic", "schedule": "gradual", "shift_strength": 0.8,
                 "train_on": "selection", "shift_topics": 1, "budget": 4, "update_steps": 2,
                 "fisher_examples": 4, "n_permutations": 50, "calibration_draws": 200,
                 "rollback_tolerance": 0.5, "scoring": "choices", "learning_rate": 2e-3,
                 **ecda_changes},
    })


def mc_items(test_rows: pd.DataFrame) -> list[dict]:
    """Multiple-choice items from the synthetic target test rows: the row's own response among
    three from other rows, never first (so an argmax over NaN scores, 0, is always wrong)."""
    items = []
    responses = test_rows["response"].tolist()
    for i, row in enumerate(test_rows.itertuples()):
        others = [responses[(i + k) % len(responses)] for k in (5, 10, 15)]
        answer = 1 + i % 3
        items.append({"id": f"mc/{row.id}", "topic": row.topic, "question": row.prompt,
                      "choices": others[:answer] + [row.response] + others[answer:],
                      "answer": answer})
    return items


@pytest.fixture(scope="module")
def continual_inputs():
    """Everything runner.run takes except the model and the config: a synthetic pool, its
    stream and the served adapter's history."""
    from tests.conftest import synthetic_pool

    cfg = ecda_cfg()
    pool, frame, _, vectors_of = synthetic_pool(cfg)
    uk = frame[frame["language"] == "uk"]
    stream = simulate(uk[uk["split"] == "dev"], mc_items(uk[uk["split"] == "test"]), cfg.ecda, cfg.seed)
    history = pool.train.assign(cluster=pool.train_labels)[["id", "cluster", "prompt", "response"]]
    by_id = {row["id"]: row for row in frame.to_dict("records")}
    return dict(stream=stream, pool=pool, pairs_by_id=by_id, initial_history=history,
                window_assign=lambda window: pool.assign_target(vectors_of(window["id"].tolist())))


def fresh_model(tok):
    """The tiny model with a non-zero LoRA, rebuilt from seed 0 (which also resets torch's RNG,
    so LoRA dropout draws the same masks in every run)."""
    model = get_peft_model(tiny_gemma(len(tok)), lora_config(config.TrainConfig()))
    with torch.no_grad():
        for p in ecda.trainable(model).values():
            p.normal_(0, 0.05)
    return model.eval()


def run_stream(tok, inputs, cache=True, **ecda_changes):
    """runner.run on a fresh tiny model; returns (outputs, the adapter weights it started from)."""
    from compass.continual import runner

    model = fresh_model(tok)
    start = ecda.snapshot(model)
    out = runner.run(model, tok, cfg=ecda_cfg(**ecda_changes), show_progress_bar=False,
                     cache=cache, **inputs)
    return out, start


@pytest.fixture(scope="module")
def runs(tok, continual_inputs):
    """Runs shared by several tests, made on first use: (delta, cache) -> (outputs, start)."""
    made = {}

    def get(delta, cache=True):
        if (delta, cache) not in made:
            made[(delta, cache)] = run_stream(tok, continual_inputs, cache=cache, delta=delta)
        return made[(delta, cache)]

    return get


def real_events(out) -> pd.DataFrame:
    """The events of methods' own updates (not the planted regression)."""
    events = out["events"]
    return events[~events["planted"].astype(bool)] if len(events) else events


def events_of(out, method) -> list[int]:
    events = real_events(out)
    return events.loc[events["method"] == method, "t"].tolist() if len(events) else []


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def test_cached_run_gives_the_uncached_tables(runs, continual_inputs):
    """Caching scores, drift checks, selections and Fishers by adapter version changes nothing:
    same accuracies, same accept/rollback decisions, same final adapters, same summary."""
    from compass.continual.tables import continual_tables

    (cached, _), (plain, _) = runs(0.0, cache=True), runs(0.0, cache=False)
    assert len(cached["events"]) >= 8  # the comparison covers real updates
    for name in ("drift", "accuracy", "events"):
        pd.testing.assert_frame_equal(cached[name], plain[name])
    for key, correct in plain["per_item"].items():
        np.testing.assert_array_equal(cached["per_item"][key], correct)
    for key, nll in plain["per_item_nll"].items():  # scored in other batches: allclose
        np.testing.assert_allclose(cached["per_item_nll"][key], nll, rtol=1e-4, atol=1e-4)
    for method, state in plain["states"].items():
        assert cached["states"][method].version == state.version
        assert same_weights(cached["states"][method].weights, state.weights)
    stream, cfg = continual_inputs["stream"], ecda_cfg()
    summaries = [continual_tables(cfg, stream, out)["summary"].drop(columns="seconds")
                 for out in (cached, plain)]
    pd.testing.assert_frame_equal(*summaries)
    assert cached["items_scored"] < plain["items_scored"]  # and the cache did save work


@pytest.mark.parametrize("delta", [0.0, 1.0])
def test_ecda_updates_only_where_its_monitor_triggered(runs, delta):
    """delta = 1 (JS never exceeds 1 bit): no trigger, no ECDA update; delta = 0: a trigger and
    an ECDA update at every step after T0. The baselines ignore the monitor either way."""
    out, _ = runs(delta)
    drift = out["drift"].query("method == 'ecda' and t > 0")
    assert drift["trigger"].tolist() == [delta == 0.0] * 2  # the forcing worked
    assert events_of(out, "ecda") == drift.loc[drift["trigger"], "t"].tolist()
    assert out["states"]["ecda"].compute["updates"] == len(events_of(out, "ecda"))
    if delta == 1.0:
        assert set(out["accuracy"].query("method == 'ecda'")["version"]) == {"T0"}
    for method in UPDATING:
        assert events_of(out, method) == [1, 2], method


def test_a_calibrated_check_uses_the_permutation_threshold_of_its_windows(runs, continual_inputs):
    """ecda.delta = 'calibrated': every check records the threshold it used, triggers are JS
    above it, and a check's threshold is the permutation threshold of its reference (the T0
    window: usage at deployment) and its window."""
    from compass.continual.drift import permutation_threshold

    out, _ = runs("calibrated")
    drift, cfg = out["drift"], ecda_cfg()
    assert (drift["trigger"] == (drift["js"] > drift["delta"])).all()
    assign, stream, k = continual_inputs["window_assign"], continual_inputs["stream"], continual_inputs["pool"].k
    reference, _ = assign(stream[0].window)
    assert np.array_equal(out["reference_labels"], reference)
    later, _ = assign(stream[1].window)
    want = permutation_threshold(np.bincount(reference, minlength=k), np.bincount(later, minlength=k),
                                 cfg.ecda.false_alarm_rate, cfg.ecda.n_permutations,
                                 np.random.default_rng([cfg.seed + 1, 1]))
    first = drift[(drift["t"] == 1) & (drift["method"] == "ecda")]
    assert first["delta"].iloc[0] == pytest.approx(want)


def test_fixed_delta_is_used_as_given(runs):
    out, _ = runs(1.0)
    assert (out["drift"]["delta"] == 1.0).all()


def test_no_update_never_changes_its_adapter(runs):
    out, start = runs(0.0)
    state = out["states"]["no_update"]
    assert same_weights(state.weights, start) and state.version == "T0"
    assert events_of(out, "no_update") == [] and state.compute["updates"] == 0
    assert set(out["accuracy"].query("method == 'no_update'")["version"]) == {"T0"}


def test_forgetting_is_backward_transfer_on_earlier_test_sets():
    """continual_tables against a hand computation on a constructed accuracy table: final minus
    the version served right after each earlier window, not minus the best version seen."""
    from types import SimpleNamespace

    from compass.continual.tables import continual_tables

    # correctness on test0 / test1 / test2 (four items each) of the version served at t = 0, 1, 2
    forgets = {("f0", "test0"): [1, 1, 1, 0], ("f1", "test0"): [1, 1, 0, 0], ("f2", "test0"): [1, 0, 0, 0],
               ("f1", "test1"): [1, 1, 1, 1], ("f2", "test1"): [0, 1, 1, 1], ("f2", "test2"): [1, 1, 0, 0]}
    learns = {("l0", "test0"): [0, 0, 0, 1], ("l1", "test0"): [0, 0, 1, 1], ("l2", "test0"): [0, 1, 1, 1],
              ("l1", "test1"): [0, 0, 0, 0], ("l2", "test1"): [1, 0, 0, 0], ("l2", "test2"): [1, 0, 0, 0]}
    rows = []
    for method, table in (("forgets", forgets), ("learns", learns)):
        for t in range(3):
            for j in range(t + 1):
                version = f"{method[0]}{t}"
                rows.append({"t": t, "eval_step": j, "method": method, "version": version,
                             "accuracy": float(np.mean(table[(version, f"test{j}")])), "n": 4})
    per_item = {k: np.array(v) for k, v in {**forgets, **learns}.items()}
    compute = {"updates": 2, "steps": 4, "tokens": 100, "seconds": 1.0}
    out = {"accuracy": pd.DataFrame(rows), "per_item": per_item,
           "states": {m: SimpleNamespace(compute=compute) for m in ("forgets", "learns")}}
    summary = continual_tables(ecda_cfg(), [None] * 3, out)["summary"].set_index("method")
    # forgets: test0 0.75 right after T0 -> final 0.25; test1 1.0 after T1 -> final 0.75
    assert summary.loc["forgets", "forgetting_pp"] == pytest.approx(((0.25 - 0.75) + (0.75 - 1.0)) / 2 * 100)
    # learns: test0 0.25 after T0 -> final 0.75 (+0.5); test1 0.0 after T1 -> 0.25 (+0.25)
    assert summary.loc["learns", "forgetting_pp"] == pytest.approx((0.5 + 0.25) / 2 * 100)
    # plasticity: accuracy on test j right after step j (j >= 1); final: last version, all sets
    assert summary.loc["forgets", "plasticity"] == pytest.approx((1.0 + 0.5) / 2)
    assert summary.loc["forgets", "final_accuracy"] == pytest.approx((0.25 + 0.75 + 0.5) / 3)
    assert summary.loc["learns", "final_accuracy"] == pytest.approx((0.75 + 0.25 + 0.25) / 3)
    assert summary.loc["forgets", "forgetting_ci_low"] <= -37.5 <= summary.loc["forgets", "forgetting_ci_high"]


def test_forgetting_has_no_bias_for_methods_that_update_often():
    """Negative control (the issue's null): 12 items, every update redraws 30% of the item
    outcomes, nothing really changes. Final-minus-best gave -6.2 pp for a method updating every
    step and -2.5 pp for one updating once; backward transfer is ~0 for both and its interval
    excludes 0 at about its nominal rate (binomial 99% interval around 5% over the simulations)."""
    from compass.continual.controls import forgetting_null

    table = forgetting_null(simulations=300, seed=0).set_index("profile")
    for profile in ("every step", "once"):
        row = table.loc[profile]
        assert abs(row["forgetting_pp"]) < 1.5, row
        assert row["false_positive_ci_low"] <= 0.05 + 1e-9 and row["false_positive_rate"] <= 0.10, row
    # the bias the old definition had, growing with the number of updates
    assert table.loc["every step", "old_definition_pp"] < -3.0
    assert table.loc["every step", "old_definition_pp"] < table.loc["once", "old_definition_pp"] < 0
    assert table.loc["never", "forgetting_pp"] == 0.0


def _nan_then_train(real_update):
    """A planted bad update: corrupts the adapter to NaN, then trains (the loss is NaN)."""
    def update(model, *args, **kwargs):
        with torch.no_grad():
            for p in ecda.trainable(model).values():
                p.fill_(float("nan"))
        return real_update(model, *args, **kwargs)
    return update


def _nan_and_return(model, *args, **kwargs):
    """A planted bad update that reports success: the adapter is left all NaN."""
    with torch.no_grad():
        for p in ecda.trainable(model).values():
            p.fill_(float("nan"))
    return ecda.UpdateResult(steps=1, tokens=0, seconds=0.0)


def _finite_means_right(model, tokenizer, items, show_progress_bar=False):
    """A stand-in scorer: every item right while the adapter is finite, wrong once it is not."""
    finite = all(bool(torch.isfinite(p).all()) for p in ecda.trainable(model).values())
    return pd.DataFrame({"id": [it["id"] for it in items], "acc": int(finite)})


@pytest.mark.parametrize("plant", ["nan_loss", "nan_weights"])
def test_planted_bad_update_is_rolled_back(tok, continual_inputs, monkeypatch, plant):
    """Every update is numerically broken: each is rolled back (non-finite loss or weights), also
    for the methods the guard does not judge, and every method keeps serving exactly the weights
    it had before."""
    from compass.evaluation import scoring

    if plant == "nan_loss":
        monkeypatch.setattr(ecda, "update", _nan_then_train(ecda.update))
        reason = "non-finite loss"
    else:
        monkeypatch.setattr(ecda, "update", _nan_and_return)
        monkeypatch.setattr(scoring, "score_items", _finite_means_right)
        reason = "non-finite weights"
    out, start = run_stream(tok, continual_inputs, delta=0.0)
    events = real_events(out)
    assert len(events) == 10 and (events["event"] == "rolled_back").all()
    assert events["reason"].str.startswith(reason).all()
    for method, state in out["states"].items():
        assert state.version == "T0" and same_weights(state.weights, start), method
    assert set(out["accuracy"]["version"]) == {"T0"}


def _shifted(model, *args, **kwargs):
    """A bad update with finite weights: every adapter weight moves by 0.01."""
    with torch.no_grad():
        for p in ecda.trainable(model).values():
            p.add_(0.01)
    return ecda.UpdateResult(steps=1, tokens=0, seconds=0.0)


def test_only_ecda_is_guarded(tok, continual_inputs, monkeypatch):
    """Every update makes every validation item wrong. ECDA's guard rolls each of its updates
    back; the baselines (the paper's: naive, EWC, random rehearsal, full retraining) serve what
    they trained, so the forgetting an update causes stays visible in their tables."""
    from compass.continual.recipes import RECIPES
    from compass.evaluation import scoring

    start = {}

    def right_until_changed(model, tokenizer, items, show_progress_bar=False):
        now = ecda.trainable(model)
        same = all(torch.equal(p, start[n]) for n, p in now.items())
        return pd.DataFrame({"id": [it["id"] for it in items], "acc": int(same)})

    monkeypatch.setattr(ecda, "update", _shifted)
    monkeypatch.setattr(scoring, "score_items", right_until_changed)
    from compass.continual import runner

    model = fresh_model(tok)
    start.update(ecda.snapshot(model))
    out = runner.run(model, tok, cfg=ecda_cfg(delta=0.0, planted_regression_at=0),
                     show_progress_bar=False, **continual_inputs)
    events = real_events(out)
    assert [m for m, r in RECIPES.items() if r["guard"]] == ["ecda"]
    ecda_events = events[events["method"] == "ecda"]
    assert len(ecda_events) and (ecda_events["event"] == "rolled_back").all()
    assert (ecda_events["rule"] == "accuracy").all() and ecda_events["guarded"].all()
    assert out["states"]["ecda"].version == "T0"
    for method in ("naive", "ewc", "random_rehearsal", "full_retrain"):
        mine = events[events["method"] == method]
        assert len(mine) == 2 and (mine["event"] == "accepted").all(), method
        assert not mine["guarded"].any() and (mine["new_val"] == 0).all(), method
        assert out["states"][method].version == f"{method}@T2", method


def test_item_scores_never_rescore_an_unchanged_adapter(monkeypatch):
    """(version, item) pairs are scored once, across item sets and calls; a new version, or the
    uncached path, scores again; an accepted candidate's validation items are not rescored."""
    from compass.continual import runner
    from compass.evaluation import scoring

    scored = []

    def fake(model, tokenizer, items, show_progress_bar=False):
        scored.append([it["id"] for it in items])
        return pd.DataFrame({"id": [it["id"] for it in items], "acc": [len(it["id"]) % 2 for it in items]})

    monkeypatch.setattr(scoring, "score_items", fake)
    monkeypatch.setattr(ecda, "restore", lambda model, weights: None)
    a, b, c = ({"id": x} for x in ("a", "bb", "c"))
    scores = runner.ItemScores(model=None, tokenizer=None)
    first = scores.sets("v0", {}, [("test0", [a, b]), ("test1", [b, c])])
    assert scored == [["a", "bb", "c"]]  # one pass, the shared item once
    assert [x.tolist() for x in first] == [[1, 0], [0, 1]]
    scores.sets("v0", {}, [("test1", [b, c]), ("val1", [a])])
    assert len(scored) == 1  # nothing new for v0
    scores.sets("v1", {}, [("test0", [a])])
    assert scored[-1] == ["a"]
    assert scores.candidate_accuracy([b, c]) == 0.5 and scored[-1] == ["bb", "c"]
    scores.adopt("v2")
    scores.sets("v2", {}, [("test0", [a, b]), ("test1", [b, c])])
    assert scored[-1] == ["a"]  # bb and c came with the accepted candidate
    plain = runner.ItemScores(model=None, tokenizer=None, cache=False)
    plain.sets("v0", {}, [("test0", [a])])
    plain.sets("v0", {}, [("test0", [a])])
    assert scored[-2:] == [["a"], ["a"]]


def test_one_item_id_must_name_one_item():
    from types import SimpleNamespace

    from compass.continual.runner import check_item_ids

    item = {"id": "x", "question": "q", "choices": ["a", "b"], "answer": 0}
    check_item_ids([SimpleNamespace(validation=[item], test=[dict(item)])])
    with pytest.raises(ValueError, match="item id 'x' names two different items"):
        check_item_ids([SimpleNamespace(validation=[item], test=[{**item, "answer": 1}])])


def test_guarded_update_validates_once_when_the_old_score_is_known(tok, peft_model):
    calls = []

    def validate():
        calls.append(1)
        return 0.5

    accepted, event, _ = ecda.guarded_update(
        peft_model, lambda: ecda.update(peft_model, tok, EXAMPLES, 1, 1e-3, 4, 48, 0), validate,
        tolerance=0.1, old_score=0.55)
    assert accepted and event["old_val"] == 0.55 and event["new_val"] == 0.5 and len(calls) == 1


# ---- the likelihood rule of the rollback guard, NLL forgetting, the planted regression ---------
def _train(model, tok):
    return lambda: ecda.update(model, tok, EXAMPLES, 1, 1e-3, 4, 48, 0)


@pytest.mark.parametrize("new, accepted, rule", [
    ({"acc": 0.5, "nll": 2.0 + 0.3}, False, "nll"),  # accuracy unchanged, NLL up by more than 0.25
    ({"acc": 0.5, "nll": 2.0 + 0.2}, True, ""),  # NLL up by less than the tolerance
    ({"acc": 0.5, "nll": 1.5}, True, ""),  # NLL down
    ({"acc": 0.2, "nll": 1.5}, False, "accuracy"),  # the accuracy rule still acts alone
    ({"acc": 0.2, "nll": 3.0}, False, "accuracy+nll"),
    ({"acc": 0.5, "nll": float("nan")}, False, "nll"),  # a NaN candidate NLL is a regression
])
def test_guard_rolls_back_on_an_nll_rise(tok, peft_model, new, accepted, rule):
    before = ecda.snapshot(peft_model)
    ok, event, _ = ecda.guarded_update(peft_model, _train(peft_model, tok), lambda: new,
                                       tolerance=0.1, old_score={"acc": 0.5, "nll": 2.0},
                                       nll_tolerance=0.25)
    assert ok is accepted and event["rule"] == rule
    assert (event["old_val"], event["old_nll"]) == (0.5, 2.0)
    assert event["new_val"] == new["acc"]
    assert event["new_nll"] == new["nll"] or np.isnan(new["nll"])
    if "nll" in rule:
        assert "validation NLL rose" in event["reason"]
    if not accepted:
        assert same_weights(ecda.snapshot(peft_model), before)


def test_guard_without_nll_keeps_the_accuracy_rule(tok, peft_model):
    """No nll_tolerance, or no NLL for the old adapter (a plain accuracy): only accuracy counts."""
    for old, tol in (({"acc": 0.5, "nll": 2.0}, None), (0.5, 0.25)):
        ok, event, _ = ecda.guarded_update(peft_model, _train(peft_model, tok),
                                           lambda: {"acc": 0.5, "nll": 9.0}, 0.1, old_score=old,
                                           nll_tolerance=tol)
        assert ok and event["rule"] == ""


def test_nll_forgetting_is_backward_transfer_on_earlier_test_sets():
    """continual_tables' NLL columns against a hand computation (mirrors the accuracy test):
    forgetting_nll = final - the mean NLL right after each earlier window was learned (positive =
    forgot); final_nll = mean NLL of the last version over all windows' items."""
    from types import SimpleNamespace

    from compass.continual.tables import continual_tables

    # NLL on test0 / test1 / test2 (two items each) of the version served at t = 0, 1, 2
    nll = {("v0", "test0"): [1.0, 2.0], ("v1", "test0"): [0.5, 1.5], ("v2", "test0"): [2.0, 3.0],
           ("v1", "test1"): [1.0, 1.0], ("v2", "test1"): [1.5, 1.3], ("v2", "test2"): [0.7, 0.9]}
    correct = {key: np.array([1, 0]) for key in nll}  # accuracy flat: only NLL sees the change
    rows = [{"t": t, "eval_step": j, "method": "m", "version": f"v{t}", "n": 2,
             "accuracy": 0.5, "nll": float(np.mean(nll[(f"v{t}", f"test{j}")]))}
            for t in range(3) for j in range(t + 1)]
    out = {"accuracy": pd.DataFrame(rows), "per_item": correct,
           "per_item_nll": {k: np.array(v) for k, v in nll.items()},
           "states": {"m": SimpleNamespace(compute={"updates": 2, "steps": 4, "tokens": 1, "seconds": 0})}}
    row = continual_tables(ecda_cfg(), [None] * 3, out)["summary"].set_index("method").loc["m"]
    # test0: learned by v0 ([1.0, 2.0]), final v2 ([2.0, 3.0]): +1.0 per item; test1: learned by
    # v1 ([1.0, 1.0]), final v2 ([1.5, 1.3]): +0.5 and +0.3. Items: [1.0, 1.0, 0.5, 0.3]
    assert row["forgetting_nll"] == pytest.approx((1.0 + 1.0 + 0.5 + 0.3) / 4)
    assert row["final_nll"] == pytest.approx((2.0 + 3.0 + 1.5 + 1.3 + 0.7 + 0.9) / 6)
    assert row["forgetting_nll_ci_low"] <= row["forgetting_nll"] <= row["forgetting_nll_ci_high"]
    assert 0.3 <= row["forgetting_nll_ci_low"] and row["forgetting_nll_ci_high"] <= 1.0
    assert row["final_nll_ci_low"] <= row["final_nll"] <= row["final_nll_ci_high"]
    assert row["forgetting_pp"] == 0.0  # the accuracy table saw nothing


@pytest.mark.parametrize("delta", [0.0, 1.0])
def test_planted_update_is_never_served_nor_charged(runs, delta):
    """ecda.planted_regression_at = 2 (the default): after every method acted at T2, one planted
    update goes through ECDA's guard. Whatever the guard says (the random tiny model's NLL is
    about ln V, where junk cannot make it worse: see the next test), ECDA keeps serving its own
    adapter bit-identically, the planted update is not charged and never enters the tables."""
    out, start = runs(delta)
    events = out["events"]
    planted = events[events["planted"].astype(bool)]
    assert len(planted) == 1 and planted["t"].iloc[0] == 2 and planted["method"].iloc[0] == "ecda"
    assert out["planted"]["event"] in ("planted_rolled_back", "planted_not_caught")
    assert out["planted"]["weights_unchanged"]
    state = out["states"]["ecda"]
    assert state.compute["updates"] == len(events_of(out, "ecda"))  # not charged
    if delta == 1.0:
        assert state.version == "T0" and same_weights(state.weights, start)
    assert (real_events(out)["event"].isin(["accepted", "rolled_back"])).all()


@pytest.fixture(scope="module")
def trained_lm(tok, continual_inputs):
    """A tiny model that has learnt the synthetic target pairs (full fine-tuning, then a fresh
    LoRA on top): its answers' NLL is far below ln V, so a bad update can raise it."""
    base = tiny_gemma(len(tok))
    pairs = [{"prompt": r["prompt"], "response": r["response"]}
             for r in continual_inputs["pairs_by_id"].values() if r["language"] == "uk"]
    base.train()
    ecda.update(base, tok, pairs, 60, 1e-2, 16, 32, 0)
    for p in base.parameters():
        p.requires_grad_(False)
    return get_peft_model(base, lora_config(config.TrainConfig())).eval()


def test_planted_regression_is_caught_by_the_nll_rule(tok, trained_lm, continual_inputs):
    """On a model that knows its answers, ordinary updates move the validation NLL by far less
    than ecda.rollback_nll_tolerance, and the planted update (corrupted data, more steps at a
    higher learning rate) raises it by more: it is rolled back by the likelihood rule and ECDA's
    served weights are bit-identical before and after."""
    from compass.continual import runner

    cfg = ecda_cfg()
    out = runner.run(trained_lm, tok, cfg=cfg, show_progress_bar=False, **continual_inputs)
    row, tolerance = out["planted"], cfg.ecda.rollback_nll_tolerance
    assert row["event"] == "planted_rolled_back" and row["weights_unchanged"]
    assert "nll" in row["rule"] and row["new_nll"] > row["old_nll"] + tolerance
    real = real_events(out)
    rise = (real["new_nll"] - real["old_nll"]).abs()
    assert len(real) >= 8 and (rise < tolerance / 10).all()  # ordinary updates: tiny NLL moves
    assert not real["rule"].str.contains("nll").any()
    assert out["states"]["ecda"].compute["updates"] == len(events_of(out, "ecda"))


def test_no_planted_regression_when_disabled(tok, continual_inputs):
    out, _ = run_stream(tok, continual_inputs, delta=1.0, planted_regression_at=0)
    assert out["planted"] is None and not out["events"]["planted"].astype(bool).any()


def test_corrupted_data_is_deterministic():
    from compass.continual.runner import corrupt

    window = pd.DataFrame({"prompt": ["a?", "b?"], "response": ["xyz w", "uv"]})
    data = corrupt(window, seed=3)
    assert data == corrupt(window, seed=3)
    assert [d["prompt"] for d in data] == ["a?", "b?"]
    assert [len(d["response"]) for d in data] == [5, 2] and len({d["response"][0] for d in data}) == 1


def test_language_shift_brings_in_another_language():
    """ecda.shift = 'language': a growing share of each window is another language's pairs (the
    schedule's share of the window), the items stay the target's; deterministic by seed."""
    rng = np.random.default_rng(0)
    topics = [f"t{i}" for i in range(5)]
    pairs = pd.DataFrame({"id": [f"p{i}" for i in range(300)], "topic": rng.choice(topics, 300),
                          "prompt": "p", "response": "r", "language": "uk"})
    other = pd.DataFrame({"id": [f"o{i}" for i in range(100)], "topic": "t0", "prompt": "q",
                          "response": "s", "language": "en"})
    items = [{"id": f"i{i}", "topic": topics[i % 5], "question": "q", "choices": ["a", "b"],
              "answer": 0} for i in range(100)]
    cfg = config.EcdaConfig(steps=4, window=50, test_items_per_step=10, val_items_per_step=4,
                            shift="language", schedule="gradual", shift_strength=0.6)
    a = simulate(pairs, items, cfg, seed=1, other=other)
    assert [s.window["id"].tolist() for s in a] == \
        [s.window["id"].tolist() for s in simulate(pairs, items, cfg, seed=1, other=other)]
    assert [int((s.window["language"] == "en").sum()) for s in a] == [0, 10, 20, 30]
    assert all(len(s.window) == 50 and s.window["id"].is_unique for s in a)
    assert a[-1].mixture["language:en"] == pytest.approx(0.6)
    assert all(it["id"].startswith("i") for s in a for it in s.test)
    with pytest.raises(ValueError, match="needs other pairs"):
        simulate(pairs, items, cfg, seed=1)


def test_book_shift_brings_in_another_languages_prose():
    """ecda.shift = 'book': windows take a growing share of a OneRuler book as consecutive
    passage pairs (another domain); the items stay the target's."""
    from compass.continual.stream import book_pairs

    book = book_pairs("uk")
    assert len(book) > 40 and set(book["language"]) == {"uk"} and book["id"].is_unique
    first = book.iloc[0]
    assert first["prompt"] and first["response"] and first["prompt"] != first["response"]
    rng = np.random.default_rng(0)
    pairs = pd.DataFrame({"id": [f"p{i}" for i in range(300)], "topic": rng.choice(["a", "b"], 300),
                          "prompt": "p", "response": "r", "language": "uk"})
    items = [{"id": f"i{i}", "topic": "ab"[i % 2], "question": "q", "choices": ["a", "b"],
              "answer": 0} for i in range(60)]
    cfg = config.EcdaConfig(steps=3, window=40, test_items_per_step=6, val_items_per_step=2,
                            shift="book", schedule="abrupt", abrupt_at=1, shift_strength=0.75)
    stream = simulate(pairs, items, cfg, seed=0, other=book)
    assert [int((s.window["topic"] == "book").sum()) for s in stream] == [0, 30, 30]
    assert stream[-1].mixture["book:uk"] == pytest.approx(0.75)


def test_answer_scoring_keeps_each_items_answer_alone(continual_inputs):
    """ecda.scoring: answer scores each item's correct answer alone: same ids and questions, one
    choice (the answer); choices keeps the stream; anything else is refused by name."""
    from compass.continual.stream import for_scoring

    stream = continual_inputs["stream"]
    reduced = for_scoring(stream, "answer")
    for before, after in zip(stream, reduced):
        for old, new in zip(before.validation + before.test, after.validation + after.test):
            assert new["id"] == old["id"] and new["question"] == old["question"]
            assert new["choices"] == [old["choices"][old["answer"]]] and new["answer"] == 0
        assert after.window is before.window
    assert for_scoring(stream, "choices") is stream
    with pytest.raises(ValueError, match="'bogus'"):
        for_scoring(stream, "bogus")
    with pytest.raises(config.ConfigError, match="ecda.scoring"):
        ecda_cfg(scoring="bogus")


def test_answer_scoring_tables_have_no_accuracy():
    """Where every item has one choice its "accuracy" is 1 by construction: the tables leave
    the accuracy columns out and keep the NLL ones, plasticity included."""
    from types import SimpleNamespace

    from compass.continual.tables import continual_tables

    nll = {("v0", "test0"): [1.0, 2.0], ("v1", "test0"): [1.5, 2.5], ("v1", "test1"): [1.0, 3.0]}
    rows = [{"t": t, "eval_step": j, "method": "m", "version": f"v{t}", "n": 2, "accuracy": 1.0,
             "nll": float(np.mean(nll[(f"v{t}", f"test{j}")]))} for t in range(2) for j in range(t + 1)]
    out = {"accuracy": pd.DataFrame(rows), "per_item": {k: np.ones(2, int) for k in nll},
           "per_item_nll": {k: np.array(v) for k, v in nll.items()},
           "states": {"m": SimpleNamespace(compute={"updates": 1, "steps": 2, "tokens": 1, "seconds": 0})}}
    tables = continual_tables(ecda_cfg(scoring="answer"), [None] * 2, out)
    row = tables["summary"].set_index("method").loc["m"]
    assert not {"forgetting_pp", "plasticity", "final_accuracy"} & set(row.index)
    assert row["forgetting_nll"] == pytest.approx(0.5)
    assert row["plasticity_nll"] == pytest.approx(2.0)  # v1 on test1
    assert "forgetting_pp" not in tables["forgetting_by_window"]
    with_acc = continual_tables(ecda_cfg(), [None] * 2, out)["summary"]
    assert {"forgetting_pp", "plasticity", "final_accuracy"} <= set(with_acc.columns)


def test_forgetting_against_naive_is_paired_by_item():
    """Each method's NLL forgetting minus naive's on the same items: a method that forgets
    0.5 nats less on every item gets -0.5 with an interval of one point; naive gets 0."""
    from types import SimpleNamespace

    from compass.continual.tables import continual_tables

    noise = np.random.default_rng(0).normal(0, 1, 8)  # item difficulty, shared by both
    nll = {}
    for method, forgot in (("naive", 1.0), ("ecda", 0.5)):
        nll[(f"{method}0", "test0")] = 3 + noise
        nll[(f"{method}1", "test0")] = 3 + noise + forgot
        nll[(f"{method}1", "test1")] = 3 + noise
    rows = [{"t": t, "eval_step": j, "method": m, "version": f"{m}{t}", "n": 8, "accuracy": 1.0,
             "nll": 0.0} for m in ("naive", "ecda") for t in range(2) for j in range(t + 1)]
    compute = {"updates": 1, "steps": 2, "tokens": 1, "seconds": 0}
    out = {"accuracy": pd.DataFrame(rows), "per_item": {k: np.ones(8, int) for k in nll},
           "per_item_nll": nll, "states": {m: SimpleNamespace(compute=compute) for m in ("naive", "ecda")}}
    summary = continual_tables(ecda_cfg(scoring="answer"), [None] * 2, out)["summary"].set_index("method")
    assert summary.loc["naive", "forgetting_nll_vs_naive"] == 0.0
    row = summary.loc["ecda"]
    assert row["forgetting_nll_vs_naive"] == pytest.approx(-0.5)
    assert row["forgetting_nll_vs_naive_ci_low"] == pytest.approx(-0.5)
    assert row["forgetting_nll_vs_naive_ci_high"] == pytest.approx(-0.5)
