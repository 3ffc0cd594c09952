"""The continual chapter: the ECDA stream's table (forgetting, plasticity, compute), the
planted regression and rollback-guard sentences, and the drift trigger's calibration."""
from __future__ import annotations

import pandas as pd

from compass import io, paths
from compass.book.cells import interval, markdown_table, signed
from compass.book.trust import stream_forgetting_answer


def continual_table(cfg) -> str:
    """The continual chapter's markdown: a sentence on the stream (triggers, rollbacks, the planted
    regression) and its tables, read from the ECDA stage's ``summary.csv`` and metrics."""
    lang = cfg.ecda.language
    frame = io.read_csv(paths.ecda_dir(lang) / "summary.csv", numeric=True)
    metrics = io.read_json(paths.ecda_metrics(lang))
    planted = planted_sentence(metrics.get("planted_regression"), metrics.get("scoring", "choices"))
    head = (f"Stream of `{lang}` ({metrics['steps']} steps, {metrics['schedule']} shift toward "
            f"{metrics['shift']}, updates trained on {metrics.get('train_on', 'selection')}): ECDA "
            f"triggered {metrics['triggers']} update(s); {metrics['rollbacks']} update(s) were "
            f"rolled back (only ECDA's updates are guarded).{planted}\n\n")
    compute = {"updates": frame["updates"].astype(int),
               "optimizer steps": frame["steps"].astype(int)}
    text = head
    if "forgetting_pp" in frame:  # ecda.scoring: choices
        columns = {
            "method": frame["method"],
            "forgetting (pp)": [signed(r.forgetting_pp, r.forgetting_ci_low, r.forgetting_ci_high,
                                       "+.1f") for r in frame.itertuples()],
            "plasticity": [interval(r.plasticity, r.plasticity_ci_low, r.plasticity_ci_high, 2)
                           for r in frame.itertuples()],
            "final accuracy": [interval(r.final_accuracy, r.final_ci_low, r.final_ci_high, 2)
                               for r in frame.itertuples()]}
        text += markdown_table(pd.DataFrame({**columns, **compute}))
        compute = {}
        text += ("\n**The same stream in held-out likelihood**: NLL forgetting is the final mean "
                 "NLL minus the mean right after each earlier step was learned (positive: the "
                 "adapter forgot).\n\n")
    else:
        text += ("The stream scores each item's correct answer alone (`ecda.scoring: answer`): its "
                 "NLL in nats/token, not accuracy. Forgetting is the final mean NLL minus the mean "
                 "right after each earlier step was learned (positive: the adapter forgot); "
                 "plasticity, the NLL on each step's items right after that step.\n\n")
    if "forgetting_nll" in frame:  # nats/token of the correct answers; positive = forgot
        nll = pd.DataFrame({
            "method": frame["method"],
            "forgetting (NLL, nats/token)": [
                signed(r.forgetting_nll, r.forgetting_nll_ci_low, r.forgetting_nll_ci_high)
                for r in frame.itertuples()],
            **({"forgetting minus naive's": [
                f"{r.forgetting_nll_vs_naive:+.3f} [{r.forgetting_nll_vs_naive_ci_low:+.3f}, "
                f"{r.forgetting_nll_vs_naive_ci_high:+.3f}]" for r in frame.itertuples()]}
               if "forgetting_nll_vs_naive" in frame else {}),
            **({"plasticity (NLL)": [interval(r.plasticity_nll, r.plasticity_nll_ci_low,
                                              r.plasticity_nll_ci_high, 3)
                                     for r in frame.itertuples()]}
               if "plasticity_nll" in frame else {}),
            "final NLL": [interval(r.final_nll, r.final_nll_ci_low, r.final_nll_ci_high, 3)
                          for r in frame.itertuples()]})
        text += markdown_table(nll)
        spent = pd.DataFrame({"method": frame["method"], **compute,
                              "tokens trained": frame["tokens"].astype(int)})
        text += ("\n**Compute each method spent** (real updates, kept or rolled back; the planted "
                 "one is not charged):\n\n" + markdown_table(spent))
    windows_file = paths.ecda_dir(lang) / "forgetting_by_window.csv"
    if windows_file.exists():
        windows = io.read_csv(windows_file, numeric=True)
        if "forgetting_nll" in windows and len(windows):
            wide = windows.assign(cell=[
                signed(r.forgetting_nll, r.forgetting_nll_ci_low, r.forgetting_nll_ci_high)
                for r in windows.itertuples()])
            wide = wide.pivot(index="method", columns="window", values="cell")
            wide = wide.reindex(frame["method"]).rename(columns=lambda j: f"T{j}'s items")
            text += ("\n**Forgetting per earlier window** (NLL, nats/token): the T0 window is the "
                     "usage the adapter was built for; later windows were learned by an adapter "
                     "the shift had already changed.\n\n" + markdown_table(wide.reset_index()))
    if cfg.ecda.shift in ("book", "language"):  # the streams meant to make naive updates forget
        text += ("\n**Did this stream make naive updates forget?** "
                 + stream_forgetting_answer(cfg) + "." + guard_sentence(lang) + "\n")
    return text


