"""benchmarks/rehearse_paper.py at reduced size: the paper stages' functions run on each of the
three architectures (built from their configs) and the fixture rows, and report each stage."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import fixture_path

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_every_stage_runs_on_every_paper_architecture(tmp_path, monkeypatch):
    fixture_path("aya")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import rehearse_paper

    out = tmp_path / "rehearsal.json"
    table = rehearse_paper.main(["--steps", "1", "--out", str(out)])
    assert set(table["model"]) == {"phi-4-mini", "llama-3.1-8b", "qwen2.5-7b"}
    assert table.groupby("model").size().eq(5).all()  # train, 2 x evaluate, long context, ECDA
    assert (table["seconds"] > 0).all() and (table["tokens_per_s"] > 0).all()
    assert set(table.loc[table["stage"] == "train", "plan"]) == {"none (CPU)"}
    assert out.exists() and '"size": "reduced"' in out.read_text()
