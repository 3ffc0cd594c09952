"""Everything one target language's selection needs, built once and shared by every method.

Order of operations (each method then sees the same candidates and budget):
1. decontaminate: drop auxiliary items that are near-copies or likely translations of a test item
   (raw embeddings; :mod:`compass.selection.decontamination`);
2. centre embeddings per language (the target's mean from dev+train only, never test);
3. cluster the target usage sample E_t (dev) and assign train and auxiliary items to its clusters,
   marking auxiliary items beyond a cluster's radius as not eligible for COMPASS.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from compass.selection.allocation import shares
from compass.selection.clustering import TargetClusters, cluster_target
from compass.selection.decontamination import contaminated
from compass.data.embed import center_by_language


@dataclass
class TargetPool:
    """One target's view of the pool for selection: E_t, its existing training data and the
    decontaminated auxiliary candidates, embedded and assigned to the target's clusters."""
    target: str
    dev: pd.DataFrame  # PAIR rows of the target usage sample E_t
    train: pd.DataFrame  # PAIR rows of the existing target training data
    aux: pd.DataFrame  # candidate PAIR rows + cluster, distance, eligible (after decontamination)
    aux_vectors: np.ndarray  # centred, aligned with ``aux``
    dev_vectors: np.ndarray
    train_vectors: np.ndarray
    clusters: TargetClusters
    dev_labels: np.ndarray
    train_labels: np.ndarray
    # per auxiliary language: candidates, near-copies, translations, kept
    decontamination: pd.DataFrame
    target_mean: np.ndarray | None = None  # the mean E_t was centred by (None: no centring)

    @property
    def k(self) -> int:
        """Number of target clusters."""
        return self.clusters.k

    def p_target(self) -> np.ndarray:
        """E_t's share of each cluster (the target usage distribution)."""
        return shares(self.dev_labels, self.k)

    def p_train(self) -> np.ndarray:
        """The existing training data's share of each cluster."""
        return shares(self.train_labels, self.k)

    def assign_target(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clusters of new target-language vectors (e.g. a production window), centred exactly
        as E_t was. Returns (labels, centred vectors)."""
        vectors = np.array(raw, copy=True)
        if self.target_mean is not None:
            vectors, _ = center_by_language(vectors, [self.target] * len(vectors),
                                            {self.target: self.target_mean}, inplace=True)
        labels, _ = self.clusters.assign(vectors)
        return labels, vectors


def build_target_pool(cfg, target: str, dev: pd.DataFrame, train: pd.DataFrame,
                      aux: pd.DataFrame, vectors_of, test_ids: list[str],
                      language_means: dict[str, np.ndarray] | None = None) -> TargetPool:
    """Build the shared pool. ``vectors_of(ids)`` returns raw L2-normalised rows for pair ids."""
    aux = aux.reset_index(drop=True)
    test_raw = vectors_of(test_ids)
    drop, decontam = contaminated(aux, vectors_of, test_raw, cfg.sampling.decontam_threshold,
                                  cfg.sampling.decontam_mutual_floor)
    aux = aux[~drop].reset_index(drop=True)
    aux_raw = vectors_of(aux["id"].tolist())
    if not aux_raw.flags.owndata:  # centred in place below: never write into the caller's store
        aux_raw = aux_raw.copy()

    dev_raw = vectors_of(dev["id"].tolist())
    train_raw = vectors_of(train["id"].tolist())
    if cfg.encoder.center_per_language:
        means = dict(language_means or {})
        means[target] = np.concatenate([dev_raw, train_raw]).mean(axis=0)
        dev_vec, means = center_by_language(dev_raw, [target] * len(dev_raw), means)
        train_vec, _ = center_by_language(train_raw, [target] * len(train_raw), means)
        # aux_raw is a private gathered copy: centre it in place
        aux_vec, _ = center_by_language(aux_raw, aux["language"].to_numpy(), means, inplace=True)
    else:
        means = {}
        dev_vec, train_vec, aux_vec = dev_raw, train_raw, aux_raw

    clusters = cluster_target(dev_vec, cfg.clustering, cfg.seed)
    train_labels, _ = clusters.assign(train_vec)
    aux_labels, aux_dist = clusters.assign(aux_vec)
    aux = aux.assign(cluster=aux_labels, distance=aux_dist,
                     eligible=clusters.eligible(aux_labels, aux_dist))
    return TargetPool(target, dev.reset_index(drop=True), train.reset_index(drop=True), aux,
                      aux_vec, dev_vec, train_vec, clusters, clusters.labels, train_labels,
                      decontam, means.get(target))
