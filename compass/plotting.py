"""Figures shared by the notebooks. Each returns a matplotlib Figure; ``save`` writes it
atomically with a caption naming the notebook that made it."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from compass.selection.allocation import shares
from compass.io import atomic_path

sns.set_theme(style="whitegrid", context="notebook")


def save(fig, path, made_by: str) -> None:
    """Write ``fig`` as PNG; the footer says which notebook made it (figures are outputs)."""
    fig.text(0.99, 0.005, f"made by notebooks/{made_by}", ha="right", va="bottom",
             fontsize=7, color="grey")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def split_sizes(topic_table: pd.DataFrame, lang: str):
    """Pairs per topic and split: where the existing train data is missing, the gap shows."""
    long = topic_table.melt(id_vars="topic", var_name="split", value_name="pairs")
    fig, ax = plt.subplots(figsize=(8, max(3, 0.28 * topic_table["topic"].nunique())))
    sns.barplot(long, y="topic", x="pairs", hue="split", ax=ax,
                hue_order=[s for s in ("dev", "train", "test") if s in set(long["split"])])
    ax.set_title(f"{lang}: pairs per topic and split")
    return fig


def cluster_occupancy(pool, selections: dict):
    """Share of each target cluster in the target sample, existing train and each selection."""
    rows = {"target (E_t)": pool.p_target(), "existing train": pool.p_train()}
    for method, sel in selections.items():
        rows[method] = shares(sel.manifest["cluster"].to_numpy(dtype=np.int64), pool.k)
    table = pd.DataFrame(rows, index=[f"c{c}" for c in range(pool.k)]).T
    fig, ax = plt.subplots(figsize=(1.0 + 0.5 * pool.k, 0.6 * len(rows) + 1.2))
    sns.heatmap(table, annot=True, fmt=".2f", cmap="mako_r", cbar_kws={"label": "share"}, ax=ax,
                annot_kws={"fontsize": 7})
    ax.set_xlabel("target cluster")
    ax.set_title(f"{pool.target}: cluster occupancy of target, existing train and selections")
    return fig, table


def cluster_map(pool, selections: dict, seed: int, methods=("compass", "random")):
    """2-D t-SNE map of the target sample's clusters with where selected items land."""
    from sklearn.manifold import TSNE

    blocks = [("target (E_t)", pool.dev_vectors, pool.dev_labels)]
    blocks.append(("existing train", pool.train_vectors, pool.train_labels))
    index = {pid: i for i, pid in enumerate(pool.aux["id"])}
    for method in methods:
        if method in selections:
            rows = [index[i] for i in selections[method].manifest["id"]]
            blocks.append((method, pool.aux_vectors[rows], pool.aux["cluster"].to_numpy()[rows]))
    vectors = np.concatenate([b[1] for b in blocks])
    perplexity = float(min(30, max(5, (len(vectors) - 1) // 3)))
    xy = TSNE(n_components=2, random_state=seed, init="pca",
              perplexity=perplexity).fit_transform(vectors)
    frame = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1],
                          "source": np.concatenate([[b[0]] * len(b[1]) for b in blocks]),
                          "cluster": np.concatenate([b[2] for b in blocks]).astype(str)})
    fig, ax = plt.subplots(figsize=(8, 6.5))
    markers = {"target (E_t)": "o", "existing train": "s", "compass": "X", "random": "."}
    sns.scatterplot(frame, x="x", y="y", hue="cluster", style="source", markers=markers,
                    palette="tab20", s=28, alpha=0.8, ax=ax, legend="brief")
    ax.set(xticks=[], yticks=[], xlabel="", ylabel="")
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=7, ncol=2)
    ax.set_title(f"{pool.target}: t-SNE of target clusters and selected auxiliary items")
    return fig


def selection_languages(selections: dict, lang: str):
    """Which auxiliary languages each method drew from."""
    frame = pd.concat([s.manifest.assign(method=m) for m, s in selections.items() if m != "all"])
    table = frame.groupby(["language", "method"]).size().unstack(fill_value=0)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * table.shape[1], 0.3 * len(table) + 1.5))
    sns.heatmap(table, annot=True, fmt="d", cmap="rocket_r", ax=ax, annot_kws={"fontsize": 7})
    ax.set_title(f"{lang}: auxiliary items selected per language")
    return fig, table


