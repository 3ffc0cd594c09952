"""compass.hub_assets: every hub asset a run needs, checked offline against fake caches."""
from __future__ import annotations

import json
import time

import pytest

from compass import config, hub_assets
from compass.config import ConfigError
from compass.hub_assets import Asset, MissingHubAssets

MODELS = {"phi-4-mini": "microsoft/Phi-4-mini-instruct", "llama-3.1-8b": "meta-llama/Llama-3.1-8B",
          "qwen2.5-7b": "Qwen/Qwen2.5-7B"}
DATASETS = ("CohereLabs/aya_dataset", "CohereLabs/Global-MMLU", "CohereLabs/Global-MMLU-Lite",
            "li-lab/MMLU-ProX-Lite")


@pytest.fixture
def hf_home(tmp_path, monkeypatch):
    """An empty Hugging Face home: hub cache and datasets cache under tmp_path."""
    home = tmp_path / "hf"
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    return home


def paper(**overrides):
    raw = {"profile": "paper", "languages": {"targets": ["es", "fr"]},
           "train": {"models": list(MODELS)}}
    for dotted, value in overrides.items():
        config.apply_override(raw, dotted, value)
    return config.from_dict(raw)


def cache_model(home, repo_id, files=("config.json", "model.safetensors"), index=None):
    """A model as huggingface_hub caches it: models--org--name/{refs/main, snapshots/<commit>/}."""
    repo = home / "hub" / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    for name in files:
        (snap / name).write_text("{}")
    if index is not None:
        (snap / "model.safetensors.index.json").write_text(json.dumps({"weight_map": index}))
    return snap


def cache_dataset(home, folder, configs):
    """A data set as datasets prepares it: <org>___<name>/<config>/<version>/<hash>/dataset_info.json."""
    for cfg_name in configs:
        prepared = home / "datasets" / folder / cfg_name / "0.0.0" / "f858c807393dd3b6"
        prepared.mkdir(parents=True)
        (prepared / "dataset_info.json").write_text("{}")


def test_tiny_profile_needs_nothing_from_the_hub(hf_home):
    cfg = config.from_dict({})
    assert cfg.profile == "tiny"
    assert hub_assets.required(cfg) == []
    hub_assets.check(cfg)  # passes with an empty cache


def test_tiny_profile_with_a_hub_encoder_needs_it(hf_home):
    cfg = config.from_dict({"encoder": {"name": "intfloat/multilingual-e5-base"}})
    assert [(a.kind, a.repo_id) for a in hub_assets.required(cfg)] == [
        ("model", "intfloat/multilingual-e5-base")]


def test_paper_assets(hf_home):
    assets = hub_assets.required(paper())
    assert [a.repo_id for a in assets] == [*MODELS.values(), *DATASETS]
    by_id = {a.repo_id: a for a in assets}
    assert by_id["meta-llama/Llama-3.1-8B"].why == "base model llama-3.1-8b"
    assert by_id["CohereLabs/Global-MMLU"].configs == ("es", "fr")
    assert "dev" in by_id["CohereLabs/Global-MMLU"].why
    assert "test" in by_id["CohereLabs/Global-MMLU-Lite"].why
    assert by_id["CohereLabs/aya_dataset"].configs == ("default",)
    assert {a.repo_type for a in assets if a.kind == "dataset"} == {"dataset"}
    assert not any(a.local for a in assets)


def test_full_test_set_and_no_prox(hf_home):
    assets = hub_assets.required(paper(**{"data.test_set": "full", "evaluation.prox.languages": []}))
    ids = [a.repo_id for a in assets]
    assert "CohereLabs/Global-MMLU-Lite" not in ids and "li-lab/MMLU-ProX-Lite" not in ids
    full = next(a for a in assets if a.repo_id == "CohereLabs/Global-MMLU")
    assert full.why == "Global-MMLU dev (E_t) and test"


def test_prox_languages_are_its_configs(hf_home):
    assets = hub_assets.required(paper(**{"evaluation.prox.languages": ["fr"]}))
    assert next(a for a in assets if a.repo_id == "li-lab/MMLU-ProX-Lite").configs == ("fr",)


def test_empty_cache_lists_every_asset_in_one_message(hf_home):
    with pytest.raises(MissingHubAssets) as err:
        hub_assets.check(paper())
    assert isinstance(err.value, ConfigError)  # the CLI prints it as one "error in params" line
    text = str(err.value)
    assert text.startswith("7 hub asset(s)")
    for repo_id in MODELS.values():
        assert f"hf download {repo_id} --exclude 'original/*'" in text
    for name in MODELS:
        assert f"base model {name}" in text
    for repo_id in DATASETS:
        assert f"load_dataset('{repo_id}'" in text
    assert "load_dataset('CohereLabs/Global-MMLU', c) for c in ['es', 'fr']" in text
    assert "hf auth login" in text and "https://huggingface.co/meta-llama/Llama-3.1-8B" in text
    assert "train.model_sources" in text and "data.aux_dataset" in text
    assert str(hf_home / "hub") in text


