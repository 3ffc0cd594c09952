"""The work of each pipeline stage as one call, so notebooks stay narrative + calls.

Each function reads its inputs from ``compass.paths``, writes its outputs atomically there, and
returns what the notebook shows. Nothing here decides *which* stages run: that is dvc.yaml.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from compass import config as config_mod
from compass import data as data_mod
from compass import io, paths
from compass.data.splits import make_test_items, split_language
from compass.embed import center_by_language, embed_texts
from compass.schemas import MC_FIELDS, SPLIT_FIELDS, pair_text


# ---- pool: every pair of the profile, embedded once -------------------------------------------
def build_pool(cfg, show_progress_bar: bool = True, pairs: list[dict] | None = None) -> dict:
    """Write the pool and the embedding of every pair (cached by text, so reruns are free).

    ``pairs`` replaces the profile's pairs (tests use a small subset)."""
    pairs = data_mod.load_profile_pairs(cfg) if pairs is None else pairs
    start = time.perf_counter()
    vectors = embed_texts([pair_text(p) for p in pairs], cfg.encoder.name, cfg.encoder.prefix,
                          cfg.encoder.batch_size, show_progress_bar=show_progress_bar)
    summary = {"pairs": len(pairs), "languages": data_mod.language_counts(pairs),
               "encoder": cfg.encoder.name, "dim": int(vectors.shape[1]),
               "embed_seconds": round(time.perf_counter() - start, 2)}
    io.write_jsonl(paths.pool_file(), pairs)
    io.write_npz(paths.pool_embeddings(), ids=np.array([p["id"] for p in pairs]), vectors=vectors)
    io.write_json(paths.pool_summary(), summary)
    return summary


class PoolVectors:
    """Raw embeddings of pool pairs, looked up by id (vectorised: 1M ids in well under a second)."""

    def __init__(self, ids=None, vectors=None, positions=None):
        if ids is None:
            stored = io.read_npz(paths.pool_embeddings())
            ids, vectors = stored["ids"], stored["vectors"]
        self.ids = np.asarray(ids)
        self.vectors = vectors
        self.index = pd.Index(self.ids)
        self.positions = np.arange(len(self.ids)) if positions is None else np.asarray(positions)

    def rows(self, ids) -> np.ndarray:
        found = self.index.get_indexer(list(ids))
        if (found < 0).any():
            missing = [i for i, r in zip(ids, found) if r < 0]
            raise KeyError(f"{len(missing)} id(s) have no embedding (e.g. {missing[:3]}); rerun the pool stage")
        return self.positions[found]

    def __call__(self, ids) -> np.ndarray:
        return self.vectors[self.rows(ids)]

    def language_means(self, ids, languages, chunk: int = 65536) -> dict[str, np.ndarray]:
        """Mean vector per language, summed chunk by chunk with a one-hot sparse product."""
        from scipy import sparse

        codes, inverse = np.unique(np.asarray(languages), return_inverse=True)
        rows = self.rows(ids)
        sums = np.zeros((len(codes), self.vectors.shape[1]))
        for start in range(0, len(rows), chunk):
            block = self.vectors[rows[start:start + chunk]]
            onehot = sparse.csr_matrix((np.ones(len(block)), (inverse[start:start + chunk],
                                                              np.arange(len(block)))),
                                       shape=(len(codes), len(block)))
            sums += onehot @ block
        counts = np.bincount(inverse, minlength=len(codes))[:, None]
        return {lang: (sums[i] / counts[i]).astype(self.vectors.dtype) for i, lang in enumerate(codes)}


