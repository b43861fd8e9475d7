"""Tests of the thumbnail cache on real files, a real SQLite file and the real model."""

from __future__ import annotations

import io
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.images import Status
from engine.modelfile import ReferenceModel
from engine.review import ReviewStore
from engine.scorecache import score_with_cache
from engine.scoring import ScoredFile, score_files
from engine.thumbcache import (
    CACHE_FILE_NAME,
    ThumbnailCache,
    ThumbnailKey,
    default_cache_folder,
    open_cache,
    thumbnail_key,
)
from engine.thumbnails import CHANGED_SINCE_SCORED, cached_thumbnails, store_thumbnails

PIXELS = 32
# Files written by a test get an mtime this far back, because both the score
# cache and the thumbnail cache distrust an mtime close to the moment of reading.
AGE_NS = 3600 * 10**9


def encode_png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def write_image(path: Path, colour: tuple[int, int, int], side: int = 48) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((side, side, 3), np.uint8)
    pixels[8:-8, 8:-8] = colour
    Image.fromarray(pixels).save(path)
    past = path.stat().st_mtime_ns - AGE_NS
    os.utime(path, ns=(past, past))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for index in range(5):
        write_image(root / f"image_{index}.png", (40 * index + 30, 90, 120))
    return root


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ThumbnailCache]:
    opened = open_cache(tmp_path / "cache")
    yield opened
    opened.close()


def paired(model: ReferenceModel, folder: Path, cache: ThumbnailCache,
           decode_calls: list[np.ndarray] | None = None) -> dict[str, bytes | None]:
    """Return the thumbnails of a score cache scan by name, as the window gets them.

    Newly scored files come with theirs, stored as they pass, and cached scores get
    theirs read from the cache afterwards, or decoded again.
    """
    def encode(array: np.ndarray) -> bytes:
        if decode_calls is not None:
            decode_calls.append(array)
        return encode_png(array)

    with ReviewStore.open(folder) as store:
        records = score_with_cache(store, model, thumbnail_size=PIXELS,
                                   decode_cached_thumbnails=False)
        stored = {record.relative_path: (record, data) for record, data in
                  store_thumbnails(records, cache, PIXELS, encode)}
    without = [record for record, data in stored.values() if data is None]
    read = {thumbnail.record.relative_path: thumbnail.data for thumbnail in
            cached_thumbnails(without, cache, PIXELS, model.framing, encode)}
    return {name: read.get(name, data) for name, (_, data) in stored.items()}


def test_default_folder_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_folder() == tmp_path / "retina-curator"


def test_cache_round_trip(cache: ThumbnailCache) -> None:
    key = ThumbnailKey("/data/a.png", 100, 5, PIXELS)
    cache.put_many([(key, b"thumbnail bytes")])
    assert cache.get_many([key]) == {key: b"thumbnail bytes"}
    # Another size or mtime of the same file is another version of it.
    assert cache.get_many([ThumbnailKey("/data/a.png", 101, 5, PIXELS)]) == {}
    assert cache.get_many([ThumbnailKey("/data/a.png", 100, 6, PIXELS)]) == {}
    assert cache.get_many([ThumbnailKey("/data/a.png", 100, 5, 64)]) == {}


def test_recent_file_is_not_stored(cache: ThumbnailCache, folder: Path) -> None:
    recent = folder / "recent.png"
    write_image(recent, (10, 200, 10))
    now = os.stat(recent).st_mtime_ns + AGE_NS
    os.utime(recent, ns=(now, now))
    identity = os.stat(recent)
    record = ScoredFile(recent.parent, recent.name, Status.OK, "", 0.5, False, None, PIXELS, PIXELS,
                        "PNG", size=identity.st_size, mtime_ns=identity.st_mtime_ns)

    key = thumbnail_key(record, PIXELS, time.time_ns())

    assert key is not None
    assert not key.settled
    cache.put_many([(key, b"data")])
    assert cache.get_many([key]) == {}


