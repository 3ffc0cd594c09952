"""Stage `ecda`: drift monitoring and continual updates (COMPASS-ECDA and its baselines) on a
simulated production stream of one target language."""
from __future__ import annotations

import numpy as np
import pandas as pd

from compass import config as config_mod
from compass import data as data_mod
from compass import io, paths, timings
from compass.data.embed import PoolVectors
from compass.stages.data import read_language
from compass.stages.sampling import target_pool


def run_ecda(cfg, show_progress_bar: bool = True) -> dict:
    """The continual (COMPASS-ECDA) stage: the simulated stream of ``ecda.language`` served from its
    trained COMPASS adapter by every ECDA method, with the drift calibration, controls and tables
    written; needs that language among the targets and 'compass' among the methods."""
    from peft import PeftModel

    from compass.continual import runner
    from compass.continual.controls import forgetting_null
    from compass.continual.calibration import calibrate_for
    from compass.continual import update as ecda
    from compass.continual.stream import book_pairs, for_scoring, simulate
    from compass.continual.tables import continual_tables
    from compass.training import chat, models
    from compass.training.adapters import AdapterRegistry, serve_adapter

    lang = cfg.ecda.language
    if lang not in cfg.targets or "compass" not in cfg.train.methods:
        raise config_mod.ConfigError(
            f"ecda.language = {lang!r} needs a trained COMPASS adapter to start from: it must be "
            f"in languages.targets {list(cfg.targets)} and 'compass' in train.methods")
    pairs = data_mod.read_pool()
    vectors = PoolVectors.load()
    pool = target_pool(cfg, lang, pairs, vectors)
    by_id = {p["id"]: p for p in pairs}
    _, items = read_language(lang)
    usage = pool.dev  # windows are usage: drawn from E_t's population (compass.continual.stream)
    other = None
    if cfg.ecda.shift == "language":
        other = shift_language_pairs(cfg, pairs)
    elif cfg.ecda.shift == "book":
        other = book_pairs(shift_language(cfg, pairs))
        vectors = with_vectors(vectors, other, cfg)  # not in the pool: embedded (and cached) here
    stream = for_scoring(simulate(usage, items, cfg.ecda, cfg.seed, other=other), cfg.ecda.scoring)

    def window_assign(window):  # a window is target-language usage: centred as E_t was
        return pool.assign_target(vectors(window["id"].tolist()))

    manifest = io.read_csv(paths.manifest_file(lang, "compass"), required=("id", "cluster"))
    history = [{**by_id[i], "cluster": int(c)} for i, c in zip(manifest["id"], manifest["cluster"])]
    if cfg.train.mix_target_train:
        history += [{**by_id[i], "cluster": int(c)}
                    for i, c in zip(pool.train["id"], pool.train_labels)]
    history = pd.DataFrame(history)[["id", "cluster", "prompt", "response"]]

    base, tokenizer = models.load(cfg.ecda.model, trust_remote_code=cfg.train.trust_remote_code,
                                  dtype=cfg.train.dtype, model_sources=cfg.train.model_sources)
    model = PeftModel.from_pretrained(base,
                                      str(AdapterRegistry(cfg.ecda.model).path(lang, "compass")),
                                      is_trainable=True)
    model.eval()
    turn = chat.turn_for(cfg.train.chat_template, cfg.ecda.model, tokenizer)  # as it was trained
    out = runner.run(model, tokenizer, stream, pool, by_id, history, window_assign, cfg,
                     show_progress_bar=show_progress_bar, turn=turn)
    tables = continual_tables(cfg, stream, out)
    folder = paths.ecda_dir(lang)
    for name in ("drift", "accuracy", "events"):
        io.write_csv(folder / f"{name}.csv", out[name])
    for name, frame in tables.items():  # wall seconds go to the timing log, not tracked files
        io.write_csv(folder / f"{name}.csv", frame.drop(columns=["seconds"], errors="ignore"))
    for _, row in tables["summary"].iterrows():
        timings.record(f"ecda {lang}/{row['method']}", row.get("seconds"),
                       updates=row.get("updates"))
    for name, state in out["states"].items():  # the adapter each method serves at the end
        ecda.restore(model, state.weights)
        serve_adapter(model, folder / "served" / name, cfg.ecda.model)
    mixtures = pd.DataFrame([{"t": s.t, **s.mixture} for s in stream])
    io.write_csv(folder / "mixtures.csv", mixtures)
    mode = "calibrated" if cfg.ecda.delta == "calibrated" else "fixed"
    # both rules, simulated against the starting reference (the T0 window): the table's numbers
    calibration = calibration_frame({("T0", cfg.ecda.window): calibrate_for(
        cfg.ecda, out["reference_labels"], pool.k, cfg.ecda.window, cfg.seed)}, mode)
    io.write_csv(paths.ecda_calibration(lang), calibration)
    used = calibration[calibration["used"]]
    summary = tables["summary"].set_index("method")
    checks = out["drift"].query("method == 'ecda' and t > 0")
    metrics = {"language": lang, "steps": cfg.ecda.steps, "schedule": cfg.ecda.schedule,
               "shift": cfg.ecda.shift, "train_on": cfg.ecda.train_on,
               "delta_mode": mode, "delta_used": float(used["delta"].iloc[0]),
               "delta_by_step": {int(t): float(d) for t, d in zip(checks["t"], checks["delta"])},
               "no_drift_control": no_drift_control(cfg, pool, usage, window_assign),
               "forgetting_null": forgetting_null(steps=cfg.ecda.steps,
                                                  n_items=cfg.ecda.test_items_per_step,
                                                  seed=cfg.seed).to_dict("records"),
               "triggers": int(out["drift"].query("method == 'ecda' and t > 0")["trigger"].sum()),
               "rollbacks": (int((out["events"]["event"] == "rolled_back").sum())
                             if len(out["events"]) else 0),
               "scoring": cfg.ecda.scoring,
               **{key: summary[key].to_dict() for key in ("forgetting_pp", "final_accuracy")
                  if key in summary},  # accuracy: only where the stream scores choices
               "forgetting_nll": summary["forgetting_nll"].to_dict(),
               "final_nll": summary["final_nll"].to_dict(),
               "planted_regression": planted_metrics(out["planted"])}
    io.write_json(paths.ecda_metrics(lang), metrics)
    return {**out, **tables, "mixtures": mixtures, "metrics": metrics, "stream": stream,
            "calibration": calibration}