# ---- data: per target language splits and test items ------------------------------------------
def prepare_language(cfg, lang: str) -> dict:
    pairs = data_mod.read_pool()
    config_mod.validate_against_data(cfg, data_mod.language_counts(pairs), target=lang)
    own = [p for p in pairs if p["language"] == lang]
    splits = split_language(own, cfg.data.split, cfg.seed)
    items = make_test_items(own, splits, cfg.data.split, cfg.seed)
    io.write_csv(paths.splits_file(lang), splits)
    io.write_jsonl(paths.test_items_file(lang), items)
    by_split = splits.groupby(["topic", "split"]).size().unstack(fill_value=0)
    metrics = {"language": lang, "pairs": len(own), "topics": int(splits["topic"].nunique()),
               "dev": int((splits["split"] == "dev").sum()),
               "train": int((splits["split"] == "train").sum()),
               "test_pairs": int((splits["split"] == "test").sum()), "test_items": len(items),
               "train_topics": int((by_split.get("train", pd.Series(dtype=int)) > 0).sum())}
    io.write_json(paths.data_metrics(lang), metrics)
    return {"metrics": metrics, "splits": splits, "topic_table": by_split.reset_index(),
            "items": items}


def read_language(lang: str) -> tuple[pd.DataFrame, list[dict]]:
    splits = io.read_csv(paths.splits_file(lang), required=SPLIT_FIELDS)
    items = io.read_jsonl(paths.test_items_file(lang), required=MC_FIELDS)
    return splits, items


# ---- sampling: every method for one target language -------------------------------------------
def target_pool(cfg, lang: str, pairs: list[dict] | None = None,
                vectors: "PoolVectors | None" = None):
    """The TargetPool of one target language, from the pool and data stages' outputs.
    ``pairs`` and ``vectors`` may be passed by a caller that already loaded them."""
    from compass.selection.pool import build_target_pool

    pairs = data_mod.read_pool() if pairs is None else pairs
    splits, items = read_language(lang)
    frame = pd.DataFrame(pairs)
    frame["text"] = [pair_text(p) for p in pairs]
    split_of = dict(zip(splits["id"], splits["split"]))
    own = frame[frame["language"] == lang].copy()
    own["split"] = own["id"].map(split_of)
    aux_langs = cfg.aux_languages(sorted(frame["language"].unique()), lang)
    aux = frame[frame["language"].isin(aux_langs)]
    vectors = PoolVectors() if vectors is None else vectors
    means = vectors.language_means(aux["id"].tolist(), aux["language"].to_numpy())
    return build_target_pool(cfg, lang, own[own["split"] == "dev"], own[own["split"] == "train"],
                             aux, vectors, [it["id"] for it in items], means)


def run_sampling(cfg, lang: str, methods=None, show_progress_bar: bool = True) -> dict:
    from tqdm.auto import tqdm

    from compass.selection import select

    pool = target_pool(cfg, lang)
    selections, timings = {}, {}
    for method in tqdm(methods or cfg.sampling.methods, desc=f"selecting ({lang})",
                       disable=not show_progress_bar):
        start = time.perf_counter()
        sel = select(method, pool, cfg)
        timings[method] = round(time.perf_counter() - start, 3)
        io.write_csv(paths.manifest_file(lang, method), sel.manifest)
        io.write_csv(paths.cluster_report_file(lang, method), sel.report)
        selections[method] = sel
    metrics = sampling_metrics(pool, selections, timings)
    io.write_json(paths.sampling_metrics(lang), metrics)
    return {"pool": pool, "selections": selections, "metrics": metrics}


def sampling_metrics(pool, selections, timings) -> dict:
    from compass.allocation import shares

    p_target = pool.p_target()
    out = {"language": pool.target, "k": pool.k, "dev_items": len(pool.dev),
           "train_items": len(pool.train), "aux_candidates": len(pool.aux),
           "aux_eligible": int(pool.aux["eligible"].sum()),
           "decontaminated": int(pool.decontamination["dropped"].sum()),
           "coverage_gap_of_train": float(0.5 * np.abs(p_target - pool.p_train()).sum()),
           "methods": {}}
    for method, sel in selections.items():
        p_sel = shares(sel.manifest["cluster"].to_numpy(dtype=np.int64), pool.k)
        combined = shares(np.concatenate([pool.train_labels,
                                          sel.manifest["cluster"].to_numpy(dtype=np.int64)]), pool.k)
        out["methods"][method] = {
            "selected": sel.size, "n_languages": int(sel.manifest["language"].nunique()),
            # total variation distance of the selection's cluster mix from the target's
            "tv_to_target": float(0.5 * np.abs(p_sel - p_target).sum()),
            # ... and of existing train + selection together: the mix the adapter will see
            "tv_train_plus_selection_to_target": float(0.5 * np.abs(combined - p_target).sum()),
            "seconds": timings[method],
            **{k: v for k, v in sel.info.items() if k in ("languages", "gap", "duplicates_skipped")},
        }
    return out


