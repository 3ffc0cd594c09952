"""The build page (generated/profile.md): what ran, on which data and models, in which
precision and with which training switches, and how long each stage took."""
from __future__ import annotations

from compass import io, paths
from compass.book.runs import runs
from compass.languages import display_name
from compass.protocols import protocol_of
from compass import model_catalog as catalog


def data_sources_line(cfg) -> str:
    """Paper profile: where its data came from, and plainly when that was the test fixtures."""
    if not protocol_of(cfg).describes_paper:
        return ""
    d = cfg.data
    models = ", ".join(f"`{m}`" for m in cfg.train.models)
    if built_on_fixtures(cfg):
        return ("- **built on fixtures**: the paper profile's stages ran on real rows from "
                "`../shared/fixtures` (a sample of Aya, Global-MMLU dev and Lite test rows), with "
                f"{models} standing in for the paper's models and a few items and steps; the "
                "numbers test the pipeline, not the paper's claims\n")
    lines = [f"- data ({d.test_set} Global-MMLU test): Aya {pinned(d.aux_dataset)}, Global-MMLU "
             f"{pinned(d.target_dataset)}, Global-MMLU-Lite {pinned(d.target_lite_dataset)}, "
             f"MMLU-ProX-Lite {pinned(d.prox_lite_dataset)}\n"]
    lines += [f"- model `{m}`: {pinned(catalog.source(m, cfg.train.model_sources))}\n"
              for m in cfg.train.models]
    return "".join(lines)


def built_on_fixtures(cfg) -> bool:
    """Whether the paper profile's data came from the test fixtures (../shared/fixtures): then
    its numbers test the pipeline, not the paper's claims."""
    d = cfg.data
    return any("fixtures" in str(s) for s in (d.aux_dataset, d.target_dataset,
                                               d.target_lite_dataset, d.prox_lite_dataset))


def pinned(source) -> str:
    """A data set or model as the run read it: hub id and revision, or a local path."""
    from compass import hub_ids

    repo, revision = hub_ids.split(str(source))
    if not hub_ids.HUB_ID.match(repo):
        return f"local `{repo}`"
    return f"`{repo}` at revision `{revision}`" if revision else f"`{repo}` (hub main, not pinned)"


def profile_page(cfg) -> str:
    """Markdown bullets: what this build ran (profile, data, targets, pool, clustering, precision,
    training and stage times), from the pool summary and the params."""
    summary = io.read_json(paths.pool_summary())
    targets = ", ".join(f"{display_name(t)} (`{t}`)" for t in cfg.targets)
    return (
        f"- profile: **{cfg.profile}**; seed {cfg.seed}\n" + data_sources_line(cfg) +
        f"- target languages: {targets}\n"
        f"- pool: {summary['pairs']} pairs in {len(summary['languages'])} languages; encoder "
        f"`{summary['encoder']}` ({summary['dim']}-d)\n"
        f"- clustering: {cfg.clustering.algorithm}, K in [{cfg.clustering.k_min}, "
        f"{cfg.clustering.k_max}]; budget {cfg.sampling.budget} items per method\n"
        + coverage_line(cfg) + precision_line(cfg) + training_line(cfg) + stage_times_line()
    )


def coverage_line(cfg) -> str:
    """Paper profile: the evaluations each target gets, and the benchmarks that do not cover it
    (compass.coverage): a target runs without those, and its tables have no row for them."""
    if not protocol_of(cfg).describes_paper:
        return ""
    from compass import coverage

    names = {"mmlu_prox_lite": "MMLU-ProX-Lite", "oneruler": "OneRuler templates"}
    parts = []
    for row in coverage.table(cfg).to_dict("records"):
        lacking = [name for key, name in names.items() if not row[key]]
        parts.append(f"{display_name(row['language'])} (`{row['language']}`): {row['runs']}"
                     + (f" (no {', no '.join(lacking)})" if lacking else ""))
    return "- evaluations per target: " + "; ".join(parts) + "\n"


def precision_line(cfg) -> str:
    """Which float type the adapters were trained and scored in, and why (train.dtype)."""
    used = set()
    for _, lang, model in runs(cfg):
        for method in cfg.train.methods:
            summary = paths.adapter_dir(lang, model, method) / "summary.json"
            if summary.exists():
                p = io.read_json(summary).get("precision", {})
                used.add(f"{p.get('dtype', '?')} on {p.get('device', '?')}")
    from compass.training import precision

    recorded = precision.recorded()  # the one decision every stage of the run read
    why = (f"; on a CPU `auto` means {recorded.dtype} here, decided once by the `precision` stage: "
           f"{recorded.reason}" if recorded else "")
    return (f"- precision: {', '.join(sorted(used)) or 'unknown'} (`train.dtype = "
            f"{cfg.train.dtype}`{why})\n")


def training_line(cfg) -> str:
    """The training-speed switches the adapters were trained with (from their summaries: what
    ran, not what params say now)."""
    for _, lang, model in runs(cfg):
        for method in cfg.train.methods:
            summary = paths.adapter_dir(lang, model, method) / "summary.json"
            if summary.exists():
                t = io.read_json(summary).get("train_config", {})
                break
        else:
            continue
        break
    else:
        return ""
    on = {True: "on", False: "off", "auto": "auto (the memory plan decides)"}
    return (f"- training switches (README, \"Training speed\"): packing "
            f"{on.get(t.get('packing'), '?')}, "
            f"fused loss {t.get('fused_loss', 'off')}, gradient checkpointing "
            f"{on.get(t.get('gradient_checkpointing', False), '?')}, compile "
            f"{on.get(t.get('compile', False), '?')}, LoRA weights "
            f"{t.get('adapter_dtype', 'float32')}, "
            f"{t.get('processes', 1)} process{'es' if t.get('processes', 1) != 1 else ''}\n"
            + adapters_line(cfg))


def adapters_line(cfg) -> str:
    """Per base model: what its adapters change (modules, kinds, trainable parameters) and, on a
    GPU, how training fit the card (from the first adapter's summary: what ran)."""
    lines = []
    for model in cfg.train.models:
        for lang in cfg.targets:
            summary = paths.adapter_dir(lang, model, cfg.train.methods[0]) / "summary.json"
            if summary.exists():
                s = io.read_json(summary)
                a = s.get("adapted", {})
                plan = f"; memory plan: {s['memory_plan']}" if s.get("memory_plan") else ""
                lines.append(f"- adapters of `{model}`: {a.get('trainable_parameters', 0):,} "
                             f"trainable parameters on {', '.join(a.get('target_modules', []))} "
                             f"({', '.join(a.get('kinds', []))}){plan}\n")
                break
    return "".join(lines)


def stage_times_line() -> str:
    """Wall time per pipeline stage on the machine that built this book (from the timing log,
    which only exists where the stages ran: a book built from pulled results says so)."""
    from compass import timings

    log = timings.read()
    log = log[log["kind"] == "stage"].drop_duplicates("stage", keep="last")
    if log.empty:
        return "- stage times: not recorded here (results were pulled, not computed)\n"
    group = log["stage"].str.extract(r"^\d\d_((?:long_)?[a-z]+)|^([a-z]+)").bfill(axis=1)[0]
    per = log.groupby(group, sort=False)["seconds"].sum()
    return ("- stage times on the machine that built this (s): "
            + ", ".join(f"{name} {seconds:.0f}" for name, seconds in per.items())
            + f"; total {per.sum():.0f}\n")
