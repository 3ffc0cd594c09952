"""Presets in profiles/ as overlays of the schema's defaults, the params.yaml written from them,
the switch between them, and the paper profile's params checks."""
import subprocess
from dataclasses import asdict

import pytest
import yaml

from compass import config, paths, profiles
from compass.config import ConfigError

PRESETS = ["tiny", "paper", "paper_fixtures"]
# the last commit whose profiles/*.yaml were complete params files, before they became overlays
BEFORE_OVERLAYS = "7b588d3"
# the one setting the overlays dropped: read by nothing
DROPPED = ("data", "prox_dataset")


def test_params_yaml_as_shipped_is_the_tiny_preset_written_out():
    assert profiles.active() == "tiny"
    assert paths.PARAMS.read_text() == profiles.params_text("tiny")


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_validates_and_names_its_protocol(name):
    cfg = config.load(paths.PROFILES / f"{name}.yaml")
    config.validate_pipeline(cfg)
    assert cfg.profile == ("tiny" if name == "tiny" else "paper")


def _complete_preset_before_overlays(name: str) -> dict:
    shown = subprocess.run(["git", "show", f"{BEFORE_OVERLAYS}:profiles/{name}.yaml"],
                           cwd=paths.ROOT, capture_output=True, text=True)
    if shown.returncode:
        pytest.skip(f"commit {BEFORE_OVERLAYS} is not in this clone (a shallow checkout)")
    raw = yaml.safe_load(shown.stdout)
    del raw[DROPPED[0]][DROPPED[1]]
    return raw


@pytest.mark.parametrize("name", PRESETS)
def test_overlays_resolve_to_the_complete_presets_they_replaced(name):
    """Results must not move: each overlay resolves to the same Config, and the params.yaml
    written from it to the same values (keys, nesting, types), as the complete file it replaced."""
    before = _complete_preset_before_overlays(name)
    assert asdict(config.load(paths.PROFILES / f"{name}.yaml")) == asdict(config.from_dict(before))
    written = yaml.safe_load(profiles.params_text(name))

    def typed(node):
        if isinstance(node, dict):
            return {key: typed(value) for key, value in node.items()}
        return node, type(node)

    assert typed(written) == typed(before)


def test_paper_fixtures_adds_to_paper():
    fixtures = config.load(paths.PROFILES / "paper_fixtures.yaml")
    assert fixtures.ecda.scoring == "choices"  # set by paper.yaml only
    assert fixtures.train.models == ("gemma-3-270m",)  # paper.yaml's, replaced


def test_paper_preset_has_the_papers_settings():
    cfg = config.load(paths.PROFILES / "paper.yaml")
    assert cfg.profile == "paper"
    assert cfg.train.models == ("phi-4-mini", "llama-3.1-8b-instruct", "qwen2.5-7b-instruct")
    assert cfg.train.chat_template == "auto"  # all three instruct: each reads its chat template
    assert (cfg.clustering.k_min, cfg.clustering.k_max) == (80, 120)
    assert list(cfg.long_context.lengths) == [8000, 32000, 64000, 128000]  # OneRuler's


def test_params_yaml_carries_the_schemas_help_and_where_it_came_from():
    text = profiles.params_text("paper")
    assert "python -m compass.cli profile paper" in text and "do not edit by hand" in text
    lines = text.splitlines()
    budget = lines.index("  budget: 10000")
    assert lines[budget - 1] == "  # auxiliary items each method selects. Allowed: an integer >= 1"
    assert "  # kmeans (K by silhouette) | hdbscan. Allowed: kmeans | hdbscan" in lines


def test_overrides_go_into_the_written_params():
    text = profiles.params_text("paper_fixtures", {"languages.targets": ["en", "es"]})
    assert yaml.safe_load(text)["languages"]["targets"] == ["en", "es"]


def test_an_include_that_loops_or_is_missing_is_named(tmp_path):
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\n")
    with pytest.raises(ConfigError, match="includes itself"):
        config.load(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("include: gone.yaml\n")
    with pytest.raises(ConfigError, match=r"gone.yaml does not exist"):
        config.load(tmp_path / "c.yaml")


def _sandbox(tmp_path, monkeypatch):
    (tmp_path / "profiles").mkdir()
    for name in PRESETS:
        (tmp_path / "profiles" / f"{name}.yaml").write_text(
            (paths.PROFILES / f"{name}.yaml").read_text())
    monkeypatch.setattr(paths, "PROFILES", tmp_path / "profiles")
    monkeypatch.setattr(paths, "PARAMS", tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text(profiles.params_text("tiny"))


def test_switching_writes_the_preset_and_back(tmp_path, monkeypatch):
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
    with pytest.raises(ConfigError, match=r"profile 'gpu' does not exist; choose one of "
                                          r"\['paper', 'paper_fixtures', 'tiny'\]"):
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
    from compass import model_catalog as catalog

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
    with pytest.raises(ConfigError,
                       match=r"long_context.lengths entry = 8 must be an integer >= 64"):
        config.from_dict({"long_context": {"lengths": [8]}})
    cfg = config.from_dict({"evaluation": {"prox": {"languages": ["ukr"]}}})
    assert cfg.prox_languages() == ("uk",)


def test_long_context_task_names_agree_with_the_library():
    from compass.evaluation import longcontext

    assert set(config.LONG_CONTEXT_TASKS) == set(longcontext.TASKS)
