"""Book assembly helpers that need no pipeline run: page titles and table cells."""
import json
from pathlib import Path

from compass import book, config


def _cfg():
    return config.from_dict({"languages": {"targets": ["fa", "uk"]}, "ecda": {"language": "fa"}})


def test_every_notebook_page_is_titled_by_its_language():
    cfg = _cfg()
    assert book.page_title("Training the adapters of one language", "02_train_fa", cfg) == \
        "Training the adapters of Persian"
    assert book.page_title("Sampling: what each method selects", "01_sampling_uk", cfg) == \
        "Sampling for Ukrainian: what each method selects"
    assert book.page_title("COMPASS-ECDA: continual updates", "04_ecda", cfg) == \
        "COMPASS-ECDA for Persian: continual updates"
    assert book.page_title("Results", "results", cfg) == "Results"  # not a per-language page


def test_copy_titled_rewrites_only_the_first_heading(tmp_path):
    source = tmp_path / "03_evaluate_uk.ipynb"
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Evaluation of one language\n", "text"]},
             {"cell_type": "markdown", "metadata": {}, "source": ["# Another heading"]}]
    source.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    book.copy_titled(source, tmp_path / "out.ipynb", _cfg())
    out = json.loads((tmp_path / "out.ipynb").read_text())
    assert out["cells"][0]["source"] == "# Evaluation of Ukrainian\ntext"
    assert out["cells"][1]["source"] == ["# Another heading"]


def test_interval_cells():
    from compass.book.cells import interval, stars

    assert interval(0.3, 0.2, 0.41, 2) == "0.30 [0.20, 0.41]"
    assert stars(0.004) == " \\*\\*" and stars(0.03) == " \\*" and stars(0.2) == ""
    assert stars(float("nan")) == ""


def test_planted_regression_is_reported_apart_from_the_table():
    from compass.book.continual import planted_sentence

    caught = {"t": 2, "caught": True, "old_nll": 0.55, "new_nll": 1.58, "old_val": 0.5, "new_val": 0.33}
    text = planted_sentence(caught)
    assert "T2" in text and "rolled back" in text and "not counted" in text and "0.550 -> 1.580" in text
    assert "not caught" in planted_sentence({**caught, "caught": False})
    assert planted_sentence(None) == ""


def test_training_line_reports_the_switches_the_adapters_ran_with(tmp_path, monkeypatch):
    from compass import paths

    monkeypatch.setattr(paths, "adapter_dir", lambda lang, model, method, replicate=0: tmp_path / lang / method)
    cfg = _cfg()
    assert book.training_line(cfg) == ""  # nothing trained yet
    folder = tmp_path / "uk" / "dsir"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"train_config": {
        "packing": True, "fused_loss": "chunked", "gradient_checkpointing": False, "compile": True,
        "adapter_dtype": "float32", "processes": 2}}))
    line = book.training_line(cfg)
    assert "packing on, fused loss chunked, gradient checkpointing off, compile on" in line
    assert "LoRA weights float32, 2 processes" in line


def test_the_guard_sentence_only_where_every_ecda_update_was_rolled_back(tmp_path, monkeypatch):
    """ECDA's low forgetting is attributed to its guard only when the guard rolled back every
    update ECDA trained; no events at all (no method updated) is no sentence, not an error."""
    import pandas as pd

    from compass import io, paths
    from compass.book.continual import guard_sentence

    monkeypatch.setattr(paths, "ecda_dir", lambda lang: tmp_path)
    io.write_csv(tmp_path / "events.csv", pd.DataFrame([]))
    assert guard_sentence("fa") == ""
    rows = [{"t": 1, "method": "ecda", "event": "rolled_back", "planted": False},
            {"t": 1, "method": "naive", "event": "accepted", "planted": False},
            {"t": 2, "method": "ecda", "event": "planted_rolled_back", "planted": True}]
    io.write_csv(tmp_path / "events.csv", pd.DataFrame(rows))
    assert "guard rolled back every one" in guard_sentence("fa")
    rows[0]["event"] = "accepted"
    io.write_csv(tmp_path / "events.csv", pd.DataFrame(rows))
    assert guard_sentence("fa") == ""


