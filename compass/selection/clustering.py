"""Clustering of the target usage sample E_t and assignment of other items to its clusters.

K-Means with K chosen by silhouette over a range (the paper reports K = 80-120 on Global-MMLU;
the tiny profile's few hundred dev items want far fewer), or HDBSCAN. Vectors are expected to be
L2-normalised (and usually centred per language), so Euclidean K-Means follows cosine geometry.

Two rules keep a small E_t (a few dozen items) usable:

- **K fits E_t**: the K range is clipped per language to at most |E_t| / ``min_cluster_size``
  clusters (on average at least that many E_t items each); :func:`k_range` says how, and the
  sampling metrics record a clipped range. Silhouette alone picks K near |E_t| / 2 on a few dozen
  short chat items, which leaves clusters of one to three members.
- **A radius floor**: a cluster's eligibility radius is the ``eligibility_quantile`` of its own
  members' distances to its centroid, but never below the same quantile over all E_t members
  (``global_radius``). A cluster of one member would otherwise have radius 0 and no eligible
  auxiliary item at all, however close the pool's items are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import HDBSCAN, KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits


class ClusteringError(ValueError):
    """A clustering request the data cannot satisfy (e.g. more clusters than items)."""


@dataclass
class TargetClusters:
    """Clusters of the target sample: unit centroids, member labels, per-cluster radius."""

    centroids: np.ndarray  # (K, d), L2-normalised
    labels: np.ndarray  # (n_target,) cluster of each target item
    radius: np.ndarray  # (K,) cosine distance within which an item is eligible
    k: int
    selection_table: pd.DataFrame  # K tried and its silhouette (kmeans) or cluster sizes
    global_radius: float = 0.0  # the floor under every radius: the quantile over all E_t members
    k_note: str = ""  # how the K range was clipped to fit E_t ("" when it was not)

    def assign(self, vectors: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
        """Nearest centroid of each row and its cosine distance (chunked: 1M rows fit in RAM)."""
        labels = np.empty(len(vectors), dtype=np.int32)
        dist = np.empty(len(vectors), dtype=np.float32)
        for start in range(0, len(vectors), chunk):
            sims = vectors[start:start + chunk] @ self.centroids.T
            best = sims.argmax(axis=1)
            labels[start:start + chunk] = best
            dist[start:start + chunk] = 1.0 - sims[np.arange(len(best)), best]
        return labels, dist

    def eligible(self, labels: np.ndarray, dist: np.ndarray) -> np.ndarray:
        """Items no farther from their centroid than the cluster's radius."""
        return dist <= self.radius[labels]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _finish(vectors, labels, k, quantile, table, k_note: str = "") -> TargetClusters:
    """Unit centroids of the clustering's groups; then E_t's own labels by the same rule as every
    other item's (nearest centroid by cosine, :meth:`TargetClusters.assign`), so p_target and
    p_train (or a window's shares) are measured alike. The radii come from those labels."""
    centroids = _unit(np.stack([vectors[labels == c].mean(axis=0) for c in range(k)]))
    clusters = TargetClusters(centroids.astype(np.float32), labels.astype(np.int32),
                              np.zeros(k, np.float32), k, table, 0.0, k_note)
    labels, dist = clusters.assign(vectors.astype(np.float32))
    floor = float(np.quantile(dist, quantile))
    radius = np.array([max(float(np.quantile(dist[labels == c], quantile)), floor)
                       if (labels == c).any() else floor for c in range(k)], dtype=np.float32)
    clusters.labels, clusters.radius, clusters.global_radius = labels, radius, floor
    return clusters


