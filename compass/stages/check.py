"""Stage `check`: every param checked against the data before any stage that writes results runs.

DVC deletes a stage's previous outputs before running it, so a bad value caught inside a stage
(e.g. a budget larger than the pool) would cost the user their results and come wrapped in a
papermill traceback. This stage runs right after `pool`, before everything else, and fails with
one line per problem: params first, then every target language through the functions its data and
sampling stages will run (compass.feasibility). Its output's bytes never change, so passing it
reruns nothing downstream.
"""
from __future__ import annotations

from compass import config as config_mod
from compass import io, paths
from compass.protocols import protocol_of
from compass.protocols.data import data_of


def _pool_for_check(cfg, dry: bool):
    """(pairs, vectors, languages to check) from the pool when it exists; on a fresh clone
    (``dry``) the raw pairs without embeddings where the protocol has them offline; (None, None,
    ()) when neither."""
    from compass import data as data_mod

    protocol = protocol_of(cfg)
    reads = data_of(cfg)
    index = paths.benchmarks_dir() / "index.json"
    built = paths.pool_file().exists() and index.exists()
    if built and io.read_json(index).get("profile") == protocol.name:
        pairs = data_mod.read_pool()
        vectors = None
        if paths.pool_embeddings().exists():
            from compass.data.embed import PoolVectors

            vectors = PoolVectors.load()
        return pairs, vectors, reads.languages_to_check(cfg)
    pairs = reads.dry_check_pairs(cfg) if dry else None
    if pairs is not None:
        return pairs, None, tuple(cfg.targets)
    return None, None, ()


def check_params(cfg, hub: bool = False, dry: bool = False) -> dict:
    """Raise ConfigError (one line per problem, naming the value and what is allowed) or return
    the verdict and the per-target table. ``hub``: also confirm every hub asset the paper profile
    needs is available offline (`make repro` runs this before DVC, so a missing model is named at
    once, not minutes in). ``dry``: the pool may be missing or stale (checked as far as it goes)."""
    from compass import data as data_mod
    from compass import feasibility

    config_mod.validate_pipeline(cfg)
    comparable_adapters(cfg)
    plans = memory_plans(cfg)
    pairs, vectors, langs = _pool_for_check(cfg, dry)
    hub_benchmarks = protocol_of(cfg).hub_benchmarks
    covered = paper_coverage(cfg, pairs) if hub_benchmarks else None
    if hub and hub_benchmarks:
        from compass import coverage, hub_assets

        try:
            hub_assets.check(cfg)
        except hub_assets.MissingHubAssets as err:  # what will run, then what it needs
            raise hub_assets.MissingHubAssets(
                "benchmarks per target:\n"
                f"{coverage.describe(covered).to_string(index=False)}\n{err}"
            ) from None
    table = None
    if pairs is not None:
        config_mod.validate_against_data(cfg, data_mod.language_counts(pairs))
        table = feasibility.check_targets(cfg, pairs, vectors, langs)
    return {"params": "valid", "targets": table, "coverage": covered,
            "long_context": long_context_notes(cfg), "memory": plans}


def memory_plans(cfg) -> list[str]:
    """How each model's training fits train.device_memory_gib (compass.training.memory), for the
    models whose config is at hand: one line each, or a ConfigError naming the one that cannot
    fit. Nothing without train.device_memory_gib (a CPU run, or the card decides at train time)."""
    from compass.training import memory, targets

    gib = cfg.train.device_memory_gib
    if gib is None:
        return []
    t = cfg.train
    lines = []
    for name, model_config in targets.configs_at_hand(cfg).items():
        try:
            plan = memory.plan(model_config, gib * memory.GIB, t.batch_size // t.processes,
                               t.max_length, memory.Setting.from_train(t), name=name,
                               checkpointing=t.gradient_checkpointing)
        except memory.MemoryPlanError as err:
            raise config_mod.ConfigError(f"train.device_memory_gib = {gib:g}: {err}") from None
        lines.append(f"memory: {plan.describe()}")
    return lines


def long_context_notes(cfg) -> list[str]:
    """Per base model, the long-context lengths it cannot score and where YaRN extends its
    window (compass.training.context_window): said before the run, not found after it."""
    from compass.training import context_window

    lc = cfg.long_context
    if not cfg.long_context_scored():
        return []
    answer = max(lc.max_new_tokens, lc.cwe_max_new_tokens)
    plans = [context_window.plan(m, lc.lengths, answer) for m in cfg.train.models]
    return [f"long context: {p.note()}" for p in plans if p.note()]


def comparable_adapters(cfg) -> None:
    """train.target_modules must adapt the same kinds of sublayer on every model of the run
    (compass.training.targets), checked on the models whose config is at hand."""
    from compass.training import targets

    try:
        targets.check_comparable(targets.kinds_by_model(cfg))
    except ValueError as err:
        raise config_mod.ConfigError(str(err)) from None


def paper_coverage(cfg, pairs: list[dict] | None):
    """The benchmarks and Aya rows of each target (compass.coverage; Aya rows once the pool
    exists); a target the protocol cannot run, or an MMLU-ProX-Lite language without the
    benchmark, is refused in one line each."""
    from collections import Counter

    from compass import coverage
    from compass.data.paper_profile import AYA_SOURCE
    from compass.feasibility import Infeasible

    aya = None if pairs is None else Counter(p["language"] for p in pairs
                                             if p["source"] == AYA_SOURCE)
    lines = coverage.refusals(cfg.targets, cfg.data.test_set, aya)
    uncovered = [lang for lang in cfg.prox_languages() if lang not in coverage.mmlu_prox_lite()]
    if uncovered:
        lines.append(f"evaluation.prox.languages {uncovered}: MMLU-ProX-Lite does not cover them "
                     f"(it covers {', '.join(sorted(coverage.mmlu_prox_lite()))}); remove them, or "
                     "use 'targets' (every target it covers)")
    if lines:
        raise Infeasible("\n".join(lines))
    return coverage.table(cfg, aya)


def run(cfg) -> dict:
    """The check stage: every param checked (ConfigError, one line per problem), then its constant
    output written so the stages after it can depend on it."""
    verdict = check_params(cfg)
    io.write_json(paths.params_check(), {"params": verdict["params"]})
    return verdict