def test_the_build_page_names_each_data_set_and_model_with_its_revision():
    from compass import config

    cfg = config.load(Path(__file__).resolve().parents[1] / "profiles" / "paper.yaml", {
        "data.target_dataset": "CohereLabs/Global-MMLU@abc1234",
        "train.model_sources": {"qwen2.5-7b-instruct": "Qwen/Qwen2.5-7B-Instruct@v2"}})
    line = book.data_sources_line(cfg)
    assert "`CohereLabs/Global-MMLU` at revision `abc1234`" in line
    assert "`CohereLabs/aya_dataset` (hub main, not pinned)" in line
    assert "model `qwen2.5-7b-instruct`: `Qwen/Qwen2.5-7B-Instruct` at revision `v2`" in line


# ---- the paper profile's book (compass.book.paper_*), on fake stage outputs: no pipeline run
PAPER_MODELS = ("phi-4-mini", "qwen2.5-7b-instruct")
PAPER_LANGS = ("ja", "ko")


def _paper_cfg(**overrides):
    from compass import config

    return config.load(Path(__file__).resolve().parents[1] / "profiles" / "paper.yaml", {
        "languages.targets": list(PAPER_LANGS), "train.models": list(PAPER_MODELS),
        "train.methods": ["random", "all", "langsim", "compass"], "ecda.language": "ja",
        "ecda.model": "phi-4-mini", "long_context.languages": list(PAPER_LANGS),
        "evaluation.prox.languages": ["ja"], **overrides})


def _gain_rows(gains: dict) -> list[dict]:
    """summary.csv rows: zero-shot and each method with its gain [CI] (pp)."""
    rows = [{"method": "zero_shot", "n": 400, "accuracy": 0.5, "ci_low": 0.45, "ci_high": 0.55,
             "metric": "acc"}]
    for method, (gain, low, high) in gains.items():
        rows.append({"method": method, "n": 400, "accuracy": 0.5 + gain / 100, "ci_low": 0.4,
                     "ci_high": 0.7, "gain_pp": gain, "gain_ci_low_pp": low,
                     "gain_ci_high_pp": high, "p_value": 0.001, "cohens_dz": 0.3, "metric": "acc"})
    return rows


def _write_paper_outputs(root: Path, phi_compass=(8.0, 5.0, 11.0)) -> None:
    """Every file the paper book reads, for two models x two languages; Phi-4-Mini's COMPASS
    gain is ``phi_compass`` (gain, CI low, CI high) in both languages."""
    import pandas as pd

    from compass import io, paths

    for model in PAPER_MODELS:
        for lang in PAPER_LANGS:
            out = paths.evaluation_dir(lang, model)
            compass = phi_compass if model == "phi-4-mini" else (3.0, -4.0, 10.0)
            io.write_csv(out / "summary.csv", pd.DataFrame(_gain_rows({
                "random": (1.0, -2.0, 4.0), "all": (-3.0, -5.0, -1.0), "langsim": (0.5, -2, 3),
                "compass": compass})))
            io.write_csv(out / "compass_vs_baselines.csv", pd.DataFrame([
                {"baseline": b, "n": 400, "accuracy": 0.58, "baseline_accuracy": 0.55,
                 "gain_pp": 3.0, "gain_ci_low_pp": 1.0, "gain_ci_high_pp": 5.0, "p_value": 0.01,
                 "p_holm": 0.02, "significant": True, "cohens_dz": 0.21, "metric": "acc"}
                for b in ("zero_shot", "random", "all", "langsim")]))
            io.write_csv(out / "by_cultural_label.csv", pd.DataFrame([
                {"cs_label": label, "method": m, "accuracy": 0.5 + 0.01 * i, "n": n}
                for i, m in enumerate(["zero_shot", "random", "all", "langsim", "compass"])
                for label, n in (("CS", 100), ("CA", 250), ("not annotated", 50))]))
            prox = lang == "ja"
            io.write_csv(out / "prox_summary.csv", pd.DataFrame([
                {"method": m, "n": 20, "exact_match": 0.3, "extraction_failure_rate": 0.05}
                for m in ("zero_shot", "compass")] if prox else []))
            io.write_csv(out / "prox_stats.csv", pd.DataFrame(
                _gain_rows({"compass": (5.0, 0.0, 10.0)}) if prox else []))
            io.write_json(paths.evaluation_metrics(lang, model), {"items": 400})
            io.write_csv(paths.long_context_dir(lang, model) / "summary.csv", pd.DataFrame([
                {"method": m, "task": t, "length": length, "score": 0.5, "n": 4}
                for m in ("zero_shot", "compass") for t in ("niah_single", "cwe")
                for length in (8000, 32000)]))
            io.write_json(paths.long_context_metrics(lang, model), {})
    io.write_csv(paths.ecda_dir("ja") / "summary.csv", pd.DataFrame([
        {"method": m, "forgetting_pp": f, "forgetting_ci_low": f - 3, "forgetting_ci_high": f + 3,
         "final_accuracy": a, "final_ci_low": a - 0.05, "final_ci_high": a + 0.05,
         "updates": 3, "steps": 12, "tokens": 1000}
        for m, f, a in (("naive", -10.0, 0.55), ("ecda", -1.0, 0.59), ("full_retrain", 0.0, 0.6))]))
    io.write_json(paths.ecda_metrics("ja"), {"steps": 4, "schedule": "gradual",
                                             "shift": "language", "triggers": 2, "rollbacks": 1})


