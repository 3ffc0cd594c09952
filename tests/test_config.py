import pytest

from compass import config
from compass.config import ConfigError
from compass.languages import UnknownLanguageError, normalize


def build(**sections):
    return config.from_dict(sections)


def test_every_setting_has_help_and_a_default_it_allows():
    """The schema is the one description of a setting: each carries help text, and the defaults
    (the tiny profile) pass the checks its metadata asks for."""
    from dataclasses import MISSING, fields, is_dataclass

    from compass.settings import schema

    def leaves(cls, where=""):
        for f in fields(cls):
            if f.default_factory is not MISSING and is_dataclass(f.default_factory):
                yield from leaves(f.default_factory, f"{where}{f.name}.")
            else:
                yield f"{where}{f.name}", f

    without_help = [name for name, f in leaves(schema.Config) if not f.metadata.get("help")]
    assert without_help == []
    assert config.from_dict({}) == config.Config()


def test_ecda_method_names_agree_with_the_recipes():
    """config names the continual methods without importing the recipes (a stage that reads
    params does not depend on them); the names must be the recipes' own."""
    from compass.continual.recipes import METHODS

    assert config.ECDA_METHODS == METHODS


@pytest.mark.parametrize("raw, named, allowed", [
    ({"train": {"fused_loss": "fast"}}, "train.fused_loss = 'fast'",
     "choose one of ['off', 'chunked', 'torch', 'liger']"),
    ({"evaluation": {"confidence": 0.2}}, "evaluation.confidence = 0.2", r"in [0.5, 0.999]"),
    ({"train": {"packing": "yes"}}, "train.packing = 'yes'", "true or false"),
    ({"evaluation": {"lm_eval_batch_size": 0}}, "evaluation.lm_eval_batch_size = 0",
     "use an integer >= 1 or 'auto'"),
    ({"ecda": {"methods": ["naive", "magic"]}}, "ecda.methods entry = 'magic'", "'full_retrain'"),
    ({"train": {"target_modules": []}}, "train.target_modules is empty", "e.g. [q_proj, v_proj]"),
])
def test_validation_names_the_value_and_what_is_allowed(raw, named, allowed):
    with pytest.raises(ConfigError) as err:
        config.from_dict(raw)
    assert named in str(err.value) and allowed in str(err.value)


def test_protocol_rules_refuse_what_each_protocol_cannot_score():
    """tiny: every MC item is also an NLL pair; paper: the evaluation scores one seed."""
    with pytest.raises(ConfigError, match="evaluation.nll_items = 4 is below evaluation.max_items"):
        config.from_dict({"evaluation": {"nll_items": 4, "max_items": 8}})
    config.from_dict({"profile": "paper", "evaluation": {"nll_items": 4, "max_items": 8}})
    with pytest.raises(ConfigError, match="train.seeds = 3, train.curve_steps = \\[\\]"):
        config.validate_pipeline(config.from_dict({"profile": "paper"}))
    config.validate_pipeline(config.from_dict({}))


def test_iso639_3_codes_are_normalised():
    cfg = build(languages={"targets": ["ukr", "pes", "jpn"]})
    assert cfg.targets == ("uk", "fa", "ja")
    assert normalize("UK") == "uk"


@pytest.mark.parametrize("code", ["xx", "qqq", "", "klingonese"])
def test_unknown_language_code_is_named(code):
    with pytest.raises(ConfigError, match=repr(code) if code else "non-empty"):
        build(languages={"targets": [code]})


def test_unavailable_language_lists_the_available_ones():
    cfg = build(languages={"targets": ["sw"]})  # Swahili: a real code, not in the tiny data
    with pytest.raises(ConfigError) as err:
        config.validate_against_data(cfg, {"uk": 400, "ja": 500, "en": 900})
    assert "'sw'" in str(err.value) and "available: en, ja, uk" in str(err.value)


def test_language_below_min_pairs_is_not_offered():
    cfg = build(languages={"targets": ["te"]})
    with pytest.raises(ConfigError, match="available: en"):
        config.validate_against_data(cfg, {"te": 9, "en": 900})


def test_budget_larger_than_pool():
    cfg = build(languages={"targets": ["uk"]}, sampling={"budget": 5000})
    with pytest.raises(ConfigError, match=r"sampling.budget = 5000 is larger than the auxiliary pool.*1400"):
        config.validate_against_data(cfg, {"uk": 400, "ja": 500, "en": 900})


def test_unknown_method_lists_the_methods():
    with pytest.raises(ConfigError, match=r"'magic'.*'random'.*'compass'"):
        build(sampling={"methods": ["random", "magic"]})


def test_clustering_range_inverted():
    with pytest.raises(ConfigError, match="k_min = 9 is larger than clustering.k_max = 4"):
        build(clustering={"k_min": 9, "k_max": 4})


def test_clustering_range_is_clipped_to_what_e_t_holds():
    """K never exceeds |E_t| / min_cluster_size; the note says so, and too small an E_t is named."""
    import numpy as np

    from compass.selection.clustering import ClusteringError, k_range, kmeans_by_silhouette

    assert k_range(306, 4, 16, 5) == (4, 16, "")
    low, high, note = k_range(31, 4, 16, 5)
    assert (low, high) == (4, 6) and "clipped to [4, 6]: 31 E_t items" in note
    assert k_range(14, 4, 16, 5)[:2] == (2, 2)
    with pytest.raises(ClusteringError, match=r"E_t has 9 items.*at most 4"):
        k_range(9, 4, 16, 5)
    vectors = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    clusters = kmeans_by_silhouette(vectors, 2, 16, seed=0, min_cluster_size=5)
    assert clusters.k <= 8 and "clipped to [2, 8]" in clusters.k_note
    with pytest.raises(ClusteringError, match=r"k_max = 10 is not below the number of target items \(10\)"):
        kmeans_by_silhouette(np.eye(10, 4, dtype=np.float32), 2, 16, seed=0)


