"""Presets in profiles/, the switch between them, and the paper profile's params checks."""
import pytest

from compass import config, paths, profiles
from compass.config import ConfigError


def test_params_yaml_as_shipped_is_the_tiny_preset():
    assert paths.PARAMS.read_text() == (paths.PROFILES / "tiny.yaml").read_text()
    assert profiles.active() == "tiny"


@pytest.mark.parametrize("name", ["tiny", "paper", "paper_fixtures"])
def test_every_preset_validates(name):
    cfg = config.load(paths.PROFILES / f"{name}.yaml")
    config.validate_pipeline(cfg)


def test_paper_preset_has_the_papers_settings():
    cfg = config.load(paths.PROFILES / "paper.yaml")
    assert cfg.profile == "paper"
    assert cfg.train.models == ("phi-4-mini", "llama-3.1-8b-instruct", "qwen2.5-7b-instruct")
    assert cfg.train.chat_template == "auto"  # all three instruct: each reads its chat template
    assert (cfg.clustering.k_min, cfg.clustering.k_max) == (80, 120)
    assert list(cfg.long_context.lengths) == [8000, 32000, 64000, 128000]  # OneRuler's


def _sandbox(tmp_path, monkeypatch):
    (tmp_path / "profiles").mkdir()
    for name in ("tiny", "paper"):
        (tmp_path / "profiles" / f"{name}.yaml").write_text((paths.PROFILES / f"{name}.yaml").read_text())
    (tmp_path / "params.yaml").write_text((paths.PROFILES / "tiny.yaml").read_text())
    monkeypatch.setattr(paths, "PROFILES", tmp_path / "profiles")
    monkeypatch.setattr(paths, "PARAMS", tmp_path / "params.yaml")


def test_switching_copies_the_preset_and_back(tmp_path, monkeypatch):
    _sandbox(tmp_path, monkeypatch)
    assert "now the 'paper' preset" in profiles.use("paper")
    assert config.load(paths.PARAMS).profile == "paper"
    assert profiles.active() == "paper"
    profiles.use("tiny")
    assert profiles.active() == "tiny"


def test_switching_refuses_to_overwrite_edits(tmp_path, monkeypatch):
    _sandbox(tmp_path, monkeypatch)
    paths.PARAMS.write_text(paths.PARAMS.read_text().replace("seed: 0", "seed: 1"))
    with pytest.raises(ConfigError, match="edits that match no preset"):
        profiles.use("paper")
    assert "seed: 1" in paths.PARAMS.read_text()  # untouched
    profiles.use("paper", force=True)
    assert profiles.active() == "paper"


def test_unknown_profile_names_the_presets(tmp_path, monkeypatch):
    _sandbox(tmp_path, monkeypatch)
    with pytest.raises(ConfigError, match=r"profile 'gpu' does not exist; choose one of \['paper', 'tiny'\]"):
        profiles.use("gpu")


@pytest.mark.parametrize("models, match", [
    ([], "train.models is empty"),
    (["gemma-3-270m", "gemma-3-270m"], "names a model twice"),
    (["gpt-9"], r"'gpt-9' is not a known model; choose one of"),
    (["org/model"], r"model name 'org/model' is not allowed"),
])
def test_bad_model_names_are_named(models, match):
    with pytest.raises(ConfigError, match=match):
        config.from_dict({"train": {"models": models}})


def test_a_new_model_goes_through_model_sources():
    cfg = config.from_dict({"train": {"models": ["mine"], "model_sources": {"mine": "org/model"}},
                            "ecda": {"model": "mine"}})
    config.validate_pipeline(cfg)
    from compass.training import catalog

    assert catalog.source("mine", cfg.train.model_sources) == "org/model"
    with pytest.raises(ConfigError, match="ecda.model = 'gemma-3-270m' is not among train.models"):
        config.validate_pipeline(config.from_dict({"train": {"models": ["mine"],
                                                             "model_sources": {"mine": "x/y"}}}))


def test_paper_params_are_checked():
    with pytest.raises(ConfigError, match=r"data.test_set = 'half' is not allowed"):
        config.from_dict({"data": {"test_set": "half"}})
    with pytest.raises(ConfigError, match=r"evaluation.prox.languages \['de'\] are not among"):
        config.from_dict({"evaluation": {"prox": {"languages": ["de"]}}})
    with pytest.raises(ConfigError, match=r"long_context.tasks entry = 'niah_multivalue'"):
        config.from_dict({"long_context": {"tasks": ["niah_multivalue"]}})
    with pytest.raises(ConfigError, match=r"long_context.lengths entry = 8 must be an integer >= 64"):
        config.from_dict({"long_context": {"lengths": [8]}})
    cfg = config.from_dict({"evaluation": {"prox": {"languages": ["ukr"]}}})
    assert cfg.prox_languages() == ("uk",)


def test_long_context_task_names_agree_with_the_library():
    from compass.evaluation import longcontext

    assert set(config.LONG_CONTEXT_TASKS) == set(longcontext.TASKS)
