"""File name comparison and numbered name variants for moves and exports."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterator
from pathlib import PurePath

logger = logging.getLogger(__name__)

# A name with this many taken variants means something is wrong with the destination.
MAX_SUFFIX = 9999


def fold_name(name: str) -> str:
    """Return the form of `name` under which two names count as the same file.

    NFC first, so that composed and decomposed spellings of a name count as one
    name, as they do on macOS file systems. Then casefold(), so that names that
    differ only in case collide as they do on FAT, exFAT, NTFS and default APFS.
    """
    return unicodedata.normalize("NFC", name).casefold()


def numbered_names(name: str) -> Iterator[str]:
    """Yield `name`, then `stem (1).ext`, `stem (2).ext`, ... up to MAX_SUFFIX."""
    yield name
    path = PurePath(name)
    for number in range(1, MAX_SUFFIX + 1):
        yield f"{path.stem} ({number}){path.suffix}"
