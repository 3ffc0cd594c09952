"""The offline `tiny` profile: prompt/response pairs from PyPI `chatterbot-corpus`.

Each YAML file is one topic of one language; each conversation gives one pair (its first turn and
the reply to it), so the counts match the corpus's conversations (en 2025, fa 773, ...).
"""
from __future__ import annotations

from pathlib import Path

import yaml

from compass.schemas import SchemaError

SOURCE = "chatterbot-corpus"

# corpus folder -> language tag (ISO 639-1 where one exists; scripts/variants as BCP-47 subtags)
FOLDER_LANGUAGE = {
    "bengali": "bn", "chinese": "zh", "dutch": "nl", "english": "en", "french": "fr",
    "german": "de", "hebrew": "he", "hindi": "hi", "hinglish": "hi-Latn", "indonesian": "id",
    "italian": "it", "japanese": "ja", "korean": "ko", "marathi": "mr", "oriya": "or",
    "persian": "fa", "portuguese": "pt", "russian": "ru", "spanish": "es", "swedish": "sv",
    "tamil": "ta", "telugu": "te", "thai": "th", "traditionalchinese": "zh-Hant", "turkish": "tr",
    "ukrainian": "uk", "urdu": "ur", "yoruba": "yo",
}


def corpus_dir() -> Path:
    """The YAML folder of the installed chatterbot-corpus package; ImportError says how to install
    it."""
    try:
        import chatterbot_corpus
    except ImportError:
        raise ImportError(
            "the tiny profile needs the PyPI package 'chatterbot-corpus' (pip install "
            "chatterbot-corpus==1.3.3, or run the README's install command)"
        ) from None
    return Path(chatterbot_corpus.__file__).parent / "data"


def _turn(value) -> str:
    return " ".join(str(value).split())


def load_pairs(root: Path | None = None) -> list[dict]:
    """All pairs of the corpus in the PAIR schema, in a stable order (language, topic, position)."""
    root = Path(root) if root else corpus_dir()
    pairs: list[dict] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        lang = FOLDER_LANGUAGE.get(folder.name)
        if lang is None:
            continue  # a folder this mapping does not know: skip rather than guess its language
        for path in sorted(folder.glob("*.yml")):
            try:
                doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as err:
                raise SchemaError(f"{path} is not valid YAML: {err}") from None
            seen = set()
            for conv in doc.get("conversations") or []:
                if not isinstance(conv, list) or len(conv) < 2:
                    continue
                prompt, response = _turn(conv[0]), _turn(conv[1])
                if not prompt or not response or (prompt, response) in seen:
                    continue
                seen.add((prompt, response))
                pairs.append({
                    "id": f"{lang}/{path.stem}/{len(seen) - 1:04d}",
                    "language": lang,
                    "topic": path.stem,
                    "prompt": prompt,
                    "response": response,
                    "source": SOURCE,
                })
    return pairs
