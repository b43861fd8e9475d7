"""Background jobs on a QThreadPool that deliver their results to the GUI in batches."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path

from engine.export import CleanedSetExport
from engine.export_results import ExportedFile
from engine.framing import Framing
from engine.images import Status
from engine.journal import batches, last_undoable_batch
from engine.listing import SkippedFolder, list_folder
from engine.modelfile import ReferenceModel
from engine.moves import move_batch
from engine.quarantine import MoveOutcome, move_files
from engine.review import ReviewStore
from engine.scorecache import score_with_cache
from engine.scoring import ScoredFile, score_files
from engine.thumbcache import ThumbnailCache, open_cache
from engine.thumbnails import CachedThumbnail, cached_thumbnails, store_thumbnails
from engine.undo import UndoOutcome, undo_batch, undo_store
from gui.batch_worker import BatchWorker
from gui.gallery_items import GalleryItem
from gui.thumbnails import encode_thumbnail

logger = logging.getLogger(__name__)

# Files the model scores at a time in the window. score_files hands a batch over
# once it is scored, so the gallery and the progress bar advance a batch at a
# time. A cancel stops the decoding at the next file. The command line scores 256.
SCORING_BATCH_SIZE = 64


class ScoringWorker(BatchWorker):
    """Lists the images under a folder and scores them into GalleryItem objects.

    With a review store, unchanged files come from its score cache and new scores
    are saved to it (engine.scorecache); without one, every file is scored.
    Thumbnails are encoded as JPEG in the pool thread so the GUI thread only
    decodes the ones it paints. Encoded thumbnails are kept in the thumbnail cache
    file in `thumbnail_cache_folder` (default: engine.thumbcache's user cache
    folder). Cached scores come without a thumbnail: the gallery reads it from that
    cache when its tile is shown (gui.thumbnail_loader), so a re-opened folder is
    neither decoded again nor read whole. `skipped_folders` lists the subfolders
    that the listing could not read, once the folder is listed.
    """

    def __init__(self, model: ReferenceModel, folder: Path, thumbnail_pixels: int,
                 store: ReviewStore | None = None,
                 thumbnail_cache_folder: Path | None = None) -> None:
        super().__init__(f"Scoring {folder}")
        self._model = model
        self._folder = folder
        self._thumbnail_pixels = thumbnail_pixels
        self._store = store
        self._thumbnail_cache_folder = thumbnail_cache_folder
        self.skipped_folders: list[SkippedFolder] = []

    def _produce(self) -> Generator[GalleryItem, None, None]:
        listing = list_folder(self._folder)
        relative_paths = listing.files
        self.skipped_folders = listing.skipped_folders
        self._set_total(len(relative_paths))
        if self._store is None:
            paths = [self._folder / relative_path for relative_path in relative_paths]
            records = score_files(self._model, self._folder, paths,
                                  thumbnail_size=self._thumbnail_pixels,
                                  batch_size=SCORING_BATCH_SIZE, cancel=self._cancel_requested)
        else:
            # An export reads the skipped folders from the store, for its note.
            self._store.skipped_folders = listing.skipped_folders
            records = score_with_cache(self._store, self._model,
                                       thumbnail_size=self._thumbnail_pixels,
                                       batch_size=SCORING_BATCH_SIZE,
                                       relative_paths=relative_paths,
                                       decode_cached_thumbnails=False, hits_by_score=True,
                                       cancel=self._cancel_requested)
        # SQLite connections belong to the thread that opened them: this pool thread.
        cache = open_cache(self._thumbnail_cache_folder)
        # Closing the generator saves the scores a cancelled scan has so far.
        try:
            with contextlib.closing(records):
                yield from _gallery_items(records, cache, self._thumbnail_pixels)
        finally:
            cache.close()


def _gallery_items(records: Iterable[ScoredFile], cache: ThumbnailCache,
                   pixels: int) -> Iterator[GalleryItem]:
    paired = store_thumbnails(records, cache, pixels, encode_thumbnail)
    with contextlib.closing(paired):
        for record, encoded in paired:
            # A readable file without a thumbnail gets it when its tile is shown.
            deferred = (encoded is None and record.status is Status.OK
                        and record.mtime_ns is not None)
            yield GalleryItem.create(record, encoded, deferred)


class ThumbnailWorker(BatchWorker):
    """Reads the thumbnails of gallery records from the thumbnail cache, or decodes
    the files again where the cache has none, producing CachedThumbnail objects.

    Thumbnails decoded again are stored in the cache file in `cache_folder`
    (default: engine.thumbcache's user cache folder).
    """

    def __init__(self, records: list[ScoredFile], pixels: int, framing: Framing,
                 cache_folder: Path | None = None) -> None:
        super().__init__(f"Reading {len(records)} thumbnails")
        self._records = records
        self._pixels = pixels
        self._framing = framing
        self._cache_folder = cache_folder

    def _produce(self) -> Generator[CachedThumbnail, None, None]:
        self._set_total(len(self._records))
        cache = open_cache(self._cache_folder)
        try:
            paired = cached_thumbnails(self._records, cache, self._pixels, self._framing,
                                       encode_thumbnail)
            with contextlib.closing(paired):
                yield from paired
        finally:
            cache.close()


class MoveWorker(BatchWorker):
    """Moves files out of a folder, producing MoveOutcome objects.

    With a review store the files move as one journaled batch (engine.moves),
    which undo can reverse also after a restart, and `batch_id` is the id of that
    batch once a file has been handled. Without one they move with
    engine.quarantine alone. A cancel takes effect between files, so no file is
    left half moved.
    """

    takes_batch_lock = True

    def __init__(self, folder: Path, relative_paths: list[str], destination: Path,
                 store: ReviewStore | None = None) -> None:
        super().__init__(f"Moving files from {folder} to {destination}")
        self._folder = folder
        self._relative_paths = list(relative_paths)
        self._destination = destination
        self._store = store
        self.batch_id: int | None = None

    def _produce(self) -> Generator[MoveOutcome, None, None]:
        self._set_total(len(self._relative_paths))
        # Closing this generator closes the engine's too, because `yield from` forwards
        # it and contextlib.closing closes the batch.
        if self._store is None:
            yield from move_files(self._folder, self._relative_paths, self._destination)
            return
        with contextlib.closing(move_batch(self._store, self._relative_paths,
                                           self._destination)) as moves:
            for outcome in moves:
                if self.batch_id is None:
                    # The batch holds the folder's batch lock while it runs, so no
                    # other process can have journaled a newer one.
                    self.batch_id = batches(self._store)[0].id
                yield outcome


class UndoWorker(BatchWorker):
    """Moves the files of the newest undoable batch back, producing UndoOutcome objects.

    `batch_id` is the id of that batch once the undo has started, and None when
    there was nothing to undo or the batch is in the other database of a split
    review (see engine.reviewplaces).
    """

    takes_batch_lock = True

    def __init__(self, store: ReviewStore) -> None:
        super().__init__(f"Undoing the last move out of {store.folder}")
        self._store = store
        self.batch_id: int | None = None

    def _produce(self) -> Generator[UndoOutcome, None, None]:
        store = undo_store(self._store)
        batch = last_undoable_batch(store)
        if batch is None:
            self._set_total(0)
            return
        # A batch of the other database of a split review has an id of that
        # database, which the window must not take for one of its own.
        self.batch_id = batch.id if store is self._store else None
        self._set_total(batch.in_quarantine)
        yield from undo_batch(store, batch.id)


class ExportWorker(BatchWorker):
    """Runs a prepared CleanedSetExport, producing one ExportedFile per reviewed file.

    The export's `summary` is complete once the worker has ended.
    """

    def __init__(self, export: CleanedSetExport) -> None:
        super().__init__(f"Exporting {export.store.folder} to {export.destination}")
        self.export = export

    def _produce(self) -> Generator[ExportedFile, None, None]:
        self._set_total(self.export.total)
        yield from self.export.run()
