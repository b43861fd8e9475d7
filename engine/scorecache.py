"""Folder scoring through the review store's cache: only new or changed files are scored."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path

from engine.images import Status, load_images
from engine.listing import list_folder, list_relative_images
from engine.modelfile import ReferenceModel
from engine.presence import mark_listed
from engine.records import FileIdentity
from engine.review import ReviewStore
from engine.scorestore import lookup, save_scores, stale_files
from engine.scoring import DEFAULT_BATCH_SIZE, ScoredFile, score_files

logger = logging.getLogger(__name__)

# New scores are written to the review database in groups of this many files, so a
# cancelled or killed scan keeps most of its work without one commit per file.
SAVE_EVERY = 256


def score_with_cache(
    store: ReviewStore,
    model: ReferenceModel,
    threshold: float | None = None,
    thumbnail_size: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    relative_paths: list[str] | None = None,
    decode_cached_thumbnails: bool = True,
    hits_by_score: bool = False,
    cancel: threading.Event | None = None,
) -> Generator[ScoredFile, None, None]:
    """Score every image under the store's folder, reading unchanged files from the cache.

    Yields the cached results first, then the newly scored ones, each group in path
    order. `threshold` sets `flagged` and defaults to the folder's chosen threshold
    for the model, else the model's calibrated one. New results are saved every
    SAVE_EVERY files and when the generator ends or is closed, so a cancelled scan
    keeps what it scored. The scan also updates which files are in the folder.
    `relative_paths` is the folder's listing by list_folder, for a caller that
    has it already and sets `store.skipped_folders` from it. Without it, the
    folder is listed here and `store.skipped_folders` set.
    With `decode_cached_thumbnails` False, cached results come without thumbnails,
    for a caller that keeps its own (engine.thumbcache). With `hits_by_score`,
    cached results come highest score first and unscored files last, for a caller
    that keeps them sorted that way. `cancel` stops the scoring as in score_files.
    """
    fingerprint = model.fingerprint
    if threshold is None:
        threshold = store.threshold_for(fingerprint, model.threshold)
    if relative_paths is None:
        listing = list_folder(store.folder)
        relative_paths = listing.files
        store.skipped_folders = listing.skipped_folders
    mark_listed(store, relative_paths)
    hits, misses, identities = lookup(store, fingerprint, relative_paths, threshold)
    logger.info("%s: %d files cached, %d to score with model %s",
                store.folder, len(hits), len(misses), fingerprint)
    if hits_by_score:
        hits.sort(key=lambda item: -math.inf if item.score is None else item.score,
                  reverse=True)

    if thumbnail_size and decode_cached_thumbnails:
        yield from _with_thumbnails(hits, model, thumbnail_size, batch_size)
    else:
        yield from hits

    yield from _score_and_save(store, model, fingerprint, misses, identities, threshold,
                               thumbnail_size, batch_size, cancel)


def score_changed(
    store: ReviewStore, model: ReferenceModel, threshold: float, relative_paths: list[str]
) -> Generator[int, None, None]:
    """Score the listed files that have no current cached score, and save their scores.

    `relative_paths` is the folder's listing by list_relative_images. Yields how
    many files are done since the last yield: first all the cached files at once,
    then 1 for each file scored. Scores are saved as score_with_cache saves them,
    and the scan updates which files are in the folder in the same way. It builds
    no result for the cached files, for a caller that reads the results from the
    store afterwards. When files were scored, the folder is listed again at the end,
    so a file removed during the scan is marked missing rather than read back as
    present. That listing logs the names and subfolders it leaves out at debug
    level only, because the caller's listing warned about them already.
    """
    fingerprint = model.fingerprint
    mark_listed(store, relative_paths)
    stale, identities = stale_files(store, fingerprint, relative_paths)
    logger.info("%s: %d files cached, %d to score with model %s",
                store.folder, len(relative_paths) - len(stale), len(stale), fingerprint)
    yield len(relative_paths) - len(stale)
    misses = [store.folder / relative_path for relative_path in stale]
    results = _score_and_save(store, model, fingerprint, misses, identities, threshold)
    # Closing this generator closes the scoring too, which saves what it scored.
    with contextlib.closing(results):
        for _ in results:
            yield 1
    if not stale:
        return
    try:
        # NOTE: a subfolder that became unreadable during the scan is therefore not
        # warned about, and its files are marked missing like removed ones.
        listed = list_relative_images(store.folder, warn_skipped=False)
    except OSError as error:
        logger.warning("Listing %s again failed: %s. Files removed during the scan may "
                       "show as present.", store.folder, error.strerror or error)
        return
    mark_listed(store, listed)


def _score_and_save(
    store: ReviewStore,
    model: ReferenceModel,
    fingerprint: str,
    misses: list[Path],
    identities: dict[str, FileIdentity],
    threshold: float,
    thumbnail_size: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cancel: threading.Event | None = None,
) -> Generator[ScoredFile, None, None]:
    """Score `misses`, yield each result and save them every SAVE_EVERY files and at the end.

    `fingerprint` is that of `model`, which takes 2 ms to compute.
    """
    pending: list[ScoredFile] = []
    results = score_files(model, store.folder, misses, threshold, thumbnail_size, batch_size,
                          cancel)
    try:
        for item in results:
            pending.append(item)
            if len(pending) >= SAVE_EVERY:
                save_scores(store, fingerprint, pending, identities)
                pending = []
            yield item
    finally:
        results.close()
        save_scores(store, fingerprint, pending, identities)


def _with_thumbnails(
    hits: list[ScoredFile], model: ReferenceModel, thumbnail_size: int, batch_size: int
) -> Iterator[ScoredFile]:
    """Yield `hits` with thumbnails decoded again, a batch at a time, in order."""
    for start in range(0, len(hits), batch_size):
        batch = hits[start : start + batch_size]
        readable = [item for item in batch if item.status is Status.OK]
        loaded = iter(load_images([item.path for item in readable], model.framing,
                                  thumbnail_size))
        for item in batch:
            if item.status is Status.OK:
                item = replace(item, thumbnail=next(loaded).thumbnail)
            yield item
