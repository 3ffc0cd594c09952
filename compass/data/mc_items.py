"""Multiple-choice items as the loaders return them: answer letters, the kept source row, and
the list of items that also says which rows were dropped and why."""
from __future__ import annotations

from collections import Counter

from compass.data.cells import cell_text
from compass.schemas import SchemaError

# the answer letters of an MC item, in option order (MMLU-ProX has up to ten options)
LETTERS = "ABCDEFGHIJ"


def answer_index(letter, n_letters: int, where: str) -> int:
    """The option index an answer letter stands for, among the first ``n_letters`` letters."""
    text = cell_text(letter)
    allowed = LETTERS[:n_letters]
    if len(text) != 1 or text not in allowed:
        raise SchemaError(f"{where}: answer {letter!r} is not one of {', '.join(allowed)}")
    return allowed.index(text)


def hub_row(row: dict) -> dict:
    """The source row as the data set holds it, every column and byte: what lm-eval's own task
    reads (compass.evaluation.paper_tasks), so its prompts equal ``lm_eval --tasks ...`` on the
    same rows, whitespace and all, while the item's fields are the cleaned ones."""
    return {str(k): (v if v is None or isinstance(v, (str, int, float, bool)) else str(v))
            for k, v in row.items()}


class MCItems(list):
    """MC items a loader kept, and the rows it dropped, so a report can say how many and why.

    ``dropped`` holds one dict per dropped row (id, topic, where: file/row/line, reason, the
    empty ``fields``); ``drops`` counts them by reason. It is a list, so callers that only
    iterate keep working.
    """

    def __init__(self, items=(), dropped=()):
        super().__init__(items)
        self.dropped = list(dropped)

    @property
    def drops(self) -> Counter:
        """The dropped rows counted by reason."""
        return Counter(d["reason"] for d in self.dropped)
