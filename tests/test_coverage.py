"""The paper protocol on any target: which benchmarks cover it, said before anything runs; what
does not cover it is left out (and not counted by `make cost`); what the protocol cannot run
without is refused in one line with a remedy."""
import pytest

from compass import config, coverage, cost, paths
from compass.stages import check

# counts the issue and the data sets' cards give (lm-eval 0.4.13, OneRuler)
PUBLISHED = {"global_mmlu_full": 42, "global_mmlu_lite": 15, "mmlu_prox_lite": 29, "oneruler": 26}


def paper_cfg(targets, **more):
    return config.load(paths.PROFILES / "paper.yaml", overrides={
        "languages.targets": list(targets), "ecda.language": targets[0],
        "long_context.languages": list(targets), "evaluation.prox.languages": "targets", **more})


def test_the_language_sets_are_read_from_what_is_installed():
    sets = {"global_mmlu_full": coverage.global_mmlu_full(), "global_mmlu_lite": coverage.global_mmlu_lite(),
            "mmlu_prox_lite": coverage.mmlu_prox_lite(), "oneruler": coverage.oneruler()}
    assert {k: len(v) for k, v in sets.items()} == PUBLISHED
    assert coverage.global_mmlu_lite() < coverage.global_mmlu_full()
    assert "el" in coverage.global_mmlu_full() and not {"el"} & (coverage.global_mmlu_lite()
                                                               | coverage.mmlu_prox_lite() | coverage.oneruler())
    assert "vi" not in coverage.global_mmlu_lite() and "vi" in coverage.mmlu_prox_lite()


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COMPASS_DATA_DIR", str(tmp_path / "data"))  # no pool yet


@pytest.mark.parametrize("lang", sorted(coverage.global_mmlu_full()))
def test_every_global_mmlu_language_through_the_paper_preflight(lang, empty_hub):
    """The offline check lists the per-language assets and a coverage row that is right."""
    cfg = paper_cfg([lang])
    with pytest.raises(config.ConfigError) as caught:
        check.check_params(cfg, hub=True, dry=True)
    message = str(caught.value)
    row = next(line.split() for line in message.splitlines() if line.split()[:1] == [lang])
    expected = ["yes", "yes" if lang in coverage.global_mmlu_lite() else "no",
                "yes" if lang in coverage.mmlu_prox_lite() else "no",
                "yes" if lang in coverage.oneruler() else "no"]
    assert row[1:5] == expected
    assert f"load_dataset('CohereLabs/Global-MMLU', c) for c in ['{lang}']" in message
    prox_line = f"load_dataset('li-lab/MMLU-ProX-Lite', c) for c in ['{lang}']"
    assert (prox_line in message) == (lang in coverage.mmlu_prox_lite())
    runs = coverage.table(cfg)["runs"].iloc[0]
    assert runs.startswith("Global-MMLU full")
    assert ("MMLU-ProX-Lite" in runs) == (lang in coverage.mmlu_prox_lite())
    assert ("OneRuler" in runs) == (lang in coverage.oneruler())


def test_a_target_the_protocol_cannot_run_is_refused_with_a_remedy(empty_hub):
    with pytest.raises(config.ConfigError, match=r"target 'el': Global-MMLU-Lite has no 'el'.*"
                                                 r"set data.test_set: full"):
        check.check_params(paper_cfg(["el"], **{"data.test_set": "lite"}), dry=True)
    with pytest.raises(config.ConfigError, match=r"target 'eu': Global-MMLU has no 'eu'"):
        check.check_params(paper_cfg(["eu"]), dry=True)
    with pytest.raises(config.ConfigError, match=r"evaluation.prox.languages \['el'\]: MMLU-ProX-Lite "
                                                 r"does not cover them"):
        check.check_params(paper_cfg(["el", "ja"], **{"evaluation.prox.languages": ["el", "ja"]}),
                           dry=True)
    assert coverage.refusals(["ja", "ko"], "full", {"ja": 12}) == [
        "target 'ko': data.aux_dataset has no 'ko' rows, which the paper protocol uses as the "
        "existing training data; remove it from languages.targets"]


def test_cost_counts_only_the_benchmarks_that_run():
    """el has no MMLU-ProX-Lite and no OneRuler templates: adding it costs training and
    Global-MMLU, nothing on the others."""
    three = cost.cost_table(paper_cfg(["ja", "ko", "vi"]))
    four = cost.cost_table(paper_cfg(["ja", "ko", "vi", "el"]))
    for column in ("prox_generations", "prox_gpu_h", "lc_generations", "lc_gpu_h"):
        assert four.loc["total", column] == three.loc["total", column], column
    assert four.loc["total", "mc_items"] == three.loc["total", "mc_items"] * 4 // 3
    assert paper_cfg(["ja", "el"]).prox_languages() == ("ja",)
    assert paper_cfg(["ja", "el"]).long_context_scored() == ("ja",)
