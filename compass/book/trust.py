""""How far to trust each number": each instrument's false-positive rate under no effect
and its power at a planted effect, as this build measured them."""
from __future__ import annotations

import pandas as pd

from compass import io, paths
from compass.book.cells import rate
from compass.book.runs import runs


def stream_forgetting(cfg) -> tuple[str, str]:
    """Whether this build's stream (meant as forgetting's positive control) made naive updates
    forget: a verdict ("yes", "not shown" or "not run") and naive's NLL backward transfer with its
    interval, read from the ECDA summary."""
    file = paths.ecda_dir(cfg.ecda.language) / "summary.csv"
    if not file.exists():
        return "not run", ""
    summary = io.read_csv(file, numeric=True).set_index("method")
    if "naive" not in summary.index or "forgetting_nll" not in summary.columns:
        return "not run", "no naive method"
    r = summary.loc["naive"]
    cell = (f"naive's NLL forgetting on this build's stream {r['forgetting_nll']:+.3f} "
            f"[{r['forgetting_nll_ci_low']:+.3f}, {r['forgetting_nll_ci_high']:+.3f}] nats")
    if r["forgetting_nll_ci_low"] > 0:
        return "yes", cell
    return "not shown", (f"{cell}, an interval that includes 0; this stream planted no forgetting "
                         "the instrument could find, so its power is not measured here")


def reductions(summary: pd.DataFrame) -> str:
    """Which methods forgot less than naive updates on the same items (paired intervals)."""
    if "forgetting_nll_vs_naive" not in summary:
        return ""
    verdicts = []
    for method, r in summary.drop(index=["naive", "no_update"], errors="ignore").iterrows():
        low, high = r["forgetting_nll_vs_naive_ci_low"], r["forgetting_nll_vs_naive_ci_high"]
        word = "less" if high < 0 else "more" if low > 0 else "no difference shown"
        verdicts.append(f"`{method}` {r['forgetting_nll_vs_naive']:+.3f} [{low:+.3f}, {high:+.3f}] "
                        f"({word})")
    if not verdicts:
        return ""
    return "; forgetting minus naive's on the same items: " + ", ".join(verdicts)


def stream_forgetting_answer(cfg) -> str:
    """:func:`stream_forgetting` as a sentence for the trust page, with which methods forgot less
    than naive updates when forgetting was shown."""
    verdict, detail = stream_forgetting(cfg)
    answer = {"yes": "Yes", "not shown": "No"}.get(verdict, verdict.capitalize())
    if verdict == "yes":  # then the question the paper asks: who forgot less
        summary = io.read_csv(paths.ecda_dir(cfg.ecda.language) / "summary.csv", numeric=True)
        detail += reductions(summary.set_index("method"))
    return f"{answer}: {detail}" if detail else answer


def stream_forgetting_text(cfg) -> str:
    """:func:`stream_forgetting` as ``verdict: detail`` (a table cell)."""
    verdict, detail = stream_forgetting(cfg)
    return f"{verdict}: {detail}" if detail else verdict


