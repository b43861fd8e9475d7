"""Row order of the gallery: sort keys, and where a batch of new rows goes in sorted rows."""

from __future__ import annotations

import bisect
import enum
import logging
import math
from collections.abc import Sequence

from engine.scoring import ScoredFile

logger = logging.getLogger(__name__)

SortValue = float | str


class SortKey(enum.StrEnum):
    """Gallery order. The value is the text shown to the user."""

    SCORE = "Score"  # highest score first, unreadable files last
    NAME = "Name"  # relative path, case-insensitive


def sort_value(record: ScoredFile, key: SortKey) -> SortValue:
    """Return the value that puts `record` in its place when values ascend.

    For SCORE it is the negated score, so the highest score comes first, and
    +inf for a file without a score, so unreadable files come last.
    """
    if key is SortKey.SCORE:
        return math.inf if record.score is None else -record.score
    return record.relative_path.casefold()


def insertion_runs(
    values: Sequence[SortValue], new_values: Sequence[SortValue]
) -> list[tuple[int, list[int]]]:
    """Return where new rows go among rows sorted by `values`, as runs of adjacent rows.

    Each run is (first row after the insertion, indexes into `new_values`), in
    ascending row order, so inserting the runs one after another in that order
    gives sorted rows. A new row goes after existing rows of an equal value and
    after new rows of an equal value that come before it in `new_values`.
    """
    order = sorted(range(len(new_values)), key=new_values.__getitem__)
    runs: list[tuple[int, list[int]]] = []
    for inserted_before, index in enumerate(order):
        row = bisect.bisect_right(values, new_values[index]) + inserted_before
        if runs and runs[-1][0] + len(runs[-1][1]) == row:
            runs[-1][1].append(index)
        else:
            runs.append((row, [index]))
    return runs