def test_cached_assets_are_not_listed(hf_home):
    cache_model(hf_home, "meta-llama/Llama-3.1-8B")
    cache_model(hf_home, "Qwen/Qwen2.5-7B", files=("config.json", "a.safetensors", "b.safetensors"),
                index={"x": "a.safetensors", "y": "b.safetensors"})
    cache_dataset(hf_home, "CohereLabs___aya_dataset", ["default"])
    cache_dataset(hf_home, "CohereLabs___global-mmlu", ["es", "fr", "de"])
    absent = hub_assets.missing(hub_assets.required(paper()))
    assert [a.repo_id for a in absent] == ["microsoft/Phi-4-mini-instruct",
                                           "CohereLabs/Global-MMLU-Lite", "li-lab/MMLU-ProX-Lite"]
    with pytest.raises(MissingHubAssets, match=r"^3 hub asset") as err:
        hub_assets.check(paper())
    assert "Llama-3.1-8B" not in str(err.value) and "aya_dataset" not in str(err.value)


def test_hub_cache_env_var_wins(hf_home, tmp_path, monkeypatch):
    other = tmp_path / "elsewhere"
    monkeypatch.setenv("HF_HUB_CACHE", str(other))
    cache_model(hf_home, "Qwen/Qwen2.5-7B")  # under HF_HOME/hub: not where HF_HUB_CACHE points
    asset = Asset("model", "Qwen/Qwen2.5-7B", "base model qwen2.5-7b")
    assert hub_assets.missing([asset]) == [asset]
    snap = other / "models--Qwen--Qwen2.5-7B" / "snapshots" / "c0ffee"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (snap / "model.safetensors").write_text("")
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("c0ffee\n")
    assert hub_assets.missing([asset]) == []


def test_incomplete_snapshots_are_missing_with_the_reason(hf_home):
    cache_model(hf_home, "org/config-only", files=("config.json",))
    cache_model(hf_home, "org/half-sharded", files=("config.json", "a.safetensors"),
                index={"x": "a.safetensors", "y": "b.safetensors"})
    assets = [Asset("model", "org/config-only", "base model a"),
              Asset("model", "org/half-sharded", "base model b")]
    assert hub_assets.missing(assets) == assets
    assert "no weights" in hub_assets.problem(assets[0])
    assert "lacks 1 of 2 weight shards" in hub_assets.problem(assets[1])


def test_dataset_needs_every_config_prepared(hf_home):
    cache_dataset(hf_home, "CohereLabs___global-mmlu", ["es"])
    asset = Asset("dataset", "CohereLabs/Global-MMLU", "Global-MMLU dev (E_t)", "dataset", ("es", "fr"))
    assert hub_assets.missing([asset]) == [asset]
    assert hub_assets.problem(asset).startswith("config(s) fr not prepared")
    # a download still in progress (datasets writes to <hash>.incomplete first) does not count
    partial = hf_home / "datasets" / "CohereLabs___global-mmlu" / "fr" / "0.0.0" / "ab.incomplete"
    partial.mkdir(parents=True)
    (partial / "dataset_info.json").write_text("{}")
    assert hub_assets.missing([asset]) == [asset]
    cache_dataset(hf_home, "CohereLabs___global-mmlu", ["fr"])
    assert hub_assets.missing([asset]) == []


def test_local_paths_are_checked_for_existence(hf_home, tmp_path):
    aya = tmp_path / "aya.parquet"
    aya.write_text("")
    model = tmp_path / "my-llama"
    model.mkdir()
    cfg = paper(**{"data.aux_dataset": str(aya), "data.target_lite_dataset": str(tmp_path / "gone"),
                   "train.model_sources": {"llama-3.1-8b": str(model),
                                           "qwen2.5-7b": str(tmp_path / "no-qwen")}})
    assets = {a.repo_id: a for a in hub_assets.required(cfg)}
    assert assets[str(aya)].local and assets[str(model)].local
    absent = hub_assets.missing(list(assets.values()))
    local_absent = [a.repo_id for a in absent if a.local]
    assert local_absent == [str(tmp_path / "no-qwen"), str(tmp_path / "gone")]
    text = str(pytest.raises(MissingHubAssets, hub_assets.check, cfg).value)
    assert f"model path {tmp_path / 'no-qwen'} [base model qwen2.5-7b]: this local path does not exist" in text
    assert f"dataset path {tmp_path / 'gone'}" in text and "data.target_lite_dataset" in text
    assert str(aya) not in text and str(model) not in text
    assert "hf download" in text  # phi-4-mini and the other data sets are still hub assets