# ---- model: the offline base model, converted once ---------------------------------------------
def convert_model(cfg) -> dict:
    from compass import models

    if cfg.train.model != models.OFFLINE_MODEL:
        return {"model": cfg.train.model, "note": "hub model: nothing to convert"}
    report = models.convert_offline_model()
    io.write_json(paths.models_dir() / "conversion_check.json", report)
    return report


# ---- train: one adapter per (language, method) -------------------------------------------------
def training_examples(cfg, lang: str, method: str) -> list[dict]:
    """The selected auxiliary pairs of ``method``, plus the existing target train split."""
    pairs = {p["id"]: p for p in data_mod.read_pool()}
    manifest = io.read_csv(paths.manifest_file(lang, method), required=("id",))
    chosen = [pairs[i] for i in manifest["id"]]
    if cfg.train.mix_target_train:
        splits, _ = read_language(lang)
        chosen += [pairs[i] for i in splits.loc[splits["split"] == "train", "id"]]
    return [{"prompt": p["prompt"], "response": p["response"], "id": p["id"]} for p in chosen]


def train_one(cfg, lang: str, method: str, show_progress_bar: bool = True) -> dict:
    from compass import models
    from compass.adapters import train_adapter

    examples = training_examples(cfg, lang, method)
    model, tokenizer = models.load(cfg.train.model, trust_remote_code=cfg.train.trust_remote_code,
                                   dtype=cfg.train.dtype)
    summary = train_adapter(model, tokenizer, examples, cfg.train, paths.adapter_dir(lang, method),
                            seed=cfg.seed, base_name=cfg.train.model,
                            show_progress_bar=show_progress_bar)
    log = io.read_csv(paths.adapter_dir(lang, method) / "train_log.csv")
    return {"summary": summary, "log": log, "examples": len(examples)}


# ---- evaluate: zero-shot and every adapter of one language -------------------------------------
def evaluation_items(cfg, lang: str) -> list[dict]:
    _, items = read_language(lang)
    return items[: cfg.evaluation.max_items]


