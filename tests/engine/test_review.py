"""Tests of the per-folder review state: score cache, overrides, thresholds and locations."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fault_files import fill_disk, tmpfs
from PIL import Image
from review_files import backdate, copy_blood_jpgs, write_retina_pngs

from engine.decisions import Decision, DecisionSource
from engine.images import Status
from engine.listing import list_images
from engine.modelfile import ReferenceModel
from engine.moves import move_batch
from engine.presence import mark_listed
from engine.records import Location
from engine.review import ReviewStore
from engine.reviewdb import DB_FILE_NAME, DB_FOLDER_NAME, ReviewDatabase, ReviewStoreError
from engine.reviewplaces import fallback_database_path
from engine.reviewschema import SCHEMA_VERSION
from engine.scorecache import score_changed, score_with_cache
from engine.scorestore import cached, stale_files
from engine.signals import SIGNALS
from engine.undo import undo_last_batch


class ModelCounter:
    """Counts the images that go through the autoencoder's encoder."""

    def __init__(self) -> None:
        self.images = 0

    def __call__(self, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...],
                 output: torch.Tensor) -> None:
        self.images += inputs[0].shape[0]


@pytest.fixture
def counter(default_model: ReferenceModel) -> Iterator[ModelCounter]:
    counting = ModelCounter()
    handle = default_model.autoencoder.encoder.register_forward_hook(counting)
    yield counting
    handle.remove()


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """1000 RetinaMNIST PNGs, written once for the module and copied by each test."""
    folder = tmp_path_factory.mktemp("big") / "batch"
    write_retina_pngs(data_root, folder, 1000)
    return folder


@pytest.fixture
def thousand(tmp_path: Path, big_folder: Path) -> Path:
    folder = tmp_path / "thousand"
    folder.mkdir()
    for path in big_folder.iterdir():
        shutil.copyfile(path, folder / path.name)
    backdate(folder)
    return folder


@pytest.fixture
def mixed(tmp_path: Path, data_root: Path) -> Path:
    """Ten retina PNGs in retina/, five blood-cell JPEGs in blood/ and an empty file."""
    folder = tmp_path / "mixed"
    write_retina_pngs(data_root, folder / "retina", 10)
    copy_blood_jpgs(data_root, folder / "blood", 5)
    (folder / "empty.png").write_bytes(b"")
    backdate(folder)
    return folder


def scan(folder: Path, model: ReferenceModel) -> dict[str, float | None]:
    """Score `folder` through a freshly opened store, as a restarted program would."""
    with ReviewStore.open(folder) as store:
        return {item.relative_path: item.score for item in score_with_cache(store, model)}


def other_threshold(model: ReferenceModel) -> ReferenceModel:
    """The same weights with another threshold, which gives another fingerprint."""
    calibration = dataclasses.replace(model.calibration, threshold=model.threshold * 2)
    return dataclasses.replace(model, calibration=calibration)


# --- score cache -----------------------------------------------------------------


def test_reopen_rescores_nothing(
    thousand: Path, default_model: ReferenceModel, counter: ModelCounter
) -> None:
    first = scan(thousand, default_model)
    scored_first = counter.images
    second = scan(thousand, default_model)

    assert len(first) == 1000
    assert scored_first == 1000
    assert counter.images == 1000
    assert second == first


def test_changed_and_added_rescored(
    thousand: Path, data_root: Path, default_model: ReferenceModel, counter: ModelCounter
) -> None:
    scan(thousand, default_model)
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        Image.fromarray(arrays["test_images"][0]).save(thousand / "r0005.png")
        Image.fromarray(arrays["test_images"][1]).save(thousand / "added.png")
    half_an_hour_ago = time.time() - 1800
    for name in ("r0005.png", "added.png"):
        os.utime(thousand / name, (half_an_hour_ago, half_an_hour_ago))
    with ReviewStore.open(thousand) as store:
        hits, misses = cached(store, default_model.fingerprint, list_images(thousand), 0.01)
    before = counter.images

    results = scan(thousand, default_model)

    assert sorted(path.name for path in misses) == ["added.png", "r0005.png"]
    assert len(hits) == 999
    assert counter.images - before == 2
    assert len(results) == 1001


def test_mtime_change_alone_rescores(
    mixed: Path, default_model: ReferenceModel, counter: ModelCounter
) -> None:
    scan(mixed, default_model)
    os.utime(mixed / "retina" / "r0003.png", (1_000_000_000, 1_000_000_000))
    before = counter.images

    scan(mixed, default_model)

    assert counter.images - before == 1


