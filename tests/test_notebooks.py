"""Smoke runs of every notebook under papermill with tiny parameters, in a temporary data root."""
import json

import pytest

from compass import io, paths
from compass.notebook_run import run
from tests.conftest import WORKSPACE_OVERRIDES, workspace_overrides

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def executed(tiny_workspace):
    data = run("00_data", "uk", WORKSPACE_OVERRIDES)
    sampling = run("01_sampling", "uk", WORKSPACE_OVERRIDES)
    return data, sampling


@pytest.fixture(scope="module")
def trained(executed, tiny_workspace):
    overrides = workspace_overrides(tiny_workspace)
    return [run("02_train", "uk", overrides, model="tiny"),
            run("03_evaluate", "uk", overrides, model="tiny"),
            run("05_long_context", "uk", overrides, model="tiny"),
            run("04_ecda", None, overrides)]


def test_train_notebook_writes_every_adapter_and_log(trained):
    for method in ("random", "compass"):
        folder = paths.adapter_dir("uk", "tiny", method)
        assert (folder / "adapter" / "adapter_config.json").exists()
        assert len(io.read_csv(folder / "train_log.csv")) == 2
        second = paths.adapter_dir("uk", "tiny", method, replicate=1)  # train.seeds = 2
        assert (second / "adapter" / "adapter_config.json").exists()
        assert (paths.adapter_snapshot("uk", "tiny", method, 1) / "adapter_config.json").exists()
        assert sorted(p.name for p in (folder / "steps").iterdir()) == ["1"]  # train.curve_steps
    assert sorted(p.name for p in paths.adapters_dir("uk", "tiny").iterdir() if p.is_dir()) == ["compass", "random"]
    assert (paths.adapters_dir("uk", "tiny") / "train_loss.png").exists()


def test_evaluate_notebook_writes_predictions_and_statistics(trained):
    out = paths.evaluation_dir("uk", "tiny")
    predictions = io.read_csv(out / "predictions.csv")
    assert set(predictions["method"]) == {"zero_shot", "random", "compass"}
    assert (predictions.groupby("method").size() == 12).all()
    summary = io.read_csv(out / "summary.csv")
    assert {"accuracy", "ci_low", "ci_high", "gain_pp", "p_value"} <= set(summary.columns)
    metrics = io.read_json(paths.evaluation_metrics("uk", "tiny"))
    assert metrics["lm_eval_check"]["same_choice_acc"] == 4
    assert {"nll", "bpc", "answer_tokens", "answer_chars"} <= set(predictions.columns)
    nll = io.read_csv(out / "nll_summary.csv", numeric=True)
    assert {"metric", "subset", "method", "mean", "ci_low", "ci_high", "change", "p_value"} <= set(nll.columns)
    assert set(nll["metric"]) == {"nll", "bpc"} and "all" in set(nll["subset"])
    versus = io.read_csv(out / "nll_vs_baselines.csv", numeric=True)
    assert set(versus["baseline"]) == {"zero_shot", "random"} and "p_holm" in versus.columns
    by_subset = metrics["nll_pairs_by_subset"]
    assert by_subset["all"] == 16 == by_subset["gap"] + by_subset["covered"]
    likelihoods = io.read_csv(out / "likelihoods.csv")
    # MC answers + answer-only pairs, for each seed (train.seeds = 2; zero-shot has one)
    assert (likelihoods.groupby(["method", "seed"]).size() == 16).all()
    assert likelihoods.groupby("method")["seed"].nunique().to_dict() == {"zero_shot": 1, "random": 2,
                                                                         "compass": 2}
    assert set(metrics["nll"]["all"]) == {"zero_shot", "random", "compass"} and metrics["seeds"] == 2
    assert (nll["seeds"].dropna().astype(int) == nll["method"].map({"zero_shot": 1}).fillna(2)).all()
    assert set(versus["seeds_better"].dropna()) <= {"0/2", "1/2", "2/2", ""}
    by_step = io.read_csv(out / "nll_by_step.csv", numeric=True)  # train.curve_steps = [1]
    assert sorted(set(by_step["step"])) == [0, 1, 2]
    assert set(by_step.loc[by_step["step"] == 0, "method"]) == {"zero_shot"}
    assert (out / "nll.png").stat().st_size > 1000 and (out / "nll_by_step.png").stat().st_size > 1000