@pytest.mark.parametrize("section, value, message", [
    ({"profile": "huge"}, None, "profile = 'huge' is not allowed"),
    ({"sampling": {"budget": 0}}, None, "sampling.budget = 0"),
    ({"sampling": {"budget": "many"}}, None, "sampling.budget = 'many'"),
    ({"clustering": {"algorithm": "dbscan"}}, None, "clustering.algorithm = 'dbscan'"),
    ({"data": {"split": {"dev": 0.5, "train": 0.5, "test": 0.5}}}, None, "must sum to 1"),
    ({"sampling": {"bugdet": 3}}, None, r"unknown key\(s\) \['bugdet'\] in params.sampling"),
    ({"languages": {"targets": ["uk", "ukr"]}}, None, "names a language twice"),
    ({"sampling": {"within_cluster": "far"}}, None, "sampling.within_cluster = 'far'"),
    ({"ecda": {"delta": "auto"}}, None, r"ecda.delta = 'auto' is not allowed; use a number in \[0, 1\].* or 'calibrated'"),
    ({"ecda": {"delta": 1.5}}, None, r"ecda.delta = 1.5 is not allowed"),
    ({"ecda": {"delta": True}}, None, r"ecda.delta = True is not allowed"),
    ({"ecda": {"false_alarm_rate": 0}}, None, r"ecda.false_alarm_rate = 0 must be a number in \(0, 0.5\)"),
    ({"ecda": {"calibration_draws": 10}}, None, r"ecda.calibration_draws = 10 must be an integer >= 100"),
    ({"ecda": {"n_permutations": 100, "false_alarm_rate": 0.001}}, None,
     r"ecda.n_permutations = 100 is too few for ecda.false_alarm_rate = 0.001: need at least 999"),
    ({"ecda": {"shift": "script"}}, None, r"ecda.shift = 'script' is not allowed; choose one of \['topic', 'language', 'book'\]"),
    ({"ecda": {"rollback_nll_tolerance": -0.1}}, None, r"ecda.rollback_nll_tolerance = -0.1 must be a number"),
    ({"ecda": {"rollback_nll_tolerance": "big"}}, None, r"ecda.rollback_nll_tolerance = 'big' must be a number"),
    ({"ecda": {"planted_regression_at": -1}}, None, r"ecda.planted_regression_at = -1 must be an integer >= 0"),
    ({"ecda": {"planted_regression_at": 1.5}}, None, r"ecda.planted_regression_at = 1.5 must be an integer"),
    ({"ecda": {"planted_regression_at": True}}, None, r"ecda.planted_regression_at = True must be an integer"),
    ({"ecda": {"planted_regression_at": 3}}, None,
     r"ecda.planted_regression_at = 3 is not a step of the stream \(T0..T2, ecda.steps = 3\)"),
])
def test_bad_values_are_named(section, value, message):
    with pytest.raises(ConfigError, match=message):
        config.from_dict(section)


@pytest.mark.parametrize("delta", [0.05, 0, 1, "calibrated"])
def test_ecda_delta_is_a_number_or_calibrated(delta):
    assert config.from_dict({"ecda": {"delta": delta}}).ecda.delta == delta


@pytest.mark.parametrize("at", [None, 0, 1, 2])
def test_planted_regression_is_a_step_or_off(at):
    assert config.from_dict({"ecda": {"planted_regression_at": at}}).ecda.planted_regression_at == at


def test_overrides_apply_dotted_keys(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("profile: tiny\nsampling:\n  budget: 10\n")
    cfg = config.load(path, overrides={"sampling.budget": 7, "languages.targets": ["ko"]})
    assert cfg.sampling.budget == 7 and cfg.targets == ("ko",)


def test_corrupt_params_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("sampling: [budget\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(path)


def test_unknown_language_error_is_a_value_error():
    with pytest.raises(ValueError):
        normalize("zz")
    assert issubclass(UnknownLanguageError, ValueError)


def test_a_malformed_revision_in_a_hub_id_is_a_config_error():
    with pytest.raises(config.ConfigError, match=r"data.target_dataset: 'CohereLabs/Global-MMLU@a b'"):
        config.from_dict({"data": {"target_dataset": "CohereLabs/Global-MMLU@a b"}})
    with pytest.raises(config.ConfigError, match=r"train.model_sources.m: "):
        config.from_dict({"train": {"model_sources": {"m": "org/m@"}}})
    config.from_dict({"data": {"target_dataset": "CohereLabs/Global-MMLU@v2"}})  # pinned: fine


def test_chat_template_takes_auto_true_or_false():
    assert config.from_dict({}).train.chat_template == "auto"
    assert config.from_dict({"train": {"chat_template": False}}).train.chat_template is False
    allowed = r"train.chat_template = 'yes' is not allowed; choose one of \['auto', True, False\]"
    with pytest.raises(config.ConfigError, match=allowed):
        config.from_dict({"train": {"chat_template": "yes"}})


def test_memory_settings_are_checked():
    cfg = config.from_dict({"train": {"gradient_checkpointing": "auto", "device_memory_gib": 80}})
    assert cfg.train.gradient_checkpointing == "auto" and cfg.train.device_memory_gib == 80
    with pytest.raises(config.ConfigError, match="train.gradient_checkpointing = 'sometimes'"):
        config.from_dict({"train": {"gradient_checkpointing": "sometimes"}})
    with pytest.raises(config.ConfigError, match="train.device_memory_gib = -4"):
        config.from_dict({"train": {"device_memory_gib": -4}})