def test_other_model_rescored(
    mixed: Path, default_model: ReferenceModel, counter: ModelCounter
) -> None:
    scan(mixed, default_model)
    before = counter.images

    scan(mixed, other_threshold(default_model))
    after_other = counter.images
    scan(mixed, default_model)

    # The empty file never reaches the model, so 15 of 16 files are scored.
    assert after_other - before == 15
    assert counter.images == after_other


def test_fresh_file_not_trusted(
    tmp_path: Path, data_root: Path, default_model: ReferenceModel, counter: ModelCounter
) -> None:
    # Written just now, so within the two-second window of its own mtime.
    folder = tmp_path / "fresh"
    write_retina_pngs(data_root, folder, 3)
    scan(folder, default_model)
    before = counter.images

    scan(folder, default_model)

    assert counter.images - before == 3


def test_future_mtime_trusted(
    mixed: Path, default_model: ReferenceModel, counter: ModelCounter
) -> None:
    # A camera clock a day ahead: the mtime is far from any moment of reading.
    tomorrow = time.time() + 86400
    os.utime(mixed / "retina" / "r0000.png", (tomorrow, tomorrow))
    scan(mixed, default_model)
    before = counter.images

    scan(mixed, default_model)

    assert counter.images == before


def test_stale_files_agree_with_cached(mixed: Path, default_model: ReferenceModel) -> None:
    fingerprint = default_model.fingerprint
    os.utime(mixed / "retina" / "r0006.png")  # now: its next score is not trusted
    scan(mixed, default_model)
    os.utime(mixed / "retina" / "r0003.png", (1_000_000_000, 1_000_000_000))
    relative_paths = [path.relative_to(mixed).as_posix() for path in list_images(mixed)]
    # Removed after the listing, as a file deleted during a scan is.
    (mixed / "retina" / "r0004.png").unlink()

    with ReviewStore.open(mixed) as store:
        stale, identities = stale_files(store, fingerprint, relative_paths)
        _, misses = cached(store, fingerprint, [mixed / path for path in relative_paths], 1.0)

    expected = ["retina/r0003.png", "retina/r0004.png", "retina/r0006.png"]
    assert stale == expected
    assert [path.relative_to(mixed).as_posix() for path in misses] == expected
    assert sorted(identities) == ["retina/r0003.png", "retina/r0006.png"]
    assert identities["retina/r0003.png"].mtime_ns == 1_000_000_000 * 10**9


def test_file_removed_after_listing_marked_missing(
    mixed: Path, default_model: ReferenceModel
) -> None:
    fingerprint = default_model.fingerprint
    scan(mixed, default_model)
    relative_paths = [path.relative_to(mixed).as_posix() for path in list_images(mixed)]

    with ReviewStore.open(mixed) as store:
        mark_listed(store, relative_paths)
        # Removed after the listing, so the scan finds it gone only when it decodes it.
        (mixed / "retina" / "r0004.png").unlink()
        for _ in score_changed(store, default_model, default_model.threshold,
                               relative_paths):
            pass
        record = store.record("retina/r0004.png", fingerprint)

    assert record is not None
    assert record.location is Location.MISSING


def test_new_file_removed_before_scoring_recorded(
    mixed: Path, default_model: ReferenceModel
) -> None:
    relative_paths = [path.relative_to(mixed).as_posix() for path in list_images(mixed)]
    # Removed after the listing of a folder never scanned, before the scan reads its size.
    (mixed / "retina" / "r0004.png").unlink()

    with ReviewStore.open(mixed) as store:
        for _ in score_changed(store, default_model, default_model.threshold,
                               relative_paths):
            pass
        record = store.record("retina/r0004.png", default_model.fingerprint)

    assert record is not None
    assert record.status is Status.MISSING
    assert record.detail == "the file was removed or renamed"
    assert record.location is Location.MISSING
    assert record.score is None


def test_file_removed_after_scoring_marked_missing(
    mixed: Path, default_model: ReferenceModel
) -> None:
    relative_paths = [path.relative_to(mixed).as_posix() for path in list_images(mixed)]

    with ReviewStore.open(mixed) as store:
        scan = score_changed(store, default_model, default_model.threshold, relative_paths)
        next(scan)  # the cached files: none yet
        next(scan)  # the first file is scored
        (mixed / relative_paths[0]).unlink()
        for _ in scan:
            pass
        record = store.record(relative_paths[0], default_model.fingerprint)

    assert record is not None
    assert record.location is Location.MISSING


