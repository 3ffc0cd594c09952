"""Smoke runs of every notebook under papermill with tiny parameters, in a temporary data root."""
import json

import pytest

from compass import io, paths
from compass.notebook_run import run
from tests.conftest import WORKSPACE_OVERRIDES

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def executed(tiny_workspace):
    data = run("00_data", "uk", WORKSPACE_OVERRIDES)
    sampling = run("01_sampling", "uk", WORKSPACE_OVERRIDES)
    return data, sampling


def test_data_notebook_writes_its_outputs(executed):
    nb = json.loads(executed[0].read_text())
    assert all(c.get("outputs") is not None for c in nb["cells"] if c["cell_type"] == "code")
    metrics = io.read_json(paths.data_metrics("uk"))
    assert metrics["test_items"] == 20 and metrics["dev"] > 0
    assert (paths.figures_dir("uk", "data") / "splits.png").stat().st_size > 1000


def test_sampling_notebook_writes_manifests_and_figures(executed):
    metrics = io.read_json(paths.sampling_metrics("uk"))
    for method in ("random", "langsim", "dsir", "compass", "compass_inverse", "compass_fill"):
        manifest = io.read_csv(paths.manifest_file("uk", method), required=("id", "language", "cluster", "score"))
        assert len(manifest) == 25 == metrics["methods"][method]["selected"]
        report = io.read_csv(paths.cluster_report_file("uk", method))
        assert report["selected"].sum() == 25
    for name in ("occupancy.png", "cluster_map.png", "languages.png"):
        assert (paths.figures_dir("uk", "sampling") / name).stat().st_size > 1000


def test_rerun_is_deterministic(executed):
    before = paths.manifest_file("uk", "compass").read_text()
    run("01_sampling", "uk", WORKSPACE_OVERRIDES)
    assert paths.manifest_file("uk", "compass").read_text() == before


@pytest.mark.slow
def test_book_builds_from_the_executed_notebooks(executed, monkeypatch, tmp_path):
    from compass import book, config

    cfg = config.load(overrides=WORKSPACE_OVERRIDES)
    monkeypatch.setattr(paths, "BOOK_BUILD", tmp_path / "_build")
    monkeypatch.setattr(book, "SRC", tmp_path / "_src")
    monkeypatch.setattr(paths, "BOOK", paths.BOOK)  # static sources stay in the repo
    index = book.build(cfg)
    assert index.exists()
    page = (index.parent / "notebooks" / "01_sampling_uk.html").read_text()
    assert "silhouette chose" in page and "cluster occupancy" in page.lower()
