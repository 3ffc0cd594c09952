"""params.yaml -> typed config objects, with validation that names the bad value and what is
allowed.

What each setting is, its default and what it allows live in one place, the schema
(compass.settings.schema); this module reads params files (overlays included), applies the
schema's checks, and adds the rules that relate several settings, each a named function. Values
that need the data to check (is this language in the corpus? is the budget larger than the pool?)
are checked by :func:`validate_against_data`, called once the pool is known.
"""
from __future__ import annotations

import math
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from compass import languages, paths
from compass.protocols import protocol_of
from compass.settings import checks, overlays, schema
from compass.settings.checks import ConfigError
from compass.settings.schema import (  # noqa: F401  (the names other modules import from here)
    CLUSTER_ALGORITHMS, ECDA_METHODS, ECDA_SCORINGS, LONG_CONTEXT_SCORINGS, LONG_CONTEXT_TASKS,
    PROFILES, TEST_SETS, WITHIN_CLUSTER, ClusteringConfig, Config, DataConfig, DsirConfig,
    EcdaConfig, EncoderConfig, EvalConfig, InverseCountConfig, LangSimConfig, LongContextConfig,
    ProxConfig, SamplingConfig, SplitConfig, TrainConfig)
from compass.settings.tracing import TRACE as _TRACE  # noqa: F401
from compass.settings.tracing import paused as _paused
from compass.settings.tracing import trace_from_environment, tracing  # noqa: F401
from compass import model_catalog as catalog

trace_from_environment()


