import numpy as np
import pytest

from compass.selection.base import SelectionError
from compass.selection_methods import CONTROLS, METHODS
from compass.selection.selectors import select
from tests.conftest import with_sampling

BUDGETED = [m for m in METHODS if m != "all" and m not in CONTROLS]


@pytest.fixture
def pool_and_cfg(cfg, pool_factory):
    pool, *_ = pool_factory(cfg)
    return pool, cfg


@pytest.mark.parametrize("method", BUDGETED)
def test_budget_respected_and_deterministic(pool_and_cfg, method):
    pool, cfg = pool_and_cfg
    first = select(method, pool, cfg)
    again = select(method, pool, cfg)
    assert first.size == cfg.sampling.budget
    assert first.manifest["id"].is_unique
    assert first.manifest["id"].tolist() == again.manifest["id"].tolist()
    assert list(first.manifest.columns) == ["id", "language", "cluster", "score"]
    assert set(first.manifest["language"]) <= {"ru", "ja", "en"}
    assert first.report["selected"].sum() == cfg.sampling.budget


@pytest.mark.parametrize("method", ["random", "dsir", "compass"])
def test_other_seed_changes_random_choices(pool_and_cfg, method):
    pool, cfg = pool_and_cfg
    a = select(method, pool, cfg, seed=0).manifest["id"].tolist()
    b = select(method, pool, cfg, seed=1).manifest["id"].tolist()
    if method == "compass":  # nearest-to-centroid is seed-free given the clusters
        assert a == b
    else:
        assert a != b


def test_all_takes_every_decontaminated_item(pool_and_cfg):
    pool, cfg = pool_and_cfg
    assert select("all", pool, cfg).size == len(pool.aux)


@pytest.mark.parametrize("method", BUDGETED)
def test_budget_larger_than_pool_is_an_error(pool_and_cfg, method):
    pool, cfg = pool_and_cfg
    big = with_sampling(cfg, budget=len(pool.aux) + 1)
    with pytest.raises((SelectionError, ValueError), match=f"budget {len(pool.aux) + 1}"):
        select(method, pool, big)


def test_unknown_method(pool_and_cfg):
    pool, cfg = pool_and_cfg
    with pytest.raises(SelectionError, match="'best' does not exist; choose from"):
        select("best", pool, cfg)


def test_compass_spends_budget_on_clusters_train_misses(pool_and_cfg):
    """Train covers topics t0, t1 only: coverage_gap puts the budget in t2 and t3's clusters."""
    pool, cfg = pool_and_cfg
    sel = select("compass", pool, cfg)
    report = sel.report
    missing = report["train_share"] < report["target_share"]
    assert sel.report.loc[~missing, "selected"].sum() == 0
    assert sel.report.loc[missing, "selected"].sum() == cfg.sampling.budget
    # selected items come from aux pairs whose synthetic topic is one the train data lacks
    topics = pool.aux.set_index("id").loc[sel.manifest["id"], "topic"]
    assert set(topics) <= {"t2", "t3"}


def test_compass_fill_matches_target_better_than_random(cfg, pool_factory):
    pool, *_ = pool_factory(cfg)
    from compass.selection.allocation import shares

    def tv(sel):
        combined = np.concatenate([pool.train_labels, sel.manifest["cluster"].to_numpy()])
        return 0.5 * np.abs(shares(combined, pool.k) - pool.p_target()).sum()

    cfg40 = with_sampling(cfg, budget=60)
    assert tv(select("compass_fill", pool, cfg40)) < tv(select("random", pool, cfg40))


def test_decontamination_drops_planted_copy_of_a_test_item(cfg, pool_factory):
    _, frame, vectors, _ = pool_factory(cfg)
    test_row = frame.index[frame["split"] == "test"][0]
    planted = ({"id": "en/aux/planted", "language": "en", "topic": "t0", "prompt": "x",
                "response": "y", "source": "synthetic", "split": "aux"}, vectors[test_row])
    pool, *_ = pool_factory(cfg, extra_aux=[planted])
    assert "en/aux/planted" not in set(pool.aux["id"])
    report = pool.decontamination.set_index("language")
    assert report.loc["en", "dropped"] >= 1
    for method in METHODS:
        assert "en/aux/planted" not in set(select(method, pool, cfg).manifest["id"])


def test_near_duplicates_are_not_selected_twice(cfg, pool_factory):
    _, frame, vectors, _ = pool_factory(cfg)
    aux_row = frame.index[(frame["split"] == "aux") & (frame["topic"] == "t2")][0]
    twins = [({"id": f"ru/aux/twin{i}", "language": "ru", "topic": "t2", "prompt": "x",
               "response": "y", "source": "synthetic", "split": "aux"}, vectors[aux_row])
             for i in range(3)]
    pool, *_ = pool_factory(cfg, extra_aux=twins)
    sel = select("compass", pool, with_sampling(cfg, budget=60))
    chosen = set(sel.manifest["id"])
    original = frame.at[aux_row, "id"]
    assert len(chosen & {original, "ru/aux/twin0", "ru/aux/twin1", "ru/aux/twin2"}) <= 1


def test_diverse_within_cluster_option(cfg, pool_factory):
    pool, *_ = pool_factory(cfg)
    near = select("compass", pool, cfg).manifest
    diverse = select("compass", pool, with_sampling(cfg, within_cluster="diverse")).manifest
    assert len(diverse) == len(near) and set(diverse["id"]) != set(near["id"])
    # diverse picks are on average farther from their centroid
    assert (1 - diverse["score"]).mean() > (1 - near["score"]).mean()


