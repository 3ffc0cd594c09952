"""Exploratory runs read the pipeline's data but write only into a scratch overlay."""
import os

import pytest

from compass import io, paths, scratch


@pytest.fixture
def pipeline_data(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "languages" / "uk" / "sampling").mkdir(parents=True)
    (data / "languages" / "uk" / "sampling" / "metrics.json").write_text('{"k": 4}')
    (data / "languages" / "uk" / "data").mkdir()
    (data / "languages" / "uk" / "data" / "splits.csv").write_text("id,split\n")
    (data / "cache").mkdir()
    monkeypatch.setattr(paths, "scratch_root", lambda: data / "scratch")
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    return data


def test_writes_land_in_the_overlay_and_never_in_the_pipeline_data(pipeline_data):
    root = scratch.overlay("01_sampling_uk", pipeline_data)
    metrics = root / "languages" / "uk" / "sampling" / "metrics.json"
    assert io.read_json(metrics) == {"k": 4}  # reads see the pipeline's results
    io.write_json(metrics, {"k": 9})
    io.write_csv(root / "languages" / "uk" / "sampling" / "new.csv", __import__("pandas").DataFrame({"a": [1]}))
    assert io.read_json(pipeline_data / "languages" / "uk" / "sampling" / "metrics.json") == {"k": 4}
    assert io.read_json(metrics) == {"k": 9}
    assert not (pipeline_data / "languages" / "uk" / "sampling" / "new.csv").exists()
    assert (root / "cache").is_symlink()  # the embedding cache is shared, not copied
    assert not (root / "scratch").exists()


def test_overlay_is_rebuilt_fresh(pipeline_data):
    root = scratch.overlay("x", pipeline_data)
    io.write_text(root / "leftover.txt", "old run")
    root = scratch.overlay("x", pipeline_data)
    assert not (root / "leftover.txt").exists()


def test_only_pipeline_runs_and_chosen_folders_write_data(pipeline_data, monkeypatch):
    monkeypatch.delenv(scratch.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv(scratch.PIPELINE_ENV, "1")
    assert scratch.redirect_exploration("nb") == paths.data_root()
    monkeypatch.delenv(scratch.PIPELINE_ENV)
    monkeypatch.setattr(scratch, "overlay", lambda name, source=None: pipeline_data / "scratch" / name)
    where = scratch.redirect_exploration("03_evaluate_uk")
    assert where == pipeline_data / "scratch" / "03_evaluate_uk"
    assert os.environ[scratch.DATA_DIR_ENV] == str(where)
    assert scratch.redirect_exploration("again") == where  # a chosen folder is kept


def test_notebook_run_dry_run_names_the_scratch_folder(capsys, monkeypatch):
    from compass import notebook_run

    monkeypatch.delenv(scratch.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(scratch.PIPELINE_ENV, raising=False)
    notebook_run.main(["01_sampling", "--lang", "ko", "--set", "sampling.budget=100", "--dry-run"])
    assert "data/scratch/01_sampling_ko/" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"sampling.budget = 0 must be an integer >= 1"):
        notebook_run.main(["01_sampling", "--lang", "ko", "--set", "sampling.budget=0", "--dry-run"])
    with pytest.raises(SystemExit, match=r"'nope.ipynb' does not exist; choose one of \['00_data'"):
        notebook_run.main(["nope", "--dry-run"])