def guard_sentence(lang: str) -> str:
    """Where ECDA's low forgetting is its guard's doing (every update it trained was rolled
    back, so it served its starting adapter), say so: it is not EWC or replay at work."""
    file = paths.ecda_dir(lang) / "events.csv"
    if not file.exists():
        return ""
    try:
        events = io.read_csv(file)
    except pd.errors.EmptyDataError:  # no method updated at all
        return ""
    if "method" not in events:
        return ""
    mine = events[(events["method"] == "ecda") & (events["planted"].astype(str) != "True")]
    if not len(mine) or (mine["event"] != "rolled_back").any():
        return ""
    return (f" ECDA's number is its guard's: the monitor triggered {len(mine)} update(s) and the "
            "guard rolled back every one (the validation NLL rose), so ECDA served its starting "
            "adapter throughout, as `no_update` did; what EWC and replay do on their own is in the "
            "`ewc` and `random_rehearsal` rows.")


def planted_sentence(planted: dict | None, scoring: str = "choices") -> str:
    """The planted regression (ecda.planted_regression_at): a check of the rollback guard, not a
    method's result, so it is reported apart from the table. Accuracy only where the stream
    scores choices (``ecda.scoring``)."""
    if not planted:
        return ""
    verdict = ("rolled back, and ECDA's served weights stayed bit-identical" if planted["caught"]
               else "**not caught** by the guard")
    accuracy = (f", accuracy {planted['old_val']:.2f} -> {planted['new_val']:.2f}"
                if scoring == "choices" else "")
    return (f" A planted bad update (corrupted data) tried on ECDA's adapter at "
            f"T{planted['t']} was {verdict} (validation NLL {planted['old_nll']:.3f} -> "
            f"{planted['new_nll']:.3f} "
            f"nats/token{accuracy}); it is not counted in any column below.")


def calibration_table(cfg) -> str:
    """The drift trigger's two rules against the starting reference (the ecda stage's
    calibration.csv): each one's threshold, false-alarm rate on simulated no-drift windows [95%
    Clopper-Pearson CI] and detection rate per planted shift strength; which rule the run used;
    and the negative control on the real stream's T0 population."""
    lang = cfg.ecda.language
    frame = io.read_csv(paths.ecda_calibration(lang), numeric=True)
    metrics = io.read_json(paths.ecda_metrics(lang))
    t0 = frame[frame["reference"] == "T0"]
    first = t0.iloc[0]
    detections = [c for c in t0.columns if c.startswith("detection_")]
    rows = [{"rule": f"{r['rule']}{' (used)' if r['used'] else ''}",
             "delta": (f"{r['delta']:.4f}" + (" (median)" if r["rule"] == "calibrated" else "")),
             "false alarms [95% CI]": (f"{r['false_alarm']:.3f} [{r['false_alarm_ci_low']:.3f}, "
                                       f"{r['false_alarm_ci_high']:.3f}]"),
             **{f"detected, s = {c.split('_', 1)[1]}": f"{r[c]:.2f}" for c in detections}}
            for _, r in t0.iterrows()]
    target = t0.loc[t0["rule"] == "calibrated", "target_false_alarm"].iloc[0]
    control = metrics.get("no_drift_control")
    real = ("" if not control else
            f" On the real stream, {control['draws']} pairs of no-drift windows drawn from the T0 "
            f"population ({control['population']} usage pairs, assigned to clusters as the "
            f"stream's windows are) fired {control['false_alarm_rate']:.3f} of the time "
            f"[{control['ci_low']:.3f}, {control['ci_high']:.3f}] (target {control['target']:g}).")
    head = (f"This run's drift monitor used the {metrics['delta_mode']} rule. Simulation: windows "
            f"of {int(first['window'])} inputs, K = {int(first['k'])} clusters, a reference of "
            f"{int(first['reference_size'])} labels (the T0 window), target false-alarm rate "
            f"{target:g}, {int(first['draws'])} simulated windows per column; the calibrated "
            "rule's `delta` is the median permutation threshold (each check computes its own, in "
            f"the notebook's drift table).{real} *Detected, s*: the share of windows with mass s "
            "moved onto random clusters that trigger.\n\n")
    return head + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n"