def test_cached_results_match_scored(mixed: Path, default_model: ReferenceModel) -> None:
    with ReviewStore.open(mixed) as store:
        scored = {item.relative_path: item for item in score_with_cache(store, default_model)}
    with ReviewStore.open(mixed) as store:
        cached = {item.relative_path: item for item in score_with_cache(store, default_model)}

    assert cached.keys() == scored.keys()
    for relative_path, item in scored.items():
        again = cached[relative_path]
        assert again.score == item.score
        assert again.flagged == item.flagged
        assert (again.size, again.mtime_ns) == (item.size, item.mtime_ns)
        assert again.status == item.status
        assert (again.width, again.height, again.format) == (item.width, item.height, item.format)
        assert again.path == item.path
    assert cached["empty.png"].status is Status.EMPTY


def test_cached_results_get_thumbnails(mixed: Path, default_model: ReferenceModel) -> None:
    scan(mixed, default_model)

    with ReviewStore.open(mixed) as store:
        results = list(score_with_cache(store, default_model, thumbnail_size=16))

    by_path = {item.relative_path: item for item in results}
    thumbnail = by_path["retina/r0000.png"].thumbnail
    assert thumbnail is not None
    assert thumbnail.shape == (16, 16, 3)
    assert by_path["empty.png"].thumbnail is None


def test_cached_results_without_thumbnails_by_score(
    mixed: Path, default_model: ReferenceModel
) -> None:
    scan(mixed, default_model)

    with ReviewStore.open(mixed) as store:
        results = list(score_with_cache(store, default_model, thumbnail_size=16,
                                        decode_cached_thumbnails=False, hits_by_score=True))

    assert all(item.thumbnail is None for item in results)
    scores = [item.score for item in results if item.score is not None]
    assert len(scores) >= 2
    assert scores == sorted(scores, reverse=True)
    # Files without a score come after every scored file.
    first_unscored = next(index for index, item in enumerate(results) if item.score is None)
    assert all(item.score is None for item in results[first_unscored:])


def test_cancelled_scan_keeps_scores(
    thousand: Path, default_model: ReferenceModel, counter: ModelCounter
) -> None:
    with ReviewStore.open(thousand) as store:
        results = score_with_cache(store, default_model, batch_size=16)
        yielded = [next(results) for _ in range(40)]
        results.close()

    with ReviewStore.open(thousand) as store:
        hits, misses = cached(store, default_model.fingerprint, list_images(thousand), 0.01)

    assert {item.relative_path for item in yielded} <= {item.relative_path for item in hits}
    assert len(hits) + len(misses) == 1000


def test_threshold_sets_flagged(mixed: Path, default_model: ReferenceModel) -> None:
    scan(mixed, default_model)

    with ReviewStore.open(mixed) as store:
        strict = list(score_with_cache(store, default_model, threshold=0.0))
        store.set_threshold_choice(default_model.fingerprint, 1e9)
        lenient = list(score_with_cache(store, default_model))

    assert all(item.flagged for item in strict if item.score is not None)
    assert not any(item.flagged for item in lenient)


# --- overrides and decisions -----------------------------------------------------


def test_override_persists_and_wins(
    mixed: Path, default_model: ReferenceModel, counter: ModelCounter
) -> None:
    scan(mixed, default_model)
    blood = "blood/" + sorted(os.listdir(mixed / "blood"))[0]
    with ReviewStore.open(mixed) as store:
        store.set_override(["retina/r0001.png"], Decision.REJECT)
        store.set_override([blood], Decision.KEEP)
    # Rescoring every file, under another model, must not touch the overrides.
    scan(mixed, other_threshold(default_model))
    os.utime(mixed / "retina" / "r0001.png", (1_000_000_000, 1_000_000_000))
    scan(mixed, default_model)

    with ReviewStore.open(mixed) as store:
        records = {record.relative_path: record
                   for record in store.records(default_model.fingerprint)}
    rejected = records["retina/r0001.png"]
    kept = records[blood]
    for threshold in (0.0, default_model.threshold, 1e9):
        assert rejected.final_decision(threshold) is Decision.REJECT
        assert kept.final_decision(threshold) is Decision.KEEP
    assert rejected.model_decision(1e9) is Decision.KEEP
    assert kept.model_decision(0.0) is Decision.REJECT
    assert rejected.decision_source is DecisionSource.CURATOR
    assert rejected.override_time is not None
    assert records["retina/r0002.png"].decision_source is DecisionSource.MODEL