def evaluate_language(cfg, lang: str, show_progress_bar: bool = True) -> dict:
    from compass import evaluate, lmeval, models, stats
    from compass.adapters import AdapterRegistry

    items = evaluation_items(cfg, lang)
    model, tokenizer = models.load(cfg.train.model, trust_remote_code=cfg.train.trust_remote_code,
                                   dtype=cfg.train.dtype)
    timings, frames = {}, []

    def score(method):
        start = time.perf_counter()
        frame = evaluate.score_items(model_now, tokenizer, items, desc=f"{lang} {method}",
                                     show_progress_bar=show_progress_bar)
        timings[method] = round(time.perf_counter() - start, 2)
        frames.append(frame.assign(method=method))
        return frame

    model_now = model
    score("zero_shot")
    registry = AdapterRegistry()
    methods = list(cfg.train.methods)
    model_now = registry.attach(model, [(lang, m) for m in methods])
    for method in methods:
        registry.activate(model_now, lang, method)
        score(method)
    predictions = pd.concat(frames, ignore_index=True)
    check_method = "compass" if "compass" in methods else methods[0]
    registry.activate(model_now, lang, check_method)
    n_check = min(cfg.evaluation.lm_eval_check_items, len(items))
    check = {}
    if n_check:
        ours = predictions[predictions["method"] == check_method].head(n_check)
        check = lmeval.cross_check(model_now, tokenizer, items[:n_check], ours,
                                   paths.evaluation_dir(lang) / "lm_eval_task",
                                   name=f"compass_mc_{lang.replace('-', '_')}")
        check["method"] = check_method
    e = cfg.evaluation
    summaries, versus_tables = [], []
    for metric in ("acc", "acc_norm"):  # both of lm-eval's multiple-choice metrics, all tested
        correct = {m: g.sort_values("id")[metric].to_numpy() for m, g in predictions.groupby("method")}
        summaries.append(stats.accuracy_summary(
            correct, reference="zero_shot", confidence=e.confidence, n_resamples=e.n_bootstrap,
            n_permutations=e.n_permutations, seed=cfg.seed).reset_index().assign(metric=metric))
        if "compass" in correct:
            versus_tables.append(stats.compare_to_baselines(
                correct, method="compass", baselines=[m for m in correct if m != "compass"],
                confidence=e.confidence, n_resamples=e.n_bootstrap,
                n_permutations=e.n_permutations, seed=cfg.seed).reset_index().assign(metric=metric))
    summary = pd.concat(summaries, ignore_index=True)
    versus = pd.concat(versus_tables, ignore_index=True) if versus_tables else pd.DataFrame()
    out = paths.evaluation_dir(lang)
    io.write_csv(out / "predictions.csv", predictions)
    io.write_csv(out / "summary.csv", summary)
    io.write_csv(out / "compass_vs_baselines.csv", versus)
    by_topic = predictions.groupby(["method", "topic"])["acc"].mean().unstack(0).reset_index()
    io.write_csv(out / "by_topic.csv", by_topic)
    metrics = {"language": lang, "items": len(items), "seconds": timings, "lm_eval_check": check,
               "accuracy": predictions.groupby("method")["acc"].mean().to_dict(),
               "accuracy_norm": predictions.groupby("method")["acc_norm"].mean().to_dict()}
    io.write_json(paths.evaluation_metrics(lang), metrics)
    logs = {m: io.read_csv(paths.adapter_dir(lang, m) / "train_log.csv") for m in methods}
    return {"predictions": predictions, "summary": summary, "versus": versus, "metrics": metrics,
            "by_topic": by_topic, "train_logs": logs}