def k_range(n_items: int, k_min: int, k_max: int, min_cluster_size: int) -> tuple[int, int, str]:
    """The K range K-Means searches for ``n_items`` E_t items: [k_min, k_max] clipped to at most
    n_items // min_cluster_size clusters. Returns (low, high, note); the note is "" when nothing
    was clipped. Raises ClusteringError when not even 2 clusters fit."""
    fit = n_items // min_cluster_size
    if fit < 2:
        raise ClusteringError(
            f"E_t has {n_items} items: two clusters of clustering.min_cluster_size = "
            f"{min_cluster_size} need at least {2 * min_cluster_size}; lower "
            f"clustering.min_cluster_size to at most {max(1, n_items // 2)}")
    high = min(k_max, fit)
    low = min(k_min, high)
    if (low, high) == (k_min, k_max):
        return low, high, ""
    return low, high, (f"K range [{k_min}, {k_max}] clipped to [{low}, {high}]: {n_items} E_t "
                       f"items hold at most {fit} clusters of {min_cluster_size} on average")


def kmeans_by_silhouette(vectors: np.ndarray, k_min: int, k_max: int, seed: int,
                         eligibility_quantile: float = 0.95,
                         min_cluster_size: int = 1) -> TargetClusters:
    """K-Means for every K in [k_min, k_max] (clipped by :func:`k_range`); keep the K with the
    best silhouette."""
    n = len(vectors)
    k_min, k_max, note = k_range(n, k_min, k_max, min_cluster_size)
    if k_max >= n:
        raise ClusteringError(
            f"clustering range k_max = {k_max} is not below the number of target items ({n}); "
            f"set clustering.k_max to at most {n - 1}"
        )
    rows, best = [], None
    with threadpool_limits(1 if n < 5000 else None):
        best, rows = _search(vectors, k_min, k_max, seed)
    table = pd.DataFrame(rows)
    _, k, labels = best
    return _finish(vectors, labels, k, eligibility_quantile, table, note)


def _search(vectors, k_min, k_max, seed):
    rows, best = [], None
    for k in range(k_min, k_max + 1):
        model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(vectors)
        score = float(silhouette_score(vectors, model.labels_, metric="cosine"))
        rows.append({"k": k, "silhouette": score})
        if best is None or score > best[0]:
            best = (score, k, model.labels_)
    return best, rows


def hdbscan_clusters(vectors: np.ndarray, min_cluster_size: int,
                     eligibility_quantile: float = 0.95) -> TargetClusters:
    """HDBSCAN; noise points are attached to the nearest cluster so every target item counts."""
    labels = HDBSCAN(min_cluster_size=min_cluster_size, metric="euclidean").fit_predict(vectors)
    found = sorted(set(labels) - {-1})
    if len(found) < 2:
        raise ClusteringError(
            f"HDBSCAN with min_cluster_size = {min_cluster_size} found {len(found)} cluster(s) in "
            f"{len(vectors)} items; lower clustering.min_cluster_size or use kmeans"
        )
    remap = {old: new for new, old in enumerate(found)}
    k = len(found)
    core = _unit(np.stack([vectors[labels == old].mean(axis=0) for old in found]))
    labels = np.array([remap.get(label, -1) for label in labels])
    noise = labels == -1
    if noise.any():
        labels[noise] = (vectors[noise] @ core.T).argmax(axis=1)
    table = pd.DataFrame({"cluster": range(k), "size": np.bincount(labels, minlength=k)})
    table.attrs["noise_points"] = int(noise.sum())
    return _finish(vectors, labels, k, eligibility_quantile, table)


def cluster_target(vectors: np.ndarray, cfg, seed: int) -> TargetClusters:
    """Cluster per the ClusteringConfig ``cfg``."""
    if cfg.algorithm == "kmeans":
        return kmeans_by_silhouette(vectors, cfg.k_min, cfg.k_max, seed, cfg.eligibility_quantile,
                                    cfg.min_cluster_size)
    if cfg.algorithm == "hdbscan":
        return hdbscan_clusters(vectors, cfg.min_cluster_size, cfg.eligibility_quantile)
    raise ClusteringError(f"clustering.algorithm = {cfg.algorithm!r}; use 'kmeans' or 'hdbscan'")