def test_override_cleared(mixed: Path, default_model: ReferenceModel) -> None:
    scan(mixed, default_model)

    with ReviewStore.open(mixed) as store:
        store.set_override(["retina/r0001.png"], Decision.REJECT)
        store.set_override(["retina/r0001.png"], None)
        record = store.record("retina/r0001.png", default_model.fingerprint)

    assert record is not None
    assert record.override is None
    assert record.override_time is None
    assert record.final_decision(1e9) is Decision.KEEP


def test_overrides_lists_decided_files(mixed: Path, default_model: ReferenceModel) -> None:
    scan(mixed, default_model)

    with ReviewStore.open(mixed) as store:
        store.set_override(["retina/r0001.png"], Decision.REJECT)
        store.set_override(["retina/r0002.png"], Decision.KEEP)
        store.set_override(["retina/r0003.png"], Decision.KEEP)
        store.set_override(["retina/r0003.png"], None)
        overrides = store.overrides()

    assert overrides == {"retina/r0001.png": Decision.REJECT,
                         "retina/r0002.png": Decision.KEEP}


def test_override_unknown_path_changes_nothing(
    mixed: Path, default_model: ReferenceModel
) -> None:
    scan(mixed, default_model)

    with ReviewStore.open(mixed) as store:
        with pytest.raises(ValueError, match=r"absent\.png is not in the review"):
            store.set_override(["retina/r0001.png", "absent.png"], Decision.REJECT)
        record = store.record("retina/r0001.png")

    assert record is not None
    assert record.override is None


def test_rejects_include_unreadable_and_overrides(
    mixed: Path, default_model: ReferenceModel
) -> None:
    scan(mixed, default_model)

    with ReviewStore.open(mixed) as store:
        store.set_override(["retina/r0004.png"], Decision.REJECT)
        rejects = store.relative_paths_to_reject(default_model.fingerprint, 1e9)

    # Nothing scores above 1e9, so only the curator and the unreadable file reject.
    assert rejects == ["empty.png", "retina/r0004.png"]


def test_unscored_file_has_no_decision(mixed: Path, default_model: ReferenceModel) -> None:
    scan(mixed, default_model)

    with ReviewStore.open(mixed) as store:
        record = store.record("retina/r0000.png", "another-fingerprint")

    assert record is not None
    assert record.score is None
    assert record.model_decision(1.0) is None


def test_threshold_choice_persists(mixed: Path, default_model: ReferenceModel) -> None:
    fingerprint = default_model.fingerprint
    with ReviewStore.open(mixed) as store:
        store.set_threshold_choice(fingerprint, 0.02)
    with ReviewStore.open(mixed) as store:
        chosen = store.threshold_choice(fingerprint)
        store.set_threshold_choice(fingerprint, None)
        calibrated = store.threshold_for(fingerprint, default_model.threshold)

    assert chosen == 0.02
    assert calibrated == default_model.threshold


# --- locations -------------------------------------------------------------------


def test_vanished_file_marked_missing(mixed: Path, default_model: ReferenceModel) -> None:
    scan(mixed, default_model)
    with ReviewStore.open(mixed) as store:
        store.set_override(["retina/r0002.png"], Decision.KEEP)
    removed_bytes = (mixed / "retina" / "r0002.png").read_bytes()
    removed_mtime_ns = (mixed / "retina" / "r0002.png").stat().st_mtime_ns
    (mixed / "retina" / "r0002.png").unlink()

    scan(mixed, default_model)
    with ReviewStore.open(mixed) as store:
        missing = store.record("retina/r0002.png")
    # Restored as a backup tool would: the same bytes and modification time.
    (mixed / "retina" / "r0002.png").write_bytes(removed_bytes)
    os.utime(mixed / "retina" / "r0002.png", ns=(removed_mtime_ns, removed_mtime_ns))
    scan(mixed, default_model)
    with ReviewStore.open(mixed) as store:
        back = store.record("retina/r0002.png")

    assert missing is not None and missing.location is Location.MISSING
    assert back is not None and back.location is Location.FOLDER
    assert back.override is Decision.KEEP