# ---- ecda: continual updates on a simulated stream ---------------------------------------------
def run_ecda(cfg, show_progress_bar: bool = True) -> dict:
    from peft import PeftModel

    from compass import continual, ecda, models
    from compass.adapters import AdapterRegistry, serve_adapter
    from compass.stream import simulate

    lang = cfg.ecda.language
    if lang not in cfg.targets or "compass" not in cfg.train.methods:
        raise config_mod.ConfigError(
            f"ecda.language = {lang!r} needs a trained COMPASS adapter to start from: it must be "
            f"in languages.targets {list(cfg.targets)} and 'compass' in train.methods")
    pairs = data_mod.read_pool()
    vectors = PoolVectors()
    pool = target_pool(cfg, lang, pairs, vectors)
    by_id = {p["id"]: p for p in pairs}
    splits, items = read_language(lang)
    non_test = set(splits.loc[splits["split"] != "test", "id"])
    own = pd.DataFrame([p for p in pairs if p["id"] in non_test])
    stream = simulate(own, items, cfg.ecda, cfg.seed)

    target_ids = splits.loc[splits["split"].isin(["dev", "train"]), "id"].tolist()
    target_mean = {lang: vectors(target_ids).mean(axis=0)}  # as build_target_pool centres E_t

    def window_assign(window):
        raw = vectors(window["id"].tolist())
        if cfg.encoder.center_per_language:
            raw, _ = center_by_language(raw, [lang] * len(raw), target_mean, inplace=True)
        labels, _ = pool.clusters.assign(raw)
        return labels, raw

    manifest = io.read_csv(paths.manifest_file(lang, "compass"), required=("id", "cluster"))
    history = [{**by_id[i], "cluster": int(c)} for i, c in zip(manifest["id"], manifest["cluster"])]
    if cfg.train.mix_target_train:
        history += [{**by_id[i], "cluster": int(c)}
                    for i, c in zip(pool.train["id"], pool.train_labels)]
    history = pd.DataFrame(history)[["id", "cluster", "prompt", "response"]]

    base, tokenizer = models.load(cfg.train.model, trust_remote_code=cfg.train.trust_remote_code,
                                  dtype=cfg.train.dtype)
    model = PeftModel.from_pretrained(base, str(AdapterRegistry().path(lang, "compass")),
                                      is_trainable=True)
    model.eval()
    out = continual.run(model, tokenizer, stream, pool, by_id, history, pool.dev_vectors,
                        window_assign, cfg, show_progress_bar=show_progress_bar)
    tables = continual_tables(cfg, stream, out)
    folder = paths.ecda_dir(lang)
    for name in ("drift", "accuracy", "events"):
        io.write_csv(folder / f"{name}.csv", out[name])
    for name, frame in tables.items():
        io.write_csv(folder / f"{name}.csv", frame)
    for name, state in out["states"].items():  # the adapter each method serves at the end
        ecda.restore(model, state.weights)
        serve_adapter(model, folder / "served" / name, cfg.train.model)
    mixtures = pd.DataFrame([{"t": s.t, **s.mixture} for s in stream])
    io.write_csv(folder / "mixtures.csv", mixtures)
    summary = tables["summary"].set_index("method")
    metrics = {"language": lang, "steps": cfg.ecda.steps, "schedule": cfg.ecda.schedule,
               "triggers": int(out["drift"].query("method == 'ecda' and t > 0")["trigger"].sum()),
               "rollbacks": int((out["events"]["event"] == "rolled_back").sum()) if len(out["events"]) else 0,
               "forgetting_pp": summary["forgetting_pp"].to_dict(),
               "final_accuracy": summary["final_accuracy"].to_dict()}
    io.write_json(paths.ecda_metrics(lang), metrics)
    return {**out, **tables, "mixtures": mixtures, "metrics": metrics, "stream": stream}


def continual_tables(cfg, stream, out) -> dict:
    """Forgetting (final - best, pp), plasticity and final accuracy per method, with bootstrap
    CIs over test items, and the compute each method spent."""
    from compass import stats

    acc, per_item = out["accuracy"], out["per_item"]
    last = len(stream) - 1
    rows = []
    for method, group in acc.groupby("method", sort=False):
        diffs, plastic, final = [], [], []
        for j in range(len(stream)):
            at_j = group[group["eval_step"] == j].sort_values("t")
            final_version = at_j[at_j["t"] == last]["version"].iloc[0]
            final_items = per_item[(final_version, f"test{j}")]
            final.append(final_items)
            plastic.append(per_item[(at_j[at_j["t"] == j]["version"].iloc[0], f"test{j}")])
            if j < last:
                best = at_j.loc[at_j["accuracy"].idxmax(), "version"]
                diffs.append(final_items - per_item[(best, f"test{j}")])
        d = np.concatenate(diffs) if diffs else np.zeros(1)
        f = np.concatenate(final)
        p = np.concatenate(plastic[1:]) if len(plastic) > 1 else plastic[0]
        kw = dict(n_resamples=cfg.evaluation.n_bootstrap, seed=cfg.seed)
        f_lo, f_hi = stats.bootstrap_ci(d * 100, **kw)
        a_lo, a_hi = stats.bootstrap_ci(f, **kw)
        p_lo, p_hi = stats.bootstrap_ci(p, **kw)
        state = out["states"][method]
        rows.append({"method": method, "forgetting_pp": float(d.mean() * 100),
                     "forgetting_ci_low": f_lo, "forgetting_ci_high": f_hi,
                     "plasticity": float(p.mean()), "plasticity_ci_low": p_lo, "plasticity_ci_high": p_hi,
                     "final_accuracy": float(f.mean()), "final_ci_low": a_lo, "final_ci_high": a_hi,
                     **state.compute})
    return {"summary": pd.DataFrame(rows)}