def test_long_context_notebook_scores_every_task_for_every_model(trained):
    out = paths.long_context_dir("uk", "tiny")
    summary = io.read_csv(out / "summary.csv", numeric=True)
    assert set(summary["method"]) == {"zero_shot", "random", "compass"}
    assert set(summary["task"]) == {"niah_single", "niah_multikey", "niah_none", "cwe"}
    assert summary["score"].between(0, 1).all() and (summary["n"] == 1).all()
    predictions = io.read_csv(out / "predictions.csv")
    assert len(predictions) == 12 and len(io.read_jsonl(out / "samples.jsonl")) == 4
    assert io.read_json(paths.long_context_metrics("uk", "tiny"))["samples"] == 4


def test_data_notebook_writes_its_outputs(executed):
    nb = json.loads(executed[0].read_text())
    outputs = [c["outputs"] for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any(o.get("output_type") == "error" for cell in outputs for o in cell)
    assert any(o.get("output_type") == "display_data" for cell in outputs for o in cell)  # figure
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
    clusters = io.read_csv(paths.gap_clusters_file("uk"), numeric=True)
    assert list(clusters.columns) == ["cluster", "p_target", "p_train", "gap"]
    assert len(clusters) == metrics["k"] and clusters["p_target"].sum() == pytest.approx(1, abs=1e-4)
    assert clusters["gap"].tolist() == (clusters["p_target"] > clusters["p_train"]).tolist()
    assigned = io.read_csv(paths.test_clusters_file("uk"))
    items = io.read_jsonl(paths.test_items_file("uk"))
    assert assigned["id"].tolist() == [it["id"] for it in items]
    gap_of = dict(zip(clusters["cluster"], clusters["gap"]))
    assert assigned["gap"].tolist() == [gap_of[c] for c in assigned["cluster"]]


def test_rerun_is_deterministic(executed):
    before = paths.manifest_file("uk", "compass").read_text()
    run("01_sampling", "uk", WORKSPACE_OVERRIDES)
    assert paths.manifest_file("uk", "compass").read_text() == before


def test_ecda_notebook_writes_the_continual_tables(trained):
    folder = paths.ecda_dir("uk")
    summary = io.read_csv(folder / "summary.csv", numeric=True)
    assert set(summary["method"]) == {"no_update", "naive", "ewc", "random_rehearsal", "ecda",
                                      "full_retrain"}
    # ecda.scoring: answer (the tiny profile): NLL columns, no accuracy ones
    assert {"forgetting_nll", "forgetting_nll_ci_low", "plasticity_nll", "final_nll",
            "tokens"} <= set(summary.columns)
    assert not {"forgetting_pp", "final_accuracy"} & set(summary.columns)
    no_update = summary.set_index("method").loc["no_update"]
    assert no_update["updates"] == 0 and no_update["steps"] == 0
    # an adapter that never changes scores the same on a test set at every later step
    accuracy = io.read_csv(folder / "accuracy.csv", numeric=True)
    frozen = accuracy[accuracy["method"] == "no_update"].groupby("eval_step")["nll"].nunique()
    assert (frozen == 1).all() and no_update["forgetting_nll"] == 0
    drift = io.read_csv(folder / "drift.csv", numeric=True)
    assert len(drift) == 3 * 6
    assert (drift["trigger"] == (drift["js"] > drift["delta"])).all()  # trigger_on: js
    metrics = io.read_json(paths.ecda_metrics("uk"))
    assert metrics["delta_mode"] == "calibrated"  # ecda.delta: calibrated (params.yaml)
    calibration = io.read_csv(paths.ecda_calibration("uk"), numeric=True)
    t0 = calibration[(calibration["reference"] == "T0") & (calibration["rule"] == "calibrated")]
    assert metrics["delta_used"] == t0["delta"].iloc[0]
    # the calibrated rule: each check's own exact permutation threshold, recorded per step
    checks = drift[(drift["method"] == "ecda") & (drift["t"] > 0)]
    assert metrics["delta_by_step"] == pytest.approx(
        {str(int(t)): d for t, d in zip(checks["t"], checks["delta"])})
    assert (drift["delta"] > 0).all()
    for method in summary["method"]:
        assert (folder / "served" / method / "adapter_config.json").exists()
    assert io.read_json(paths.ecda_metrics("uk"))["steps"] == 3


@pytest.mark.slow
def test_book_builds_from_the_executed_notebooks(trained, tiny_workspace, monkeypatch, tmp_path):
    from compass import book, config

    cfg = config.load(overrides=workspace_overrides(tiny_workspace))
    monkeypatch.setattr(paths, "BOOK_BUILD", tmp_path / "_build")
    monkeypatch.setattr(book, "SRC", tmp_path / "_src")
    monkeypatch.setattr(paths, "BOOK", paths.BOOK)  # static sources stay in the repo
    index = book.build(cfg)
    assert index.exists()
    page = (index.parent / "notebooks" / "01_sampling_uk.html").read_text()
    assert "silhouette chose" in page and "cluster occupancy" in page.lower()
    results = (index.parent / "results.html").read_text()
    assert "COMPASS against each baseline" in results and "compass" in results
    assert "Held-out likelihood" in results and "nll_overview.png" in results
    assert "uk acc" in results and "gap / covered" in results  # compact methods x languages tables
    assert "What the tiny profile tests" in results and "better in" in results  # the claims table
    continual = (index.parent / "continual.html").read_text()
    assert "forgetting (NLL, nats/token)" in continual and "plasticity (NLL)" in continual
    assert "forgetting (pp)" not in continual  # ecda.scoring: answer scores no accuracy
    intro = (index.parent / "intro.html").read_text()
    assert "What this build found" in intro and "held-out NLL" in intro


def test_each_stage_declares_every_param_it_reads(trained, tiny_workspace):
    """The kernels of the smoke runs recorded every param they read (COMPASS_TRACE_PARAMS, set by
    the workspace fixture). Each must be covered by the stage's params in dvc.yaml (the key or its
    section), or editing it would not rerun the stage; and each listed key or section must be read
    (compass.dependencies.param_problems)."""
    from compass import dependencies

    of_notebook = {"00_data": "data", "01_sampling": "sampling", "02_train": "train",
                   "03_evaluate": "evaluate", "04_ecda": "ecda", "05_long_context": "long_context",
                   "pool": "pool"}
    reads: dict[str, set] = {}
    for trace in (tiny_workspace / "params_trace").glob("*.txt"):
        # a notebook kernel names its trace by stage; a file named by a pid comes from another
        # test's subprocess that inherited the session's COMPASS_TRACE_PARAMS (accelerate, ...)
        stage = next((s for prefix, s in of_notebook.items() if trace.stem.startswith(prefix)),
                     None)
        if stage is not None:
            reads.setdefault(stage, set()).update(trace.read_text().split())
    assert set(reads) == set(of_notebook.values())
    # listed but read only on the paper protocol's path, which the smoke runs do not take
    paper_only = {
        # the pool of Aya rows and each target's benchmark items: where they come from, how many
        "pool": {"seed", "languages.targets", "data.aux_dataset", "data.aux_per_language_cap",
                 "data.target_dataset", "data.target_lite_dataset", "data.prox_lite_dataset",
                 "data.test_set", "data.split.max_test_items", "evaluation.prox.languages",
                 # every hub asset is checked before the first download, base models included
                 "train.models", "train.model_sources"},
        "evaluate": {"data.test_set"},  # Global-MMLU full or Lite
    }
    problems = dependencies.param_problems(reads, exempt=paper_only)
    assert problems == [], "\n".join(problems)