class _InterruptAfterBegin:
    """The review's real connection, with Ctrl+C arriving right after BEGIN returns."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, *parameters: object) -> sqlite3.Cursor:
        cursor = self._connection.execute(sql, *parameters)
        if sql == "BEGIN IMMEDIATE":
            raise KeyboardInterrupt
        return cursor

    def __getattr__(self, name: str) -> object:
        return getattr(self._connection, name)


def test_interrupt_after_begin_leaves_no_transaction(tmp_path: Path) -> None:
    with ReviewStore.open(tmp_path) as store:
        database = store.database
        connection = database._connection
        database._connection = _InterruptAfterBegin(connection)  # type: ignore[assignment]
        with pytest.raises(KeyboardInterrupt), database.transaction():
            pass
        database._connection = connection
        still_open = connection.in_transaction
        # The next transaction begins as usual.
        with database.transaction() as usable:
            usable.execute("SELECT 1")

    assert not still_open


# --- database file ---------------------------------------------------------------


def test_database_inside_folder_is_hidden(mixed: Path, default_model: ReferenceModel) -> None:
    with ReviewStore.open(mixed) as store:
        path = store.path
        listed = list_images(mixed)

    assert path == mixed.resolve() / DB_FOLDER_NAME / DB_FILE_NAME
    assert path.is_file()
    assert all(DB_FOLDER_NAME not in item.parts for item in listed)
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute(
            "SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_version_1_database_upgraded(mixed: Path, default_model: ReferenceModel) -> None:
    scan(mixed, default_model)
    first = list_images(mixed)[0]
    with ReviewStore.open(mixed) as store:
        name = store.relative_path(first)
        store.set_override([name], Decision.KEEP)
        path = store.path
    # Turn the database back into version 1: no signal columns, no decided digests,
    # no record of unreported stops.
    with sqlite3.connect(path) as connection:
        for column in SIGNALS:
            connection.execute(f"ALTER TABLE scores DROP COLUMN {column}")
        connection.execute("ALTER TABLE files DROP COLUMN override_sha256")
        connection.execute("ALTER TABLE batches DROP COLUMN unreported_stop")
        connection.execute("UPDATE schema_version SET version = 1")
    connection.close()

    with ReviewStore.open(mixed) as store:
        records = {record.relative_path: record for record in store.records(
            default_model.fingerprint)}
        hits, misses = cached(store, default_model.fingerprint, list_images(mixed), 1.0)

    assert records[name].override is Decision.KEEP
    assert hits == []
    assert len(misses) == len(list_images(mixed))
    with sqlite3.connect(path) as connection:
        version = connection.execute("SELECT version FROM schema_version").fetchone()[0]
        columns = [row[1] for row in connection.execute("PRAGMA table_info(scores)")]
    connection.close()
    assert version == SCHEMA_VERSION
    assert set(SIGNALS) <= set(columns)


def test_version_2_decisions_kept_when_times_change(
    mixed: Path, default_model: ReferenceModel
) -> None:
    scan(mixed, default_model)
    with ReviewStore.open(mixed) as store:
        store.set_override(["retina/r0001.png"], Decision.REJECT)
        path = store.path
    # Turn the database back into version 2, whose decisions have no digest and
    # which has no record of unreported stops.
    with sqlite3.connect(path) as connection:
        connection.execute("ALTER TABLE files DROP COLUMN override_sha256")
        connection.execute("ALTER TABLE batches DROP COLUMN unreported_stop")
        connection.execute("UPDATE schema_version SET version = 2")
    connection.close()
    # As a copy of the folder without its times would.
    os.utime(mixed / "retina" / "r0001.png", (1_000_000_000, 1_000_000_000))
    scan(mixed, default_model)

    with ReviewStore.open(mixed) as store:
        record = store.record("retina/r0001.png", default_model.fingerprint)
    with sqlite3.connect(path) as connection:
        version = connection.execute("SELECT version FROM schema_version").fetchone()[0]
    connection.close()

    assert record is not None
    assert record.override is Decision.REJECT
    assert version == SCHEMA_VERSION


def test_version_3_database_upgraded(mixed: Path, tmp_path: Path) -> None:
    with ReviewStore.open(mixed) as store:
        moves = move_batch(store, ["retina/r0000.png", "retina/r0001.png"],
                           tmp_path / "quarantine")
        next(moves)
        moves.close()
        path = store.path
    # Turn the database back into version 3, which has no record of unreported stops.
    with sqlite3.connect(path) as connection:
        connection.execute("ALTER TABLE batches DROP COLUMN unreported_stop")
        connection.execute("UPDATE schema_version SET version = 3")
    connection.close()

    with ReviewStore.open(mixed) as store:
        stopped = store.stopped
        undone = list(undo_last_batch(store))
    with sqlite3.connect(path) as connection:
        version = connection.execute("SELECT version FROM schema_version").fetchone()[0]
        columns = [row[1] for row in connection.execute("PRAGMA table_info(batches)")]
    connection.close()

    # Whether a window or a command line reported a stop before the upgrade is not
    # known, so none is reported after it.
    assert stopped == []
    assert [outcome.error for outcome in undone] == [None]
    assert version == SCHEMA_VERSION
    assert "unreported_stop" in columns


def test_unwritable_folder_uses_data_home(
    mixed: Path, tmp_path: Path, default_model: ReferenceModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file where the database folder would go makes the folder unusable for it,
    # without relying on permissions, which root ignores.
    (mixed / DB_FOLDER_NAME).write_bytes(b"")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    key = hashlib.sha256(str(mixed.resolve()).encode()).hexdigest()

    first = scan(mixed, default_model)
    with ReviewStore.open(mixed) as store:
        path = store.path
        hits, _ = cached(store, default_model.fingerprint, list_images(mixed), 0.01)

    assert path == tmp_path / "data-home" / "retina-curator" / "reviews" / f"{key}.sqlite"
    assert len(hits) == len(first)


def test_failed_creation_leaves_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    with tmpfs(tmp_path / "small_disk", "1m") as disk:
        folder = disk / "photos"
        folder.mkdir()
        (folder / "a.png").write_bytes(b"an image")
        filler = fill_disk(disk)
        database = ReviewDatabase.open(folder)
        database.close()
        names = sorted(os.listdir(folder))
        filler.unlink()

    assert database.path == fallback_database_path(folder)
    assert names == ["a.png"]


@pytest.mark.parametrize("leftover", [
    # What an earlier release left when creating the database failed on a full disk.
    "empty file",
    # Such a file once a later command had set it up.
    "tables only",
])
def test_empty_database_yields_to_fallback(
    mixed: Path, tmp_path: Path, default_model: ReferenceModel,
    monkeypatch: pytest.MonkeyPatch, leftover: str,
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    # A file where the database folder would go sends the review to the data folder.
    (mixed / DB_FOLDER_NAME).write_bytes(b"")
    with ReviewStore.open(mixed) as store:
        fallback = store.path
        for _ in score_with_cache(store, default_model):
            pass
        rejects = store.relative_paths_to_reject(default_model.fingerprint,
                                                 default_model.threshold)
        list(move_batch(store, rejects, tmp_path / "quarantine"))
    (mixed / DB_FOLDER_NAME).unlink()
    (mixed / DB_FOLDER_NAME).mkdir()
    local = mixed / DB_FOLDER_NAME / DB_FILE_NAME
    if leftover == "empty file":
        local.write_bytes(b"")
    else:
        blank = tmp_path / "blank"
        blank.mkdir()
        with ReviewStore.open(blank) as other:
            shutil.copyfile(other.path, local)

    with ReviewStore.open(mixed) as store:
        path, notice = store.path, store.split_notice
        returned = list(undo_last_batch(store))

    assert path == fallback
    assert notice == ""
    assert rejects
    assert sorted(outcome.relative_path for outcome in returned) == sorted(rejects)
    assert [outcome.error for outcome in returned] == [None] * len(rejects)


def test_damaged_database_rejected(mixed: Path) -> None:
    (mixed / DB_FOLDER_NAME).mkdir()
    (mixed / DB_FOLDER_NAME / DB_FILE_NAME).write_bytes(b"not a database" * 100)

    with pytest.raises(ReviewStoreError, match="Move the file aside"):
        ReviewStore.open(mixed)


def test_newer_schema_rejected(mixed: Path) -> None:
    with ReviewStore.open(mixed) as store:
        path = store.path
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE schema_version SET version = 99")

    with pytest.raises(ReviewStoreError, match="schema version 99"):
        ReviewStore.open(mixed)


def test_missing_folder_rejected(tmp_path: Path) -> None:
    with pytest.raises(ReviewStoreError, match="Check that the folder exists"):
        ReviewStore.open(tmp_path / "absent")
