"""Thumbnails of scored files, stored in the thumbnail cache and read back or decoded again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from engine.framing import Framing
from engine.images import LoadedImage, Status, load_images
from engine.scoring import ScoredFile
from engine.thumbcache import ThumbnailCache, ThumbnailKey, thumbnail_key

logger = logging.getLogger(__name__)

# Files whose missing thumbnails are decoded again together. A scan stops between
# two groups, and four photos of 16 Mpx decode in under a second.
REDECODE_GROUP = 4


def store_thumbnails(
    records: Iterable[ScoredFile],
    cache: ThumbnailCache,
    pixels: int,
    encode: Callable[[np.ndarray], bytes],
    batch_size: int = 256,
) -> Iterator[tuple[ScoredFile, bytes | None]]:
    """Encode and store each record's thumbnail array, and yield the record without it.

    Each record comes paired with its encoded thumbnail as soon as it is read. A
    record without an array, such as a score read from the score cache, comes with
    None: `cached_thumbnails` reads its thumbnail when it is shown, so a re-opened
    folder reads no thumbnail it does not show. Thumbnails fit in `pixels`, and
    entries are stored `batch_size` at a time. `encode` may raise ValueError or
    RuntimeError: that file gets no thumbnail, with a warning.
    """
    since_ns = time.time_ns()
    entries: list[tuple[ThumbnailKey, bytes]] = []
    try:
        for record in records:
            if record.thumbnail is None:
                yield record, None
                continue
            data = _encoded(record, record.thumbnail, encode)
            key = thumbnail_key(record, pixels, since_ns)
            if key is not None and data is not None:
                entries.append((key, data))
                if len(entries) >= batch_size:
                    cache.put_many(entries)
                    entries.clear()
            yield replace(record, thumbnail=None), data
    finally:
        cache.put_many(entries)


@dataclass(frozen=True)
class CachedThumbnail:
    """The thumbnail of a record, or why it has none.

    `problem` is empty when `data` is set. Otherwise it describes what happened
    to the file since it was scored, such as "the file was removed or renamed",
    or it is empty when the thumbnail could not be encoded.
    """

    record: ScoredFile
    data: bytes | None
    problem: str = ""


# The problem of a file that is no longer the version that was scored.
CHANGED_SINCE_SCORED = "the file changed since it was scored"


def cached_thumbnails(
    records: Sequence[ScoredFile],
    cache: ThumbnailCache,
    pixels: int,
    framing: Framing,
    encode: Callable[[np.ndarray], bytes],
) -> Iterator[CachedThumbnail]:
    """Yield the thumbnail of each record from the cache, or decoded again and stored.

    A file decoded again must still have the size and mtime it was scored with:
    the thumbnail of a changed file would show other content than the score
    describes, so it gets none, with CHANGED_SINCE_SCORED. A record without a
    size and mtime gets none either. `records` are read from their files after
    this call, as the results of a scan are. The files decode REDECODE_GROUP at a
    time, so stopping the iteration stops the decoding soon. `encode` may raise
    as for store_thumbnails.
    """
    since_ns = time.time_ns()
    keys = [thumbnail_key(record, pixels, since_ns) for record in records]
    cached = cache.get_many([key for key in keys if key is not None])
    missing = [index for index, key in enumerate(keys) if key is not None and key not in cached]
    entries: list[tuple[ThumbnailKey, bytes]] = []
    loaded: dict[int, LoadedImage] = {}
    decoded = 0
    try:
        for index, (record, key) in enumerate(zip(records, keys, strict=True)):
            if key is None or key in cached:
                yield CachedThumbnail(record, None if key is None else cached[key])
                continue
            if index not in loaded:
                # A few files at a time, so that results keep coming, and a cancel
                # is noticed, while the files are large.
                group = missing[decoded : decoded + REDECODE_GROUP]
                decoded += len(group)
                images = load_images([records[other].path for other in group], framing, pixels)
                loaded = dict(zip(group, images, strict=True))
            yield _decoded_again(record, key, loaded[index], encode, entries)
    finally:
        cache.put_many(entries)


def _decoded_again(
    record: ScoredFile, key: ThumbnailKey, image: LoadedImage,
    encode: Callable[[np.ndarray], bytes], entries: list[tuple[ThumbnailKey, bytes]],
) -> CachedThumbnail:
    """Return the thumbnail of `image`, the record's file read again, and add it to
    `entries` to be stored.
    """
    if image.status is not Status.OK or image.thumbnail is None:
        return CachedThumbnail(record, None, image.detail or image.status.value)
    if (image.size, image.mtime_ns) != (record.size, record.mtime_ns):
        return CachedThumbnail(record, None, CHANGED_SINCE_SCORED)
    data = _encoded(record, image.thumbnail, encode)
    if data is not None:
        entries.append((key, data))
    return CachedThumbnail(record, data)


def _encoded(
    record: ScoredFile, array: np.ndarray, encode: Callable[[np.ndarray], bytes]
) -> bytes | None:
    try:
        return encode(array)
    except (ValueError, RuntimeError) as error:
        logger.warning("encoding the thumbnail of %s failed: %s", record.path, error)
        return None