def test_same_source_twice_is_one_asset(hf_home):
    cfg = paper(**{"data.target_lite_dataset": "CohereLabs/Global-MMLU"})
    gm = [a for a in hub_assets.required(cfg) if a.repo_id == "CohereLabs/Global-MMLU"]
    assert len(gm) == 1 and gm[0].why == "Global-MMLU dev (E_t); Global-MMLU-Lite test"


def test_check_is_fast_and_offline(hf_home, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("hub_assets touched the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    cfg = paper(**{"languages.targets": ["es", "fr", "ja", "ko", "el", "vi", "sw", "yo"],
                   "encoder.name": "intfloat/multilingual-e5-base"})
    assets = hub_assets.required(cfg) * 2  # 16 assets
    start = time.perf_counter()
    assert len(hub_assets.missing(assets)) == len(assets)
    assert time.perf_counter() - start < 1.0


def test_cli_exit_code(hf_home, tmp_path, capsys):
    import yaml

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"profile": "paper", "languages": {"targets": ["es"]},
                                      "train": {"models": ["qwen2.5-7b"]}}))
    assert hub_assets.main(["--params", str(params)]) == 2
    assert "hf download Qwen/Qwen2.5-7B" in capsys.readouterr().err
    params.write_text(yaml.safe_dump({"profile": "tiny"}))
    assert hub_assets.main(["--params", str(params)]) == 0
    assert "all 0 available offline" in capsys.readouterr().out


def test_a_cache_prepared_under_the_former_organisation_name_serves_the_current_id(hf_home):
    cache_dataset(hf_home, "CohereForAI___global-mmlu", ["es", "fr"])  # fetched before the rename
    asset = Asset("dataset", "CohereLabs/Global-MMLU", "Global-MMLU dev (E_t)", "dataset", ("es", "fr"))
    assert hub_assets.missing([asset]) == []
    assert hub_assets.offline_id("CohereLabs/Global-MMLU", ("es",)) == "CohereForAI/Global-MMLU"
    assert hub_assets.offline_id("CohereForAI/Global-MMLU", ("es",)) == "CohereForAI/Global-MMLU"
    other = Asset("dataset", "CohereLabs/Global-MMLU", "x", "dataset", ("de",))  # not prepared
    assert hub_assets.missing([other]) == [other]
    cache_model(hf_home, "CohereForAI/aya-expanse-8b")
    assert hub_assets.problem(Asset("model", "CohereLabs/aya-expanse-8b", "m")) is None


def test_a_pinned_revision_is_checked_fetched_and_named(hf_home):
    cfg = paper(**{"data.target_dataset": "CohereLabs/Global-MMLU@7a3e1f0",
                   "train.model_sources": {"llama-3.1-8b": "meta-llama/Llama-3.1-8B@d04e592b"}})
    by_id = {a.repo_id: a for a in hub_assets.required(cfg)}
    assert by_id["CohereLabs/Global-MMLU"].revision == "7a3e1f0"
    llama = by_id["meta-llama/Llama-3.1-8B"]
    assert llama.revision == "d04e592b"
    assert "--revision d04e592b" in hub_assets.fetch_command(llama)
    assert "revision='7a3e1f0'" in hub_assets.fetch_command(by_id["CohereLabs/Global-MMLU"])
    cache_model(hf_home, "meta-llama/Llama-3.1-8B")  # main is snapshot 0123abcd, not d04e592b
    assert "at revision d04e592b" in hub_assets.problem(llama)
    assert hub_assets.problem(Asset("model", "meta-llama/Llama-3.1-8B", "m", revision="0123abcd")) is None
    text = hub_assets.message([llama])
    assert "meta-llama/Llama-3.1-8B@d04e592b" in text


def test_hub_ids_split_a_revision_and_refuse_a_malformed_one(tmp_path):
    from compass import hub_ids

    assert hub_ids.split("CohereLabs/Global-MMLU@v1.0") == ("CohereLabs/Global-MMLU", "v1.0")
    assert hub_ids.split("CohereLabs/Global-MMLU") == ("CohereLabs/Global-MMLU", None)
    folder = tmp_path / "copy@2"  # a local path keeps its '@'
    folder.mkdir()
    assert hub_ids.split(str(folder)) == (str(folder), None)
    with pytest.raises(hub_ids.HubIdError, match="'CohereLabs/x@a b'"):
        hub_ids.split("CohereLabs/x@a b")
    assert hub_ids.aliases("CohereForAI/aya_dataset") == ("CohereLabs/aya_dataset",
                                                          "CohereForAI/aya_dataset")
