"""The Aya Dataset: prompt/response pairs in many languages, the paper profile's auxiliary pool.

Two layouts are read: ``CohereLabs/aya_dataset`` names the language in ``language`` and codes it
in ``language_code``; the ``aya_collection`` layout (its ``aya_dataset`` subset: id, inputs,
targets, dataset_name, ..., language, script) has only ``language``, holding the ISO 639-3 code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from compass.data.cells import cell_text, check_choice
from compass.data.locate import is_local, resolve_language_folder
from compass.data.readers import load_hub
from compass.data.source_rows import local_rows
from compass.languages import UnknownLanguageError, normalize, require_available
from compass.schemas import SchemaError

AYA_HUB = "CohereLabs/aya_dataset"
AYA_SPLITS = ("train", "test")
AYA_COLUMNS = ("inputs", "targets")  # needed, plus a language code: see _aya_code
# the column only the aya_collection layout has: there `language` holds the code
AYA_COLLECTION_MARK = "dataset_name"


def load_aya(source: str | Path = AYA_HUB, split: str = "train",
             languages: Iterable[str] | None = None, *, cache_dir=None,
             revision=None) -> list[dict]:
    """Aya Dataset prompt/response pairs (the auxiliary pool of the paper profile) as PAIR records.

    Aya labels rows with 3-letter codes ('eng', 'ukr', 'pes'); they are normalised to the project's
    ISO 639-1 tags so the pool joins with the target languages. Ids are '<lang>/aya/<row index>'
    with the index in the unfiltered split, so they do not move when ``languages`` changes. Rows
    whose prompt or response is empty are skipped (they carry no pair). ``languages`` keeps only
    those languages; a code that is not in the data raises, listing the available ones.
    """
    check_choice(split, AYA_SPLITS, "Aya split")
    if is_local(source):
        path = Path(source)
        kind, found = (("files", [path]) if path.is_file()
                       else resolve_language_folder(path, split, "Aya"))
        rows = local_rows(kind, found, split, AYA_COLUMNS, "Aya", cache_dir,
                          check_split_name=False)
    else:
        hub_rows = load_hub(source, None, split, AYA_COLUMNS, "Aya", cache_dir, revision)
        rows = [(f"{source}[{split}]", i, None, r) for i, r in enumerate(hub_rows)]
    codes: dict[str, str] = {}
    pairs = []
    for n, (where, i, location, row) in enumerate(rows):
        code = _aya_code(row, where, i, location)
        if code not in codes:
            try:
                codes[code] = normalize(code)
            except UnknownLanguageError as err:
                line = f", {location}" if location else ""
                raise SchemaError(
                    f"{where} row {i}: bad language_code {code!r} ({err}{line})"
                ) from None
        lang = codes[code]
        prompt, response = cell_text(row["inputs"]), cell_text(row["targets"])
        if not prompt or not response:
            continue
        pairs.append({
            "id": f"{lang}/aya/{n}",
            "language": lang,
            "topic": cell_text(row.get("annotation_type")) or "aya",
            "prompt": prompt,
            "response": response,
            "source": "aya_dataset",
        })
    if languages is not None:
        if isinstance(languages, str):
            languages = [languages]
        available = sorted({p["language"] for p in pairs})
        wanted = {require_available(code, available, "Aya language") for code in languages}
        pairs = [p for p in pairs if p["language"] in wanted]
    return pairs


def _aya_code(row: dict, where: str, i: int, location) -> str:
    """A row's language code, from whichever of the two layouts the row has."""
    if "language_code" in row:
        return cell_text(row["language_code"])
    if AYA_COLLECTION_MARK in row and "language" in row:
        return cell_text(row["language"])
    line = f", {location}" if location else ""
    raise SchemaError(f"{where} row {i}: not an Aya row: no 'language_code' (aya_dataset layout) "
                      f"and no 'language' + '{AYA_COLLECTION_MARK}' (aya_collection layout); has "
                      f"{sorted(row)}{line}")
