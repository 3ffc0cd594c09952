import numpy as np

from compass.selection.allocation import (coverage_gap_weights, fill_to_target_weights,
                                         inverse_count_weights, largest_remainder, shares)


def test_largest_remainder_exact():
    assert largest_remainder([0.5, 0.3, 0.2], 10).tolist() == [5, 3, 2]
    assert largest_remainder([1, 1, 1], 10).tolist() == [4, 3, 3]  # tie -> lower index
    assert largest_remainder([0.45, 0.35, 0.2], 7).tolist() == [3, 3, 1]  # 3.15, 2.45, 1.4
    assert largest_remainder([0, 0], 5).tolist() == [0, 0]


def test_coverage_gap():
    w = coverage_gap_weights([0.5, 0.3, 0.2], [0.7, 0.1, 0.2])
    assert np.allclose(w, [0.0, 0.2, 0.0])
    # no gap at all -> the target share itself
    assert np.allclose(coverage_gap_weights([0.6, 0.4], [0.6, 0.4]), [0.6, 0.4])


def test_inverse_count():
    w = inverse_count_weights([0, 3, 9, 50], tau=10, eps=1.0)
    assert np.allclose(w, [1.0, 0.25, 0.1, 0.0])


def test_fill_to_target():
    # train 10 items all in cluster 0; target is half/half; budget 10 -> cluster 1 lacks 10
    w = fill_to_target_weights([0.5, 0.5], [10, 0], budget=10)
    assert np.allclose(w, [0.0, 10.0])


def test_shares():
    assert np.allclose(shares(np.array([0, 0, 1, 3]), 4), [0.5, 0.25, 0.0, 0.25])
    assert np.allclose(shares(np.array([], dtype=int), 2), [0, 0])