def test_langsim_picks_the_closest_languages(cfg, pool_factory):
    pool, *_ = pool_factory(cfg)
    sel = select("langsim", pool, with_sampling(cfg, langsim=type(cfg.sampling.langsim)(n_languages=1)))
    assert sel.info["languages"][0] == "ru"  # for Ukrainian, Russian before Japanese and English
    assert set(sel.manifest["language"]) == {"ru"}


@pytest.mark.parametrize("noise", [1e-6, 1e-4])
def test_selection_survives_last_bit_noise_in_the_embeddings(cfg, pool_factory, noise):
    """Another CPU's SIMD kernels change embeddings in the last bits: every method must select
    the same ids (what DVC's byte hashes of the selections rely on)."""
    pool, *_ = pool_factory(cfg)
    noisy, *_ = pool_factory(cfg, noise=noise)
    for method in METHODS:
        assert (select(method, pool, cfg).manifest["id"].tolist()
                == select(method, noisy, cfg).manifest["id"].tolist()), method


def _only_eligible(pool, keep_per_cluster: dict[int, int]):
    """A copy of ``pool`` whose clusters keep only their nearest n eligible items (a tight radius,
    as a small E_t gives)."""
    from dataclasses import replace

    aux = pool.aux.copy()
    for c, n in keep_per_cluster.items():
        members = aux.index[(aux["cluster"] == c) & aux["eligible"]]
        far = aux.loc[members].sort_values(["distance", "id"]).index[n:]
        aux.loc[far, "eligible"] = False
    return replace(pool, aux=aux)


def test_unfilled_seats_spill_to_the_nearest_under_covered_cluster(pool_and_cfg):
    """A gap cluster with 2 eligible items keeps them and hands the rest of its quota to the gap
    cluster nearest to it; covered clusters get nothing while a gap cluster has room."""
    from compass.selection.compass_method import spill_order

    pool, cfg = pool_and_cfg
    first = select("compass", pool, cfg).report
    gap = first.index[first["quota"] > 0].tolist()
    short = max(gap, key=lambda c: first.at[c, "quota"])
    tight = _only_eligible(pool, {short: 2})
    sel = select("compass", tight, cfg)
    report = sel.report.set_index("cluster")
    nearest_gap = spill_order(pool.clusters.centroids, np.where(report["quota"] > 0, 1.0, 0.0))[short][0]
    assert report.at[short, "placed_own"] == 2 and report.at[short, "selected"] == 2
    assert report.at[nearest_gap, "placed_spill"] == report.at[short, "quota"] - 2
    assert report.loc[report["quota"] == 0, "selected"].sum() == 0
    assert sel.info["placed"] == {"own": cfg.sampling.budget - report.at[short, "quota"] + 2,
                                  "spill": int(report.at[short, "quota"]) - 2, "widened": 0}
    assert sel.size == cfg.sampling.budget


def test_beyond_the_radii_the_nearest_items_fill_what_is_left(pool_and_cfg):
    """With 1 eligible item per cluster, the rest of the budget comes from beyond the radii,
    nearest to its centroid first, and the report says so (rule 3, 'widened')."""
    pool, cfg = pool_and_cfg
    tight = _only_eligible(pool, {c: 1 for c in range(pool.k)})
    sel = select("compass", tight, cfg)
    assert sel.size == cfg.sampling.budget
    assert sel.info["placed"]["widened"] == cfg.sampling.budget - sel.info["placed"]["own"] \
        - sel.info["placed"]["spill"] > 0
    assert sel.report["placed_widened"].sum() == sel.info["placed"]["widened"]
    aux = tight.aux.set_index("id")
    chosen = aux.loc[sel.manifest["id"]]
    for c, picked in chosen[~chosen["eligible"]].groupby("cluster"):
        rest = aux[(aux["cluster"] == c) & ~aux["eligible"] & ~aux.index.isin(picked.index)]
        assert picked["distance"].max() <= rest["distance"].min()


def test_a_one_member_cluster_keeps_a_radius(cfg):
    """The radius floor: a cluster of one E_t item gets the all-member quantile, not 0."""
    from compass.selection.clustering import _finish

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(21, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.array([0] * 10 + [1] * 10 + [2])
    clusters = _finish(vectors, labels, 3, 0.95, None)
    assert clusters.radius[2] == pytest.approx(clusters.global_radius) and clusters.global_radius > 0
    assert np.all(clusters.radius >= clusters.global_radius)


def test_e_t_is_labelled_by_the_rule_every_other_item_is(pool_and_cfg):
    """E_t's labels come from the same nearest-centroid (cosine) assignment as train, auxiliary
    and test items, not from K-Means' Euclidean labels."""
    pool, _ = pool_and_cfg
    labels, _ = pool.clusters.assign(pool.dev_vectors)
    assert np.array_equal(pool.dev_labels, labels)


def test_the_oracle_control_takes_the_targets_own_gap_pairs(pool_and_cfg):
    from compass.selection.gaps import gap_mask

    pool, cfg = pool_and_cfg
    sel = select("oracle", pool, cfg)
    gaps = set(np.flatnonzero(gap_mask(pool.p_target(), pool.p_train())))
    assert 0 < sel.size <= cfg.sampling.budget and set(sel.manifest["language"]) == {pool.target}
    assert set(sel.manifest["id"]) <= set(pool.dev["id"]) and set(sel.manifest["cluster"]) <= gaps