def with_vectors(vectors: PoolVectors, extra: pd.DataFrame, cfg) -> PoolVectors:
    """The pool's vectors plus those of ``extra`` pairs, embedded as the pool stage embeds (the
    same encoder, prefix and cache), so windows that mix them in are assigned like any other."""
    from compass.data.embed import embed_texts
    from compass.schemas import pair_text

    limit = cfg.encoder.max_chars or None
    added = embed_texts([pair_text(p)[:limit] for p in extra.to_dict("records")], cfg.encoder.name,
                        cfg.encoder.prefix, cfg.encoder.batch_size, show_progress_bar=False)
    return PoolVectors(np.concatenate([vectors.ids, extra["id"].to_numpy()]),
                       np.vstack([vectors.vectors, added]))


def no_drift_control(cfg, pool, usage: pd.DataFrame, window_assign) -> dict:
    """The drift trigger's negative control on the real stream: windows drawn from the T0
    population (E_t's pairs, embedded and assigned as the stream's windows are), a reference and
    a later window each time, judged as the monitor judges (compass.continual.controls)."""
    from compass.continual.controls import drift_null

    labels, _ = window_assign(usage)
    return drift_null(labels, pool.k, cfg.ecda.window, cfg.ecda.false_alarm_rate,
                      draws=NULL_DRAWS, n_permutations=cfg.ecda.n_permutations, seed=cfg.seed)


NULL_DRAWS = 200  # no-drift window pairs of the trigger's negative control


def shift_language(cfg, pairs: list[dict]) -> str:
    """The language a ``language`` or ``book`` shift brings in: the auxiliary language (of
    ``ecda.language``) with the most pairs in the pool, ties broken by code."""
    from compass.data.paper_profile import is_benchmark

    lang = cfg.ecda.language
    counts = data_mod.language_counts([p for p in pairs if not is_benchmark(p["source"])])
    aux = [code for code in cfg.aux_languages(sorted(counts), lang) if counts.get(code)]
    if not aux:
        raise config_mod.ConfigError(f"ecda.shift = {cfg.ecda.shift!r}: no auxiliary language of "
                                     f"{lang!r} has pairs in the pool")
    return min(aux, key=lambda code: (-counts[code], code))


def shift_language_pairs(cfg, pairs: list[dict]) -> pd.DataFrame:
    """The pairs an ``ecda.shift: language`` stream mixes in: those of :func:`shift_language`
    (another target's test items never: benchmark pairs are left out)."""
    from compass.data.paper_profile import is_benchmark

    other = shift_language(cfg, pairs)
    return pd.DataFrame([p for p in pairs
                         if p["language"] == other and not is_benchmark(p["source"])])


def planted_metrics(row: dict | None) -> dict | None:
    """metrics.json's record of the planted regression (ecda.planted_regression_at): the step,
    whether the guard caught it (rolled back, and the served weights bit-identical after), the
    rule that fired and the validation accuracy / NLL before and after. None when none was
    planted."""
    if row is None:
        return None
    return {"t": int(row["t"]), "caught": bool(row["event"] == "planted_rolled_back"
                                               and row["weights_unchanged"]),
            "rolled_back": row["event"] == "planted_rolled_back",
            "weights_unchanged": bool(row["weights_unchanged"]), "rule": row["rule"],
            "old_val": row["old_val"], "new_val": row["new_val"],
            "old_nll": row["old_nll"], "new_nll": row["new_nll"]}


def calibration_frame(calibrations: dict, mode: str) -> pd.DataFrame:
    """calibration.csv: per reference (T0 first) the calibrated and the fixed threshold's
    false-alarm and detection rates on simulated windows; ``used`` marks the rule the monitor
    applied. ``delta_used`` in the metrics is T0's: for the calibrated rule, its median
    permutation threshold (each check's own threshold is in drift.csv)."""
    order = sorted(calibrations, key=lambda key: (key[0] != "T0", key[0], key[1]))
    frames = [calibrations[key].table().assign(reference=key[0]) for key in order]
    frame = pd.concat(frames, ignore_index=True)
    frame["used"] = frame["rule"] == mode
    return frame[["reference", *[c for c in frame.columns if c != "reference"]]]