def _build(cls, raw: Any, where: str):
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys by name."""
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping, got {raw!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; allowed: {sorted(known)}")
    kwargs = {}
    for name, value in raw.items():
        default = known[name].default_factory() if callable(known[name].default_factory) else None
        if default is not None and is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _validate(cfg: Config) -> Config:
    """The schema's checks of every setting, then the rules across settings; returns the config
    with language codes normalised."""
    checks.section(cfg, "", schema.key_of)
    targets = _targets(cfg)
    aux = _auxiliary(cfg)
    _split_sums_to_one(cfg.data.split)
    _cluster_range_is_ordered(cfg.clustering)
    _models(cfg.train)
    _curve_steps_within_training(cfg.train)
    _batch_divides_among_processes(cfg.train)
    _mc_items_are_nll_pairs(cfg)
    _prox(cfg.evaluation.prox, targets)
    long_context = _long_context_languages(cfg.long_context, targets)
    _permutations_reach_false_alarm_rate(cfg.ecda)
    _planted_regression_within_stream(cfg.ecda)
    ecda = replace(cfg.ecda, language=_normal(cfg.ecda.language, "ecda.language"))
    return replace(cfg, targets=targets, auxiliary=aux, ecda=ecda, long_context=long_context)


def _targets(cfg: Config) -> tuple[str, ...]:
    if not cfg.targets:
        raise ConfigError("languages.targets is empty; name at least one target language")
    targets = tuple(_normal(code, "languages.targets") for code in cfg.targets)
    if len(set(targets)) != len(targets):
        raise ConfigError(f"languages.targets {list(cfg.targets)} names a language twice")
    return targets


def _auxiliary(cfg: Config):
    aux = cfg.auxiliary
    if isinstance(aux, str):
        if aux != "all":
            raise ConfigError(f"languages.auxiliary = {aux!r}: use 'all' or a list of codes")
        return aux
    return tuple(_normal(code, "languages.auxiliary") for code in aux)


def _split_sums_to_one(s: SplitConfig) -> None:
    if abs(s.dev + s.train + s.test - 1.0) > 1e-6:
        raise ConfigError(
            f"data.split fractions dev+train+test = {s.dev + s.train + s.test:g}; "
            "they must sum to 1"
        )


def _cluster_range_is_ordered(c: ClusteringConfig) -> None:
    if c.k_min > c.k_max:
        raise ConfigError(f"clustering.k_min = {c.k_min} is larger than "
                          f"clustering.k_max = {c.k_max}")


def _curve_steps_within_training(t: TrainConfig) -> None:
    for step in t.curve_steps:
        if not isinstance(step, int) or isinstance(step, bool) or not 0 < step < t.steps:
            raise ConfigError(f"train.curve_steps entry {step!r}: a step between 1 and "
                              f"train.steps - 1 = {t.steps - 1} (the last step is the adapter "
                              "itself)")


def _batch_divides_among_processes(t: TrainConfig) -> None:
    if t.batch_size % t.processes:
        raise ConfigError(f"train.batch_size {t.batch_size} is not a multiple of train.processes "
                          f"{t.processes}: each process takes an equal share of every micro-batch")


def _mc_items_are_nll_pairs(cfg: Config) -> None:
    e = cfg.evaluation
    if protocol_of(cfg).mc_items_are_nll_pairs and e.nll_items < e.max_items:
        raise ConfigError(f"evaluation.nll_items = {e.nll_items} is below evaluation.max_items = "
                          f"{e.max_items}: every multiple-choice item's answer is a held-out pair "
                          "whose NLL is measured; raise nll_items to at least max_items")


def _long_context_languages(lc: LongContextConfig, targets) -> LongContextConfig:
    """A list of codes (empty: every target); validate_pipeline checks each is a target."""
    if isinstance(lc.languages, str):
        raise ConfigError(f"long_context.languages = {lc.languages!r}: give a list of target "
                          f"languages (from languages.targets {list(targets)})")
    codes = tuple(_normal(code, "long_context.languages") for code in lc.languages)
    return replace(lc, languages=codes or targets)


def _permutations_reach_false_alarm_rate(c: EcdaConfig) -> None:
    if math.ceil((c.n_permutations + 1) * (1 - c.false_alarm_rate)) > c.n_permutations:
        raise ConfigError(f"ecda.n_permutations = {c.n_permutations} is too few for "
                          f"ecda.false_alarm_rate = {c.false_alarm_rate}: need at least "
                          f"{math.ceil(1 / c.false_alarm_rate) - 1}")


def _planted_regression_within_stream(c: EcdaConfig) -> None:
    at = c.planted_regression_at
    if at is not None and at >= c.steps:
        raise ConfigError(
            f"ecda.planted_regression_at = {at} is not a step of the stream "
            f"(T0..T{c.steps - 1}, ecda.steps = {c.steps}); use 1..{c.steps - 1}, or 0/null "
            "for none")


def _models(t: TrainConfig) -> None:
    """train.models: known names (they key folders and DVC stages); model_sources maps new ones."""
    if not isinstance(t.model_sources, dict):
        raise ConfigError(f"train.model_sources = {t.model_sources!r} must be a mapping "
                          "name -> hub id or local folder")
    if not t.models:
        raise ConfigError("train.models is empty; name at least one base model, e.g. "
                          "[gemma-3-270m]")
    if len(set(t.models)) != len(t.models):
        raise ConfigError(f"train.models {list(t.models)} names a model twice")
    for name in [*t.models, *t.model_sources]:
        if not isinstance(name, str) or not catalog.NAME.match(name):
            raise ConfigError(f"model name {name!r} is not allowed: names key folders and DVC "
                              "stages, so use letters, digits, '.', '_' and '-' (put a hub id or "
                              "a folder in train.model_sources under such a name)")
    for name, source in t.model_sources.items():
        checks.hub_source(source, f"train.model_sources.{name}")
    known = catalog.known_names(t.model_sources)
    for name in t.models:
        if name not in known:
            raise ConfigError(f"train.models entry {name!r} is not a known model; choose one of "
                              f"{known} or add it to train.model_sources (name: hub id or folder)")


def _prox(p: ProxConfig, targets: tuple[str, ...]) -> None:
    """evaluation.prox.languages: 'targets' or a list of targets."""
    if isinstance(p.languages, str):
        if p.languages != "targets":
            raise ConfigError(f"evaluation.prox.languages = {p.languages!r}: use 'targets' or a "
                              "list of target language codes")
        return
    langs = tuple(_normal(code, "evaluation.prox.languages") for code in p.languages)
    stray = [code for code in langs if code not in targets]
    if stray:
        raise ConfigError(f"evaluation.prox.languages {stray} are not among languages.targets "
                          f"{list(targets)}")


def _normal(code, where) -> str:
    try:
        return languages.normalize(str(code))
    except languages.UnknownLanguageError as err:
        raise ConfigError(f"{where}: {err}") from None


def from_dict(raw: dict) -> Config:
    """Build and validate a Config from the parsed params.yaml mapping."""
    if not isinstance(raw, dict):
        raise ConfigError(f"params must be a mapping, got {type(raw).__name__}")
    raw = dict(raw)
    langs = raw.pop("languages", {}) or {}
    if not isinstance(langs, dict):
        raise ConfigError("languages must be a mapping with keys 'targets' and 'auxiliary'")
    unknown = sorted(set(langs) - {"targets", "auxiliary"})
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in languages; "
                          "allowed: ['auxiliary', 'targets']")
    for key in ("targets", "auxiliary"):
        if key in langs:
            raw[key] = langs[key]
    if isinstance(raw.get("targets"), str):
        raw["targets"] = [raw["targets"]]
    with _paused():
        return _validate(_build(Config, raw, "params"))


def load(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Read params.yaml (default: the repository's) or a profile overlay, and apply notebook
    ``overrides``.

    ``overrides`` maps dotted keys to values, e.g. ``{"sampling.budget": 50}``.
    """
    raw = overlays.read(Path(path) if path else paths.PARAMS)
    for dotted, value in (overrides or {}).items():
        apply_override(raw, dotted, value)
    with _paused():  # validation reads every param: not what a stage depends on
        return from_dict(raw)