def trust_rows(cfg) -> list[dict]:
    """Each instrument's false-positive rate under no effect and its power at a planted effect,
    as this build measured them (every number from a stage's metrics)."""
    rows = []
    for label, lang, model in runs(cfg):
        metrics_file = paths.evaluation_metrics(lang, model)
        if not metrics_file.exists():
            continue
        m = io.read_json(metrics_file)
        seeded = m.get("seeded_controls") or {}
        if seeded:
            rows.append({
                "instrument": f"COMPASS vs a baseline, held-out NLL (`{label}`)",
                "no effect: rejects": rate(seeded["false_positive_rate"], seeded["fp_ci_low"],
                                            seeded["fp_ci_high"]),
                "planted effect: detects": "; ".join(
                    f"{seeded[k]:.2f} at {k.split('_', 1)[1]} nats"
                    for k in seeded if k.startswith("power_")),
                "measured how": (f"simulated at this run's shape: {seeded['seeds']} seeds x "
                                 f"{seeded['items']} items, SDs of COMPASS minus "
                                 f"`{seeded['baseline']}` (seed / item / noise) "
                                 f"{seeded['difference_seed_sd']:.3f} / "
                                 f"{seeded['difference_item_sd']:.3f} / "
                                 f"{seeded['difference_noise_sd']:.3f}")})
        gap = m.get("gap_controls") or {}
        if gap:
            rows.append({
                "instrument": f"gap vs covered, COMPASS minus `{gap['baseline']}` (`{label}`)",
                "no effect: rejects": rate(gap["false_positive_rate"], gap["fp_ci_low"],
                                           gap["fp_ci_high"]),
                "planted effect: detects": (rate(gap["power"], gap["power_ci_low"],
                                                 gap["power_ci_high"])
                                            + f" at {gap['planted']:g} nats"),
                "measured how": (f"this run's per-item changes ({gap['gap_items']} gap, "
                                 f"{gap['covered_items']} covered items): gap labels shuffled; "
                                 "a drop planted on the gap items")})
    metrics_file = paths.ecda_metrics(cfg.ecda.language)
    if metrics_file.exists():
        e = io.read_json(metrics_file)
        for null in e.get("forgetting_null", []):
            if null["profile"] == "never":
                continue
            rejects = rate(null["false_positive_rate"], null["false_positive_ci_low"],
                           null["false_positive_ci_high"])
            rows.append({
                "instrument": ("forgetting (backward transfer), a method updating "
                               f"{null['profile']}"),
                "no effect: rejects": (rejects + f"; mean {null['forgetting_pp']:+.1f} pp (final "
                                       f"minus best: {null['old_definition_pp']:+.1f} pp)"),
                "planted effect: detects": stream_forgetting_text(cfg),
                "measured how": (f"{null['simulations']} simulated streams of {null['steps']} "
                                 f"steps, {null['items_per_window']} items per step, 30% of "
                                 "outcomes redrawn per update")})
        control = e.get("no_drift_control")
        calibration = paths.ecda_calibration(cfg.ecda.language)
        if control and calibration.exists():
            frame = io.read_csv(calibration, numeric=True)
            t0 = frame[frame["reference"] == "T0"].set_index("rule")
            for rule in ("calibrated", "fixed"):
                r = t0.loc[rule]
                detections = [c for c in t0.columns if c.startswith("detection_")]
                rows.append({
                    "instrument": f"drift trigger, {rule} rule" + (" (used)" if r["used"] else ""),
                    "no effect: rejects": (rate(control["false_alarm_rate"], control["ci_low"],
                                                 control["ci_high"]) + " (real T0 windows)"
                                           if rule == "calibrated" else
                                           rate(r["false_alarm"], r["false_alarm_ci_low"],
                                                 r["false_alarm_ci_high"]) + " (simulated)"),
                    "planted effect: detects": "; ".join(f"{r[c]:.2f} at s = {c.split('_', 1)[1]}"
                                                         for c in detections),
                    "measured how": f"target {control['target']:g}; planted shifts simulated"})
        planted = e.get("planted_regression")
        if planted:
            rows.append({"instrument": "rollback guard", "no effect: rejects": "",
                         "planted effect: detects": "caught" if planted["caught"] else "NOT caught",
                         "measured how": (f"one corrupted update at T{planted['t']} "
                                          f"({planted['rule'] or 'no rule'})")})
    sampling = paths.sampling_metrics(cfg.targets[0])
    if sampling.exists():
        recall = io.read_json(sampling).get("decontamination_recall") or []
        if recall:
            rows.append({"instrument": "decontamination (near-copies and translations)",
                         "no effect: rejects": "",
                         "planted effect: detects": "; ".join(
                             f"{r['recall']:.2f} of {r['pairs']:,} {r['parallel_set']} translations"
                             for r in recall),
                         "measured how": "OneRuler's parallel templates and nouns, 26 languages, "
                                         "every ordered pair"})
    return rows


def trust_table(cfg) -> str:
    """The section beside the claims table: how far to trust each number."""
    rows = trust_rows(cfg)
    if not rows:
        return "No instrument controls were run in this build.\n"
    return (pd.DataFrame(rows).to_markdown(index=False) + "\n\n*No effect: rejects*: how often "
            "the instrument reports an effect where there is none by construction (its "
            "false-positive rate, nominally 0.05, with a 95% Clopper-Pearson interval). *Planted "
            "effect: detects*: how often it finds an effect of known size planted into the data "
            "(its power).\n")