def _claim(rows, claim_start: str, model: str) -> dict:
    return next(r for r in rows if r["paper's claim"].startswith(claim_start)
                and r["base model"] == model)


def test_the_reproduces_rule_on_a_figure_inside_and_outside_the_interval():
    from compass.book.paper_rule import Estimate, verdict

    assert verdict(Estimate(8.0, 5.0, 11.0), figure=8.9)[0] == "yes"
    assert verdict(Estimate(2.0, 0.5, 3.5), figure=8.9)[0] == "no"  # same sign, too small
    assert verdict(Estimate(3.0, -4.0, 10.0), figure=8.9)[0] == "inconclusive"  # holds 0 too
    assert verdict(Estimate(0.59, 0.5, 0.7), figure=0.592, change=False)[0] == "yes"
    assert verdict(Estimate(-3.0, -5.0, -1.0), direction=-1)[0] == "yes"
    assert verdict(Estimate(3.0, 1.0, 5.0), direction=-1)[0] == "no"
    assert verdict(Estimate(-1.0, -3.0, 1.0), direction=-1)[0] == "inconclusive"
    assert verdict(None, figure=8.9)[0] == "not measured here"


def test_pooled_gain_is_the_mean_with_the_interval_of_a_mean():
    import pandas as pd

    from compass.book.paper_rule import pooled

    one = pooled(pd.DataFrame({"g": [8.0], "l": [5.0], "h": [11.0]}), "g", "l", "h")
    assert (one.value, one.low, one.high) == (8.0, 5.0, 11.0)
    two = pooled(pd.DataFrame({"g": [8.0, 4.0], "l": [5.0, 1.0], "h": [11.0, 7.0]}), "g", "l", "h")
    assert two.value == 6.0 and abs((two.high - two.low) - 6.0 / 2 ** 0.5) < 1e-6


def test_the_paper_claims_table_follows_the_rule(tmp_path, monkeypatch):
    """Positive and negative control: Phi-4-Mini's planted COMPASS gain holds the paper's +8.9
    (yes) or lies above it (no); Qwen's holds 0 (inconclusive); Llama was not trained."""
    from compass.book import paper_claims

    monkeypatch.setenv("COMPASS_DATA_DIR", str(tmp_path))
    cfg = _paper_cfg()
    _write_paper_outputs(tmp_path)
    rows = paper_claims.claim_rows(cfg)
    phi = _claim(rows, "COMPASS gains +8.9", "Phi-4-Mini")
    assert phi["reproduces?"].startswith("**yes**") and phi["this run"].startswith("+8.0 pp [+5.9")
    assert "`microsoft/Phi-4-mini-instruct`" in phi["how measured"]
    assert "chat template" in phi["how measured"] and "0-shot" in phi["how measured"]
    assert _claim(rows, "COMPASS gains +6.7", "Qwen2.5-7B")["reproduces?"].startswith(
        "**inconclusive**")
    llama = _claim(rows, "COMPASS gains +6.1", "Llama-3.1-8B")["reproduces?"]
    assert llama.startswith("**not measured here**") and "not in `train.models`" in llama
    for paper in ("Phi-4-Mini", "Qwen2.5-7B"):  # one row per trained model
        assert _claim(rows, "All-data mixing", paper)["reproduces?"].startswith("**yes**")
        assert _claim(rows, "COMPASS beats typology", paper)["reproduces?"].startswith("**yes**")
    assert _claim(rows, "Naive updates forget", "Phi-4-Mini")["reproduces?"].startswith("**yes**")
    assert _claim(rows, "ECDA forgets", "Phi-4-Mini")["reproduces?"].startswith("**inconclusive")
    ecda = _claim(rows, "ECDA matches full retraining: ECDA", "Phi-4-Mini")["reproduces?"]
    assert ecda.startswith("**yes**")
    _write_paper_outputs(tmp_path, phi_compass=(20.0, 15.0, 25.0))  # negative control
    phi = _claim(paper_claims.claim_rows(cfg), "COMPASS gains +8.9", "Phi-4-Mini")
    phi = phi["reproduces?"]
    assert phi.startswith("**no**") and "above the paper's +8.9" in phi


