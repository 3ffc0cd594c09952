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
    assert book._interval(0.3, 0.2, 0.41, 2) == "0.30 [0.20, 0.41]"
    assert book._stars(0.004) == " \\*\\*" and book._stars(0.03) == " \\*" and book._stars(0.2) == ""
    assert book._stars(float("nan")) == ""


def test_planted_regression_is_reported_apart_from_the_table():
    from compass import book

    caught = {"t": 2, "caught": True, "old_nll": 0.55, "new_nll": 1.58, "old_val": 0.5, "new_val": 0.33}
    text = book._planted_sentence(caught)
    assert "T2" in text and "rolled back" in text and "not counted" in text and "0.550 -> 1.580" in text
    assert "not caught" in book._planted_sentence({**caught, "caught": False})
    assert book._planted_sentence(None) == ""


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

    from compass import book, io

    monkeypatch.setattr(book.paths, "ecda_dir", lambda lang: tmp_path)
    io.write_csv(tmp_path / "events.csv", pd.DataFrame([]))
    assert book._guard_sentence("fa") == ""
    rows = [{"t": 1, "method": "ecda", "event": "rolled_back", "planted": False},
            {"t": 1, "method": "naive", "event": "accepted", "planted": False},
            {"t": 2, "method": "ecda", "event": "planted_rolled_back", "planted": True}]
    io.write_csv(tmp_path / "events.csv", pd.DataFrame(rows))
    assert "guard rolled back every one" in book._guard_sentence("fa")
    rows[0]["event"] = "accepted"
    io.write_csv(tmp_path / "events.csv", pd.DataFrame(rows))
    assert book._guard_sentence("fa") == ""


def test_the_build_page_names_each_data_set_and_model_with_its_revision():
    from compass import config

    cfg = config.load(Path(__file__).resolve().parents[1] / "profiles" / "paper.yaml", {
        "data.target_dataset": "CohereLabs/Global-MMLU@abc1234",
        "train.model_sources": {"qwen2.5-7b": "Qwen/Qwen2.5-7B@v2"}})
    line = book.data_sources_line(cfg)
    assert "`CohereLabs/Global-MMLU` at revision `abc1234`" in line
    assert "`CohereLabs/aya_dataset` (hub main, not pinned)" in line
    assert "model `qwen2.5-7b`: `Qwen/Qwen2.5-7B` at revision `v2`" in line