def test_cache_evicts_least_recently_used(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILE_NAME
    cache = ThumbnailCache(path, max_bytes=1000)
    keys = [ThumbnailKey(f"/data/{index}.png", 1, 1, PIXELS) for index in range(4)]
    cache.put_many([(keys[0], b"0" * 300), (keys[1], b"1" * 300)])
    cache.close()
    # Both entries were last used two hours ago; reading one marks it used now.
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE thumbnails SET used_ns = used_ns - ?", (7200 * 10**9,))
    connection.close()
    cache = ThumbnailCache(path, max_bytes=1000)
    assert keys[0] in cache.get_many([keys[0]])

    cache.put_many([(keys[2], b"2" * 300), (keys[3], b"3" * 300)])
    assert cache.total_bytes() <= 1000
    remaining = cache.get_many(keys)
    assert keys[1] not in remaining
    assert keys[0] in remaining
    assert keys[3] in remaining
    cache.close()


def test_second_scan_reads_thumbnails_from_cache(
    default_model: ReferenceModel, folder: Path, cache: ThumbnailCache
) -> None:
    first_calls: list[np.ndarray] = []
    first = paired(default_model, folder, cache, first_calls)
    assert len(first_calls) == 5
    assert all(first.values())

    second_calls: list[np.ndarray] = []
    second = paired(default_model, folder, cache, second_calls)
    assert second_calls == []
    assert second == first


def test_changed_file_gets_new_thumbnail(
    default_model: ReferenceModel, folder: Path, cache: ThumbnailCache
) -> None:
    first = paired(default_model, folder, cache)
    changed = folder / "image_2.png"
    write_image(changed, (250, 10, 10), side=64)

    calls: list[np.ndarray] = []
    second = paired(default_model, folder, cache, calls)
    assert len(calls) == 1
    assert second["image_2.png"] != first["image_2.png"]
    decoded = np.asarray(Image.open(io.BytesIO(second["image_2.png"] or b"")))
    assert tuple(decoded[PIXELS // 2, PIXELS // 2]) == (250, 10, 10)
    assert {name: data for name, data in second.items() if name != "image_2.png"} == {
        name: data for name, data in first.items() if name != "image_2.png"}


def test_scored_records_paired_as_they_come(
    default_model: ReferenceModel, folder: Path, cache: ThumbnailCache
) -> None:
    paths = sorted(folder.rglob("*.png"))
    paired: list[tuple[ScoredFile, bytes | None]] = []
    paired_before_read: list[int] = []

    def records() -> Iterator[ScoredFile]:
        for record in score_files(default_model, folder, paths, thumbnail_size=PIXELS):
            paired_before_read.append(len(paired))
            yield record

    for pair in store_thumbnails(records(), cache, PIXELS, encode_png):
        paired.append(pair)

    # Each record was paired and handed on before the next one was read.
    assert paired_before_read == list(range(len(paths)))
    assert all(data for _, data in paired)


def test_read_only_folder_is_cached(
    default_model: ReferenceModel, folder: Path, cache: ThumbnailCache
) -> None:
    paths = sorted(folder.rglob("*.png"))
    # Root ignores this, so the listing check below is what shows nothing was written.
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        for _ in range(2):
            results = list(store_thumbnails(
                score_files(default_model, folder, paths, thumbnail_size=PIXELS),
                cache, PIXELS, encode_png))
            assert all(data for _, data in results)
        keys = [thumbnail_key(record, PIXELS, time.time_ns()) for record, _ in results]
        assert sorted(path.name for path in folder.iterdir()) == [path.name for path in paths]
        assert len(cache.get_many([key for key in keys if key is not None])) == len(paths)
    finally:
        folder.chmod(stat.S_IRWXU)


def test_unusable_cache_folder_disables_cache(tmp_path: Path) -> None:
    # A regular file where the cache folder's parent should be fails also for root,
    # which permission bits would not stop.
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")
    cache = open_cache(blocker / "cache")
    key = ThumbnailKey("/data/a.png", 1, 1, PIXELS)
    cache.put_many([(key, b"data")])
    assert not cache.enabled
    assert cache.get_many([key]) == {}


def test_unusable_cache_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")
    with caplog.at_level(logging.DEBUG, logger="engine.thumbcache"):
        for _ in range(3):
            assert not open_cache(blocker / "cache").enabled
    levels = [record.levelno for record in caplog.records
              if "thumbnail cache disabled" in record.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG]


def scored_records(model: ReferenceModel, folder: Path) -> dict[str, ScoredFile]:
    """Score `folder` through its score cache and return the records by name."""
    with ReviewStore.open(folder) as store:
        return {record.relative_path: record for record in score_with_cache(store, model)}


def test_changed_file_gets_no_thumbnail(
    default_model: ReferenceModel, folder: Path, cache: ThumbnailCache
) -> None:
    record = scored_records(default_model, folder)["image_2.png"]
    original = record.path.read_bytes()
    # Replaced after scoring, before its thumbnail is read: the thumbnail of the
    # new content must not be shown with the old score, nor stored under its key.
    write_image(record.path, (250, 10, 10), side=64)

    [changed] = cached_thumbnails([record], cache, PIXELS, default_model.framing, encode_png)

    assert changed.data is None
    assert changed.problem == CHANGED_SINCE_SCORED
    key = thumbnail_key(record, PIXELS, time.time_ns())
    assert key is not None
    assert cache.get_many([key]) == {}

    # The scored version back, with its size and mtime, gets its own thumbnail.
    record.path.write_bytes(original)
    assert record.mtime_ns is not None
    os.utime(record.path, ns=(record.mtime_ns, record.mtime_ns))
    [restored] = cached_thumbnails([record], cache, PIXELS, default_model.framing, encode_png)
    assert restored.problem == ""
    pixels = np.asarray(Image.open(io.BytesIO(restored.data or b"")))
    assert tuple(pixels[PIXELS // 2, PIXELS // 2]) == (110, 90, 120)
    assert cache.get_many([key]) == {key: restored.data}


def test_removed_file_gets_its_status(
    default_model: ReferenceModel, folder: Path, cache: ThumbnailCache
) -> None:
    record = scored_records(default_model, folder)["image_1.png"]
    record.path.unlink()

    [removed] = cached_thumbnails([record], cache, PIXELS, default_model.framing, encode_png)

    assert removed.data is None
    assert removed.problem == "the file was removed or renamed"


def test_corrupt_cache_file_is_rebuilt(
    default_model: ReferenceModel, folder: Path, tmp_path: Path
) -> None:
    cache_folder = tmp_path / "cache"
    cache_folder.mkdir()
    (cache_folder / CACHE_FILE_NAME).write_bytes(b"not a database" * 100)
    cache = open_cache(cache_folder)
    assert cache.enabled
    first = paired(default_model, folder, cache)
    assert all(first.values())
    calls: list[np.ndarray] = []
    assert paired(default_model, folder, cache, calls) == first
    assert calls == []
    cache.close()


def test_corrupt_entry_is_rebuilt(
    default_model: ReferenceModel, folder: Path, tmp_path: Path
) -> None:
    cache = open_cache(tmp_path / "cache")
    first = paired(default_model, folder, cache)
    cache.close()
    with sqlite3.connect(tmp_path / "cache" / CACHE_FILE_NAME) as connection:
        connection.execute("UPDATE thumbnails SET data = X'00FF00' WHERE path LIKE '%image_1.png'")
    connection.close()

    cache = open_cache(tmp_path / "cache")
    calls: list[np.ndarray] = []
    assert paired(default_model, folder, cache, calls) == first
    assert len(calls) == 1
    calls.clear()
    assert paired(default_model, folder, cache, calls) == first
    assert calls == []
    cache.close()
