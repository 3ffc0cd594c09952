"""The tier of every test, in one place: conftest marks each collected test with it.

- ``unit``: one module's behaviour, in process, on hand-made or tiny inputs (seconds each).
- ``integration``: modules together, against another library, on the real-format fixtures, or in
  a subprocess (accelerate launch, a benchmark script, make or DVC on a toy project).
- ``e2e``: what a user runs: ``dvc repro`` of the pipeline, papermill notebooks, a built book in
  a browser, the README's commands.

``make test-fast`` runs the unit tier alone. A new test file gets its tier here; a file that
mixes tiers keeps a default and names its exceptions in ``EXCEPTIONS``.
"""
from __future__ import annotations

TIERS = ("unit", "integration", "e2e")

FILE_TIERS = {
    "test_adapters_evaluate.py": "integration",
    "test_allocation.py": "unit",
    "test_bench_gpu.py": "integration",
    "test_book.py": "unit",
    "test_calibration.py": "unit",
    "test_chat.py": "unit",
    "test_cluster.py": "integration",
    "test_cluster_pipeline.py": "e2e",
    "test_config.py": "unit",
    "test_context_window.py": "unit",
    "test_controls.py": "unit",
    "test_cost.py": "unit",
    "test_coverage.py": "unit",
    "test_data_tiny.py": "unit",
    "test_decontamination.py": "unit",
    "test_distributed.py": "unit",
    "test_drift.py": "unit",
    "test_dsir.py": "unit",
    "test_ecda.py": "integration",
    "test_embed_io.py": "unit",
    "test_gaps.py": "unit",
    "test_generation.py": "integration",
    "test_hub_assets.py": "unit",
    "test_language_sweep.py": "integration",
    "test_likelihood.py": "unit",
    "test_lm_eval_parity.py": "integration",
    "test_loader_refusals.py": "integration",
    "test_longcontext.py": "unit",
    "test_makespan.py": "unit",
    "test_memory_plan.py": "unit",
    "test_notebooks.py": "e2e",
    "test_paper_fixtures.py": "e2e",
    "test_paper_loaders.py": "integration",
    "test_paper_profile.py": "unit",
    "test_paper_tasks.py": "integration",
    "test_pipeline_deps.py": "unit",
    "test_precision.py": "unit",
    "test_profiles.py": "unit",
    "test_publish.py": "e2e",
    "test_readme.py": "e2e",
    "test_rehearse.py": "integration",
    "test_scoring.py": "unit",
    "test_scratch.py": "unit",
    "test_seeded.py": "unit",
    "test_selectors.py": "unit",
    "test_speed.py": "unit",
    "test_stats.py": "unit",
    "test_targets.py": "unit",
    "test_tiers.py": "unit",
    "test_typology.py": "unit",
}

# "file::test function" (parameters left out) whose tier differs from its file's
EXCEPTIONS = {
    "test_cost.py::test_prompt_lengths_script_on_a_subset": "integration",
    "test_distributed.py::test_two_gloo_processes_train_the_one_process_adapter": "integration",
    "test_distributed.py::test_a_finished_adapter_is_reused_only_for_the_same_run": "integration",
    "test_embed_io.py::test_offline_encoder_paraphrase_beats_topic": "integration",
    "test_language_sweep.py::test_make_repros_check_stops_an_infeasible_target_before_dvc"
    "_in_one_line": "e2e",
    "test_longcontext.py::test_bundled_books_are_byte_exact_prefixes_of_oneruler_books":
        "integration",
    "test_longcontext.py::test_reproduces_the_real_oneruler_instance_format": "integration",
    "test_pipeline_deps.py::test_a_one_line_edit_makes_dvc_status_list_exactly_the_stages"
    "_that_run_it": "integration",
    "test_precision.py::test_two_processes_on_one_machine_agree_whatever_they_measure":
        "integration",
    "test_publish.py::test_dvc_config_has_a_local_default_remote_and_no_analytics":
        "integration",
    "test_publish.py::test_offline_problems_flags_remote_and_missing_assets": "unit",
    "test_publish.py::test_make_targets_run_dvc": "integration",
    "test_publish.py::test_workflows_run_make_targets_that_exist": "integration",
    "test_readme.py::test_the_readme_has_the_commands_this_test_knows": "unit",
    "test_speed.py::test_inductor_compiled_training_gives_the_eager_adapter": "integration",
    "test_typology.py::test_pkg_resources_shim_when_setuptools_lacks_it": "integration",
}


def tier_of(file_name: str, function_name: str) -> str | None:
    """The tier of one test (None: its file is not in the map)."""
    return EXCEPTIONS.get(f"{file_name}::{function_name}", FILE_TIERS.get(file_name))
