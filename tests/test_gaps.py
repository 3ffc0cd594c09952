"""Gap / covered clusters and the test items' assignment, on a hand-made pool (fast)."""
import numpy as np
import pandas as pd

from compass.selection.clustering import TargetClusters
from compass.selection.gaps import ASSIGNMENT_COLUMNS, CLUSTER_COLUMNS, assign_items, cluster_gaps, gap_mask
from compass.selection.pool import TargetPool


def hand_pool(target_mean=None):
    """Three clusters on the axes of R^3. E_t: one item per cluster (shares 1/3 each); existing
    train: 2, 3 and 1 of 6 (1/3, 1/2, 1/6). So cluster 0 is covered exactly (1/3 = 2/6), cluster 1
    over-covered, cluster 2 the only gap."""
    eye = np.eye(3, dtype=np.float32)
    clusters = TargetClusters(centroids=eye, labels=np.array([0, 1, 2], dtype=np.int32),
                              radius=np.full(3, 0.5, dtype=np.float32), k=3,
                              selection_table=pd.DataFrame())
    train_labels = np.array([0, 0, 1, 1, 1, 2])
    empty = pd.DataFrame({"id": []})
    return TargetPool("xx", dev=pd.DataFrame({"id": ["d0", "d1", "d2"]}),
                      train=pd.DataFrame({"id": [f"t{i}" for i in range(6)]}), aux=empty,
                      aux_vectors=np.zeros((0, 3), np.float32), dev_vectors=eye,
                      train_vectors=eye[train_labels], clusters=clusters,
                      dev_labels=clusters.labels, train_labels=train_labels,
                      decontamination=pd.DataFrame(), target_mean=target_mean)


def test_gap_mask_is_strictly_more_target_than_train():
    assert gap_mask([0.5, 0.25, 0.25], [0.25, 0.25, 0.5]).tolist() == [True, False, False]
    assert not gap_mask([2 / 6], [1 / 3]).any()  # equal fractions: covered, not a rounding gap


def test_cluster_gaps_of_a_hand_made_pool():
    table = cluster_gaps(hand_pool())
    assert tuple(table.columns) == CLUSTER_COLUMNS
    np.testing.assert_allclose(table["p_target"], [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(table["p_train"], [1 / 3, 1 / 2, 1 / 6])
    assert table["gap"].tolist() == [False, False, True]


def test_assign_items_by_nearest_target_centroid():
    vectors = {"a": [0.9, 0.1, 0.0], "b": [0.0, 0.2, 0.9], "c": [0.1, 0.8, 0.3], "d": [0.3, 0.0, 0.7]}
    rows = {k: np.array(v, np.float32) / np.linalg.norm(v) for k, v in vectors.items()}

    def vectors_of(ids):
        return np.stack([rows[i] for i in ids])

    for mean in (None, np.zeros(3, np.float32)):  # with and without the target's centring
        out = assign_items(hand_pool(mean), ["a", "b", "c", "d"], vectors_of)
        assert tuple(out.columns) == ASSIGNMENT_COLUMNS
        assert out["id"].tolist() == ["a", "b", "c", "d"]
        assert out["cluster"].tolist() == [0, 2, 1, 2]
        assert out["gap"].tolist() == [False, True, False, True]
    # centring by the target mean moves an item to another cluster, as it moved E_t
    shifted = assign_items(hand_pool(np.array([0.0, 0.0, 0.6], np.float32)), ["d"], vectors_of)
    assert shifted["cluster"].tolist() == [0] and shifted["gap"].tolist() == [False]
    assert len(assign_items(hand_pool(), [], vectors_of)) == 0