def apply_override(raw: dict, dotted: str, value) -> None:
    """Set ``dotted`` (e.g. ``sampling.budget``) in the raw params mapping, creating the sections
    on the way; ``raw`` is changed in place and nothing is checked until :func:`from_dict`."""
    node = raw
    keys = dotted.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def validate_pipeline(cfg: Config) -> None:
    """Checks across sections that only the whole pipeline needs (one stage alone would not)."""
    if cfg.ecda.language not in cfg.targets:
        raise ConfigError(
            f"ecda.language = {cfg.ecda.language!r} is not among languages.targets "
            f"{list(cfg.targets)}; the continual stage starts from that language's COMPASS adapter")
    if "compass" not in cfg.train.methods:
        raise ConfigError(f"train.methods {list(cfg.train.methods)} lacks 'compass'; the results "
                          "compare it with the baselines and ECDA starts from its adapter")
    if cfg.ecda.model not in cfg.train.models:
        raise ConfigError(f"ecda.model = {cfg.ecda.model!r} is not among train.models "
                          f"{list(cfg.train.models)}; the continual stage updates that model's "
                          "adapter")
    _one_seed_where_evaluation_scores_one(cfg)
    stray = [code for code in cfg.long_context.languages if code not in cfg.targets]
    if stray:
        raise ConfigError(f"long_context.languages {stray} are not among languages.targets "
                          f"{list(cfg.targets)}; the long-context stage scores a target's adapters")
    unsampled = [m for m in cfg.train.methods if m not in cfg.sampling.methods]
    if unsampled:
        raise ConfigError(f"train.methods {unsampled} are not in sampling.methods "
                          f"{list(cfg.sampling.methods)}: an adapter needs that method's selection")


def _one_seed_where_evaluation_scores_one(cfg: Config) -> None:
    if protocol_of(cfg).scores_one_seed and (cfg.train.seeds > 1 or cfg.train.curve_steps):
        raise ConfigError(f"train.seeds = {cfg.train.seeds}, train.curve_steps = "
                          f"{list(cfg.train.curve_steps)}: the paper profile's evaluation scores "
                          "one seed's final adapters; set train.seeds: 1 and train.curve_steps: [] "
                          "(several seeds and the step curve are scored by the tiny profile's "
                          "evaluation)")


def require_model(cfg: Config, model: str | None, where: str = "--model") -> None:
    """``model`` is one of train.models (an argument check, not a param the stage reads)."""
    with _paused():
        if model not in cfg.train.models:
            raise ConfigError(f"{where} {model!r} is not among train.models "
                              f"{list(cfg.train.models)}")


def require_target(cfg: Config, available: dict[str, int], target: str) -> None:
    """``target`` has at least data.min_pairs_per_language pairs in the pool (else a ConfigError
    that lists the languages the data offers)."""
    offered = {lang for lang, n in available.items() if n >= cfg.data.min_pairs_per_language}
    try:
        languages.require_available(target, offered, role="target language")
    except languages.UnknownLanguageError as err:
        raise ConfigError(str(err)) from None


def validate_against_data(cfg: Config, available: dict[str, int], target: str | None = None):
    """Checks that need the data: languages present, enough pairs, budget within the pool.

    ``available`` maps language code -> number of pairs in the profile's pool.
    """
    for code in [target] if target else cfg.targets:
        require_target(cfg, available, code)
    if cfg.auxiliary != "all":
        for code in cfg.auxiliary:
            try:
                languages.require_available(code, set(available), role="auxiliary language")
            except languages.UnknownLanguageError as err:
                raise ConfigError(str(err)) from None
    for tgt in [target] if target else cfg.targets:
        pool = sum(available[lang] for lang in cfg.aux_languages(sorted(available), tgt))
        if cfg.sampling.budget > pool:
            raise ConfigError(
                f"sampling.budget = {cfg.sampling.budget} is larger than the auxiliary pool for "
                f"target {tgt!r} ({pool} items); lower the budget to at most {pool}"
            )