def training_curve(log: pd.DataFrame, title: str):
    """Completion loss per optimizer step."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    sns.lineplot(log, x="step", y="loss", marker="o", ax=ax)
    ax.set(title=f"training loss: {title}", ylabel="completion cross-entropy")
    return fig


def accuracy_intervals(summary: pd.DataFrame, lang: str):
    """Accuracy per method with its bootstrap CI; the zero-shot level as a reference line."""
    frame = summary.reset_index().rename(columns={"index": "method"})
    frame = frame.sort_values("accuracy")
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(frame) + 1.2))
    y = np.arange(len(frame))
    ax.errorbar(frame["accuracy"], y, xerr=[frame["accuracy"] - frame["ci_low"],
                                            frame["ci_high"] - frame["accuracy"]],
                fmt="o", capsize=3)
    ax.set_yticks(y, frame["method"])
    if "zero_shot" in set(frame["method"]):
        ax.axvline(float(frame.loc[frame["method"] == "zero_shot", "accuracy"].iloc[0]),
                   color="grey", ls="--", lw=1, label="zero-shot")
        ax.legend(loc="lower right")
    ax.set(xlabel="accuracy (95% bootstrap CI)", title=f"{lang}: multiple-choice accuracy")
    return fig


def nll_intervals(nll_summary: pd.DataFrame, lang: str, metric: str = "nll",
                  subsets=("gap", "covered")):
    """Held-out NLL (or bpc) per method with its bootstrap CI, one marker per subset of test items
    (COMPASS's gap and covered clusters), zero-shot's level per subset as a dashed line."""
    frame = nll_summary[(nll_summary["metric"] == metric) & nll_summary["subset"].isin(subsets)]
    order = (frame.groupby("method")["mean"].mean().sort_values(ascending=False).index.tolist()
             if len(frame) else [])
    fig, ax = plt.subplots(figsize=(6.5, 0.5 * max(len(order), 1) + 1.4))
    y = {m: i for i, m in enumerate(order)}
    present = [s for s in subsets if (frame["subset"] == s).any()]
    colours = sns.color_palette(n_colors=max(len(present), 1))
    for k, (subset, colour) in enumerate(zip(present, colours)):
        rows = frame[frame["subset"] == subset]
        offset = 0.2 * (k - (len(present) - 1) / 2)
        n = int(rows["n"].iloc[0])
        ax.errorbar(rows["mean"], [y[m] + offset for m in rows["method"]],
                    xerr=[rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]],
                    fmt="o", capsize=3, color=colour, label=f"{subset} ({n} items)")
        zero = rows.loc[rows["method"] == "zero_shot", "mean"]
        if len(zero):
            ax.axvline(float(zero.iloc[0]), color=colour, ls="--", lw=1)
    ax.set_yticks(range(len(order)), order)
    unit = "nats per token" if metric == "nll" else "bits per character"
    ax.set(xlabel=f"held-out {metric} ({unit}; lower is better; 95% bootstrap CI)",
           title=f"{lang}: likelihood of the held-out responses")
    if present:
        ax.legend(loc="best", fontsize=8, title="test items in", title_fontsize=8)
    return fig


def nll_by_step(by_step: pd.DataFrame, lang: str, subset: str = "all", method: str = "compass"):
    """Left: change in held-out NLL against zero-shot of the first seed's adapters after each
    number of training steps (0 at step 0), with 95% paired item-bootstrap bands. Right:
    ``method`` minus each other method at the same step (below zero: ``method`` ahead), with
    paired bands: whether the gaps grow."""
    frame = by_step[by_step["subset"] == subset]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    zero = frame[frame["method"] == "zero_shot"]
    methods = [m for m in dict.fromkeys(frame["method"]) if m != "zero_shot"]
    colours = dict(zip(methods, sns.color_palette(n_colors=max(len(methods), 1))))
    for name in methods:
        rows = pd.concat([zero, frame[frame["method"] == name]]).sort_values("step")
        left.plot(rows["step"], rows["change"], marker="o", color=colours[name], label=name)
        left.fill_between(rows["step"], rows["change_ci_low"], rows["change_ci_high"],
                          color=colours[name], alpha=0.12)
        if name == method:
            continue
        gap = frame[(frame["method"] == name)].sort_values("step")
        right.plot(gap["step"], gap["compass_minus"], marker="o", color=colours[name],
                   label=f"vs {name}")
        right.fill_between(gap["step"], gap["compass_minus_ci_low"], gap["compass_minus_ci_high"],
                           color=colours[name], alpha=0.12)
    right.axhline(0, color="grey", lw=1)
    n = int(frame["n"].iloc[0]) if len(frame) else 0
    left.axhline(0, color="grey", lw=1)
    left.set(xlabel="training steps", ylabel="NLL change vs zero-shot (nats/token)",
             title=f"{lang}: NLL change against steps ({n} pairs, first seed)")
    right.set(xlabel="training steps", ylabel=f"{method} minus baseline (nats/token)",
              title=f"{lang}: {method}'s lead (below 0: {method} ahead)")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig


def results_overview(frame: pd.DataFrame):
    """Gain over zero-shot (pp) per language and method, with CIs."""
    g = sns.FacetGrid(frame, col="language", sharex=True, height=3.2, aspect=1.0)

    def draw(data, **_):
        ax = plt.gca()
        data = data.sort_values("gain_pp")
        y = np.arange(len(data))
        ax.errorbar(data["gain_pp"], y, xerr=[data["gain_pp"] - data["gain_ci_low_pp"],
                                              data["gain_ci_high_pp"] - data["gain_pp"]],
                    fmt="o", capsize=3)
        ax.set_yticks(y, data["method"])
        ax.axvline(0, color="grey", lw=1, ls="--")

    g.map_dataframe(draw)
    g.set_axis_labels("gain over zero-shot (pp, 95% CI)", "")
    return g.figure


def nll_gap_overview(frame: pd.DataFrame):
    """Change in held-out NLL against zero-shot (nats per token, 95% paired bootstrap CI) per
    language and method, on the test items in COMPASS's gap clusters and in the covered ones."""
    g = sns.FacetGrid(frame, col="language", sharex=True, height=3.2, aspect=1.0)

    def draw(data, **_):
        ax = plt.gca()
        order = data.groupby("method")["change"].mean().sort_values().index.tolist()
        y = {m: i for i, m in enumerate(order)}
        for k, (subset, colour) in enumerate(zip(("gap", "covered"),
                                                 sns.color_palette(n_colors=2))):
            rows = data[data["subset"] == subset]
            if rows.empty:
                continue
            offset = 0.15 if k else -0.15
            ax.errorbar(rows["change"], [y[m] + offset for m in rows["method"]],
                        xerr=[rows["change"] - rows["change_ci_low"],
                              rows["change_ci_high"] - rows["change"]],
                        fmt="o", capsize=3, color=colour, label=subset)
        ax.set_yticks(range(len(order)), order)
        ax.axvline(0, color="grey", lw=1, ls="--")

    g.map_dataframe(draw)
    g.add_legend(title="test items in")
    g.set_axis_labels("NLL change vs zero-shot (nats/token, 95% CI)", "")
    return g.figure


def training_curves(logs: dict[str, pd.DataFrame], lang: str):
    """Completion loss per step of every method's adapters of one language, on one axis: the
    mean over training seeds (a ``seed`` column) with the range of the seeds as a band."""
    frame = pd.concat([log.assign(method=m) for m, log in logs.items()], ignore_index=True)
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    sns.lineplot(frame, x="step", y="loss", hue="method", marker="o", errorbar=("pi", 100), ax=ax)
    seeds = frame["seed"].nunique() if "seed" in frame else 1
    ax.set(title=f"{lang}: training loss per method"
           + (f" (mean of {seeds} seeds, band: their range)" if seeds > 1 else ""),
           ylabel="completion cross-entropy")
    ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left", title="method")
    return fig


def drift_over_time(drift: pd.DataFrame, delta: float, lang: str):
    """JS divergence of each window from the reference of each method's served adapter, ECDA's
    threshold at each check (the permutation threshold of its reference and window, or the fixed
    ``delta``), and where ECDA triggered."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    sns.lineplot(drift, x="t", y="js", hue="method", marker="o", ax=ax)
    ecda = drift[drift["method"] == "ecda"].sort_values("t")
    if "delta" in ecda and ecda["delta"].nunique() > 1:
        ax.step(ecda["t"], ecda["delta"], where="mid", color="red", ls="--", lw=1,
                label="ECDA's threshold")
    else:
        ax.axhline(delta, color="red", ls="--", lw=1, label=f"delta = {delta}")
    fired = ecda[ecda["trigger"] & (ecda["t"] > 0)]
    ax.scatter(fired["t"], fired["js"], marker="*", s=220, color="red", zorder=5,
               label="ECDA update")
    ax.set(xlabel="time step", ylabel="JS divergence (clusters)", title=f"{lang}: drift per window")
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    return fig


def continual_accuracy(accuracy: pd.DataFrame, lang: str):
    """Mean NLL of the correct answers (lower is better). Left: on the current step's items
    (plasticity). Right: on T0's items over time (what is forgotten of the usage the adapter was
    built for). NLL, not accuracy: at near-chance accuracy only the likelihood moves."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    current = accuracy[accuracy["t"] == accuracy["eval_step"]]
    sns.lineplot(current, x="t", y="nll", hue="method", marker="o", ax=axes[0], legend=False)
    axes[0].set(title="on the current step's items", xlabel="time step", ylabel="NLL (nats/token)")
    first = accuracy[accuracy["eval_step"] == 0]
    sns.lineplot(first, x="t", y="nll", hue="method", marker="o", ax=axes[1])
    axes[1].set(title="on T0's items", xlabel="time step", ylabel="NLL (nats/token)")
    axes[1].legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.suptitle(f"{lang}: continual held-out NLL")
    return fig
