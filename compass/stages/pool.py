"""Stage `pool`: every pair of the protocol, embedded once (cached by text, so reruns are free)."""
from __future__ import annotations

import time

import numpy as np

from compass import data as data_mod
from compass import io, paths
from compass.data.embed import embed_texts
from compass.protocols import protocol_of
from compass.protocols.data import data_of
from compass.schemas import pair_text


def load_profile_pairs(cfg) -> list[dict]:
    """Every pair of the configured protocol (compass.protocols.data)."""
    return data_of(cfg).pool_pairs(cfg)


def build_pool(cfg, show_progress_bar: bool = True, pairs: list[dict] | None = None) -> dict:
    """Write the pool and the embedding of every pair. ``pairs`` replaces the profile's pairs
    (tests use a small subset). The embedding time goes to the timing log, not the summary, so the
    summary's bytes depend on the data alone."""
    protocol = protocol_of(cfg)
    if protocol.hub_benchmarks:
        from compass import hub_assets

        hub_assets.check(cfg)  # every missing hub asset named at once, before any download fails
    pairs = load_profile_pairs(cfg) if pairs is None else pairs
    seen, duplicates = set(), []
    for p in pairs:
        (duplicates.append(p["id"]) if p["id"] in seen else seen.add(p["id"]))
    if duplicates:
        raise ValueError(f"the pool has {len(duplicates)} duplicate pair id(s), e.g. "
                         f"{sorted(set(duplicates))[:5]}: ids must be unique (check the data "
                         "sources)")
    io.write_json(paths.benchmarks_dir() / "index.json",  # the tiny profile has no benchmark files
                  {"profile": protocol.name,
                   "languages": sorted(p.stem for p in paths.benchmarks_dir().glob("*.json")
                                       if p.stem != "index")})
    start = time.perf_counter()
    limit = cfg.encoder.max_chars or None
    vectors = embed_texts([pair_text(p)[:limit] for p in pairs], cfg.encoder.name,
                          cfg.encoder.prefix, cfg.encoder.batch_size,
                          show_progress_bar=show_progress_bar)
    seconds = time.perf_counter() - start
    summary = {"pairs": len(pairs), "languages": data_mod.language_counts(pairs),
               "encoder": cfg.encoder.name, "dim": int(vectors.shape[1])}
    io.write_jsonl(paths.pool_file(), pairs)
    io.write_npz(paths.pool_embeddings(), ids=np.array([p["id"] for p in pairs]), vectors=vectors)
    io.write_json(paths.pool_summary(), summary)
    return {**summary, "embed_seconds": round(seconds, 2)}