def test_fixture_runs_are_not_measured_here_whatever_the_rule_says(tmp_path, monkeypatch):
    from compass.book import paper_claims

    monkeypatch.setenv("COMPASS_DATA_DIR", str(tmp_path))
    cfg = _paper_cfg(**{"data.target_dataset": "../shared/fixtures/global_mmlu/dev"})
    _write_paper_outputs(tmp_path)
    phi = _claim(paper_claims.claim_rows(cfg), "COMPASS gains +8.9", "Phi-4-Mini")["reproduces?"]
    assert phi.startswith("**not measured here**") and "fixtures" in phi
    assert "; the rule on these numbers: yes" in phi


def test_the_paper_tables_are_laid_out_by_base_model(tmp_path, monkeypatch):
    from compass.book import paper_tables

    monkeypatch.setenv("COMPASS_DATA_DIR", str(tmp_path))
    cfg = _paper_cfg()
    _write_paper_outputs(tmp_path)
    text = paper_tables.global_mmlu_section(cfg, tmp_path)
    assert [text.index(f"**`{m}`**") for m in PAPER_MODELS] == sorted(
        text.index(f"**`{m}`**") for m in PAPER_MODELS)
    phi = text[text.index("**`phi-4-mini`**"):text.index("**`qwen2.5-7b-instruct`**")]
    header = next(line for line in phi.splitlines() if line.startswith("| method"))
    assert all(col in header for col in ("method", "ja", "ko", "mean gain over languages", "paper"))
    assert "| `compass`" in phi and "+8.9 pp" in phi and "+8.0 pp [+5.9" in phi
    assert (tmp_path / "paper_gains.png").exists() and "generated/paper_gains.png" in text
    cultural = paper_tables.cultural_section(cfg)
    assert "ja CS" in cultural and "ko CA" in cultural and "ja 100 / 250 / 50" in cultural
    prox = paper_tables.prox_section(cfg)
    assert "| `compass`" in prox and "ko" not in prox.split("\n\n")[1].splitlines()[0]
    long_context = paper_tables.long_context_section(cfg)
    assert long_context.count("8,000 tokens") == 2 and "32,000 tokens" in long_context
    ecda = paper_tables.ecda_section(cfg)
    assert "-10.9" in ecda and "0.592" in ecda and "**`phi-4-mini`**" in ecda


TINY_PROSE = ("tiny profile", "270M", "270m-parameter", "several training seeds", "several seeds",
              "What the tiny profile tests", "300 items", "chatterbot", "chit-chat", "2-core",
              "Persian", "literary prose")


def test_the_paper_book_carries_no_tiny_profile_prose(tmp_path, monkeypatch):
    """Every page of the paper book that differs from the tiny one, and every table written for
    it, is free of the tiny profile's sentences; the pages it shares with tiny are too."""
    import re

    from compass import book, paths
    from compass.book import paper_pages, paper_tables

    monkeypatch.setenv("COMPASS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(paper_tables, "gains_figure", lambda cfg, folder: "")  # drawn above: time
    cfg = _paper_cfg()
    _write_paper_outputs(tmp_path)
    src = tmp_path / "src"
    (src / "generated").mkdir(parents=True)
    pages = paper_pages.write(cfg, src)
    assert {"intro.md", "paper.md", "data.md", "results.md", "continual.md"} <= set(pages)
    shared = [n for n in book.STATIC if n.endswith(".md") and n not in pages]
    texts = {n: (src / n).read_text() for n in pages}
    texts |= {n: (paths.BOOK / n).read_text() for n in shared}
    texts |= {f"generated/{n}": (src / "generated" / n).read_text() for n in paper_pages.GENERATED}
    for name, text in texts.items():
        for phrase in TINY_PROSE:
            assert phrase.lower() not in text.lower(), (name, phrase)
    included = {m for t in texts.values() for m in re.findall(r"\{include\} (generated/\S+)", t)}
    tiny_only = {"generated/claims.md", "generated/results_caveats.md", "generated/headline.md",
                 "generated/results_tables.md", "generated/nll_by_step.md"}
    assert not included & tiny_only  # tables written with tiny prose are not on paper pages
    assert "  - file: paper" in book.toc(cfg).splitlines()[3]  # first chapter after the intro
    assert "  - file: paper" not in book.toc(_cfg())
