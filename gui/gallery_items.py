"""Gallery items, the tiles they show, the gallery's counts and the texts shown for a file."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from engine.decisions import Decision
from engine.images import Status
from engine.scoring import ScoredFile
from gui.score_format import format_score

# Thumbnail cache keys stay unique across rescans of the same folder, so a pixmap
# cached for an earlier version of a file is never shown for a newer one.
_thumbnail_serials = itertools.count()


@dataclass(frozen=True)
class GalleryItem:
    """One gallery tile: a scored file and its JPEG-encoded thumbnail.

    A `deferred` item has no thumbnail yet, although its file is readable, such as
    a score read from the score cache: the gallery model reads the thumbnail with
    its ThumbnailReader when the tile is first shown. `thumbnail_problem` is the
    reason why a readable file got no thumbnail, when it is known, such as "the
    file was removed or renamed".
    """

    record: ScoredFile
    thumbnail: bytes | None
    thumbnail_key: str
    deferred: bool = False
    thumbnail_problem: str = ""

    @classmethod
    def create(cls, record: ScoredFile, thumbnail: bytes | None, deferred: bool = False,
               thumbnail_problem: str = "") -> GalleryItem:
        """Make an item with a fresh thumbnail cache key."""
        return cls(record, thumbnail, f"{next(_thumbnail_serials)}:{record.relative_path}",
                   deferred, thumbnail_problem)


# Returns the thumbnail of a deferred item's record, or None while it is not
# available yet; GalleryModel.set_thumbnails then delivers it.
ThumbnailReader = Callable[[ScoredFile], bytes | None]


class Tile(NamedTuple):
    """A gallery item with the model's flag, the curator's override and the final decision."""

    item: GalleryItem
    flagged: bool | None
    override: Decision | None
    decision: Decision


class GalleryCounts(NamedTuple):
    """Numbers of files in the gallery.

    `flagged` counts scored files above the threshold, whatever the curator
    decided. `not_scored` counts the files that could not be scored, whatever
    their status: empty, damaged, too large, unreadable… `kept` + `rejected` =
    `total` count final decisions, where a file that was not scored is rejected
    unless the curator keeps it. `overridden` counts files with a curator's decision.
    """

    total: int = 0
    flagged: int = 0
    kept: int = 0
    rejected: int = 0
    not_scored: int = 0
    overridden: int = 0


class RejectionReasons(NamedTuple):
    """Files to reject: flagged by the model, not scored, and rejected by the curator."""

    flagged: int
    not_scored: int
    curator: int


def count_files(flagged: list[bool | None], decisions: list[Decision],
                overrides: list[Decision | None]) -> GalleryCounts:
    """Count the files by flag and by final decision, from the gallery's per-row lists."""
    # list.count() runs in C, so recounting after each batch stays cheap.
    total = len(decisions)
    rejected = decisions.count(Decision.REJECT)
    return GalleryCounts(
        total=total,
        flagged=flagged.count(True),
        kept=total - rejected,
        rejected=rejected,
        not_scored=flagged.count(None),
        overridden=total - overrides.count(None),
    )


def count_rejection_reasons(flagged: list[bool | None], decisions: list[Decision],
                            overrides: list[Decision | None]) -> RejectionReasons:
    """Count the files whose final decision is reject by why they are rejected."""
    curator = flagged_count = not_scored = 0
    for row, decision in enumerate(decisions):
        if decision is not Decision.REJECT:
            continue
        if overrides[row] is not None:
            curator += 1
        elif flagged[row] is None:
            not_scored += 1
        else:
            flagged_count += 1
    return RejectionReasons(flagged_count, not_scored, curator)


def describe_file(record: ScoredFile, decision: Decision, override: Decision | None) -> str:
    """Return the tooltip text of a file's tile: its path, its dimensions, format and score
    or its status, and its decision.
    """
    lines = [record.relative_path]
    if record.score is not None:
        lines.append(f"{record.width} × {record.height} {record.format}")
        lines.append(f"Score {format_score(record.score)}")
    else:
        lines.append(describe_status(record))
    lines.append(describe_decision(decision, override))
    return "\n".join(lines)


def describe_decision(decision: Decision, override: Decision | None) -> str:
    """Return "Keep (your decision)" or "Reject (model's decision)" and the like."""
    source = "the model's decision" if override is None else "your decision"
    return f"{decision.value.capitalize()} ({source})"


def placeholder_text(item: GalleryItem, detailed: bool = False) -> str:
    """Return what is shown in place of the item's thumbnail when it has none.

    With `detailed`, an unreadable file's status comes with its detail, as
    describe_status gives it.
    """
    if item.deferred:
        return "Loading…"
    if item.thumbnail_problem:
        return sentence_case(item.thumbnail_problem)
    if item.record.status is Status.OK:
        return "No thumbnail"
    return sentence_case(describe_status(item.record) if detailed
                         else item.record.status.value)


def describe_status(record: ScoredFile) -> str:
    """Return the status of `record` with its detail, without repeating the status."""
    status = record.status.value
    if not record.detail:
        return status
    if record.detail.startswith(status):
        return record.detail
    return f"{status}: {record.detail}"


def sentence_case(text: str) -> str:
    """Return `text` with its first letter in upper case and the rest unchanged.

    Unlike str.capitalize, units such as "Mpx" keep their capitals.
    """
    return text[:1].upper() + text[1:]
