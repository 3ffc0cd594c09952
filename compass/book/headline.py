"""The intro's findings (generated/headline.md), computed from the stages' outputs and
closed by the protocol's note (book/templates/headline_note.md)."""
from __future__ import annotations

from compass import io, paths
from compass.book.cells import seed_wins
from compass.book.likelihood import steps_line
from compass.book.long_context import long_context_line
from compass.book.prose import sentence
from compass.book.runs import models_phrase, per_language, runs
from compass.languages import display_name
from compass.protocols import protocol_of


def headline(cfg) -> str:
    """The intro's findings, computed from the stages' outputs: held-out NLL (adapters against
    zero-shot, COMPASS against all-data mixing and random), accuracy, and the continual run."""
    lines = []
    for label, lang, model in runs(cfg):
        out = paths.evaluation_dir(lang, model)
        nll = io.read_csv(out / "nll_summary.csv", numeric=True)
        nll = nll[(nll["metric"] == "nll") & (nll["subset"] == "all")].set_index("method")
        if "zero_shot" not in nll.index or len(nll) < 2:
            continue
        adapters = nll.drop(index="zero_shot")
        best = adapters["mean"].idxmin()
        who = f"- **{display_name(lang)}** (`{label}`)"
        text = (f"{who}: every adapter lowers the held-out NLL "
                if (adapters["change_ci_high"] < 0).all() else
                f"{who}: adapters change the held-out NLL ")
        text += (f"from {nll.loc['zero_shot', 'mean']:.3f} (zero-shot) to "
                 f"{adapters['mean'].min():.3f}–{adapters['mean'].max():.3f} nats per token; "
                 f"lowest: `{best}`.")
        vs = io.read_csv(out / "nll_vs_baselines.csv", numeric=True)
        if len(vs):
            vs = vs[(vs["metric"] == "nll") & (vs["subset"] == "all")].set_index("baseline")
        parts = []
        for baseline in ("all", "random"):
            if len(vs) and baseline in vs.index:
                r = vs.loc[baseline]
                wins = seed_wins(r).strip(" ()")
                parts.append(f"`{baseline}` {r['change']:+.3f} [{r['change_ci_low']:+.3f}, "
                             f"{r['change_ci_high']:+.3f}], Holm p = {r['p_holm']:.3g}"
                             + (f", lower in {wins} seeds" if wins else ""))
        if parts:
            text += (" COMPASS against " + "; against ".join(parts)
                     + " (change in NLL; negative: COMPASS better).")
        lines.append(text)
    items = {io.read_json(paths.evaluation_metrics(lang, model))["items"]
             for _, lang, model in runs(cfg)}
    acc = per_language(cfg, "compass_vs_baselines.csv")
    acc = acc[acc["metric"] == "acc"] if len(acc) else acc
    acc_sig, acc_n = (int(acc["significant"].sum()) if len(acc) else 0), len(acc)
    lines.append(f"- Multiple-choice accuracy separates COMPASS from a baseline in {acc_sig} of "
                 f"{acc_n} comparisons (Holm p < 0.05): with "
                 f"{'/'.join(map(str, sorted(items)))} items per language near chance level it "
                 "cannot see differences of this size.")
    lines += steps_line(cfg)
    lines += long_context_line(cfg)
    metrics_file = paths.ecda_metrics(cfg.ecda.language)
    if metrics_file.exists():
        m = io.read_json(metrics_file)
        if "forgetting_pp" in m:
            forget = "(pp): " + ", ".join(f"`{k}` {v:+.1f}" for k, v in m["forgetting_pp"].items())
        else:  # ecda.scoring: answer: NLL only
            forget = "(NLL, nats/token; positive: forgot): " + ", ".join(
                f"`{k}` {v:+.3f}" for k, v in m["forgetting_nll"].items())
        lines.append(f"- Continual stream of `{m['language']}`: ECDA's drift monitor triggered "
                     f"{m['triggers']} update(s) in {m['steps'] - 1} windows, {m['rollbacks']} "
                     f"update(s) were rolled back; forgetting {forget}.")
    lines.append("\n" + sentence("headline_note.md", profile=cfg.profile,
                                   describes_paper=protocol_of(cfg).describes_paper,
                                   models=models_phrase(cfg)))
    return "\n".join(lines) + "\n"
