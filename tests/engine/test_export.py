"""Tests of exporting the cleaned set with its CSV and JSON manifests."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest
from fault_files import tmpfs
from review_files import (
    backdate,
    copy_blood_jpgs,
    inventory_by_path,
    sha256_of,
    write_retina_pngs,
)

from engine.decisions import Decision
from engine.export import CleanedSetExport, ExportError, export_cleaned_set
from engine.manifest import MANIFEST_COLUMNS, json_row
from engine.modelfile import ReferenceModel
from engine.moves import move_batch
from engine.placement import Placement
from engine.review import ReviewStore
from engine.scorecache import score_with_cache


@pytest.fixture
def folder(tmp_path: Path, data_root: Path) -> Path:
    """Eight retina PNGs (two in a subfolder), four blood-cell JPEGs and an empty file."""
    root = tmp_path / "batch"
    write_retina_pngs(data_root, root, 6)
    write_retina_pngs(data_root, root / "sub", 2, prefix="s")
    copy_blood_jpgs(data_root, root / "blood", 4)
    (root / "empty.png").write_bytes(b"")
    backdate(root)
    return root


@pytest.fixture
def store(folder: Path, default_model: ReferenceModel) -> Iterator[ReviewStore]:
    with ReviewStore.open(folder) as opened:
        for _ in score_with_cache(opened, default_model):
            pass
        yield opened


def export(store: ReviewStore, model: ReferenceModel, destination: Path,
           **options: bool) -> CleanedSetExport:
    job = CleanedSetExport(store, destination, model.fingerprint, model.threshold,
                           model_name=model.name, **options)
    for _ in job.run():
        pass
    return job


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return {row["path"]: row for row in csv.DictReader(stream)}


def kept_paths(store: ReviewStore, model: ReferenceModel) -> list[str]:
    return [record.relative_path for record in store.records(model.fingerprint)
            if record.final_decision(model.threshold) is Decision.KEEP]


def test_export_copies_kept_files(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    source_before = inventory_by_path(folder)
    destination = tmp_path / "clean"

    summary = export(store, default_model, destination).summary

    kept = kept_paths(store, default_model)
    exported = inventory_by_path(destination)
    del exported["manifest.csv"], exported["manifest.json"]
    assert len(kept) >= 7
    assert "sub/s0000.png" in kept
    assert sorted(exported) == kept
    assert all(exported[path] == source_before[path] for path in kept)
    assert inventory_by_path(folder) == source_before
    assert summary.exported == len(kept)
    assert summary.not_copied == len(source_before) - len(kept)
    assert summary.failed == 0
    assert summary.manifest_csv == destination / "manifest.csv"


def test_manifest_matches_exported_files(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    destination = tmp_path / "clean"
    export(store, default_model, destination)

    rows = read_csv(destination / "manifest.csv")
    with (destination / "manifest.json").open(encoding="utf-8") as stream:
        document = json.load(stream)

    with (destination / "manifest.csv").open(encoding="utf-8") as stream:
        assert stream.readline().strip() == ",".join(MANIFEST_COLUMNS)
    assert set(rows) == set(inventory_by_path(folder))
    assert document["files"] == [json_row(row) for row in rows.values()]
    assert document["complete"] is True
    assert document["model"]["fingerprint"] == default_model.fingerprint
    for path, row in rows.items():
        assert row["sha256"] == sha256_of(folder / path)
        assert row["size"] == str((folder / path).stat().st_size)
        assert row["threshold"] == f"{default_model.threshold:.8g}"
        assert row["model_fingerprint"] == default_model.fingerprint
        assert row["decision_source"] == "model"
        assert row["time"].endswith("Z")
        if row["final_decision"] == "keep":
            assert row["exported"] == "true"
            assert sha256_of(destination / path) == row["sha256"]
        else:
            assert row["exported"] == "false"
            assert not (destination / path).exists()
    blood = [row for path, row in rows.items() if path.startswith("blood/")]
    assert {row["model_decision"] for row in blood} == {"reject"}
    assert float(blood[0]["score"]) > default_model.threshold
    assert rows["empty.png"]["status"] == "empty file"
    assert rows["empty.png"]["final_decision"] == "reject"


def test_overrides_decide_the_export(
    store: ReviewStore, tmp_path: Path, default_model: ReferenceModel
) -> None:
    retina = next(path for path in kept_paths(store, default_model) if path.startswith("r"))
    blood = next(record.relative_path for record in store.records()
                 if record.relative_path.startswith("blood/"))
    store.set_override([retina], Decision.REJECT)
    store.set_override([blood], Decision.KEEP)
    destination = tmp_path / "clean"

    export(store, default_model, destination)

    rows = read_csv(destination / "manifest.csv")
    assert (destination / blood).is_file()
    assert not (destination / retina).exists()
    assert rows[blood]["model_decision"] == "reject"
    assert rows[blood]["final_decision"] == "keep"
    assert rows[blood]["decision_source"] == "curator"
    assert rows[blood]["override_time"].endswith("Z")
    assert rows[retina]["final_decision"] == "reject"


def test_quarantined_files_listed_not_copied(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    rejected = store.relative_paths_to_reject(default_model.fingerprint, default_model.threshold)
    contents = {path: sha256_of(folder / path) for path in rejected}
    list(move_batch(store, rejected, tmp_path / "quarantine"))
    destination = tmp_path / "clean"

    export(store, default_model, destination)

    rows = read_csv(destination / "manifest.csv")
    for path in rejected:
        assert rows[path]["location"] == "quarantine"
        assert rows[path]["exported"] == "false"
        assert rows[path]["sha256"] == contents[path]


def test_non_empty_destination_rejected(
    store: ReviewStore, tmp_path: Path, default_model: ReferenceModel
) -> None:
    destination = tmp_path / "clean"
    destination.mkdir()
    (destination / "notes.txt").write_text("already here")

    with pytest.raises(ValueError, match="is not empty"):
        CleanedSetExport(store, destination, default_model.fingerprint, default_model.threshold)

    assert os.listdir(destination) == ["notes.txt"]


def test_destination_inside_folder_rejected(
    store: ReviewStore, folder: Path, default_model: ReferenceModel
) -> None:
    with pytest.raises(ValueError, match="inside the reviewed folder"):
        CleanedSetExport(store, folder / "clean", default_model.fingerprint, 0.01)


def test_destination_containing_folder_rejected(
    store: ReviewStore, folder: Path, default_model: ReferenceModel
) -> None:
    with pytest.raises(ValueError, match="contains the reviewed folder"):
        CleanedSetExport(store, folder.parent, default_model.fingerprint, 0.01, merge=True)


def test_unscored_model_rejected(store: ReviewStore, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not scored with model"):
        CleanedSetExport(store, tmp_path / "clean", "another-fingerprint", 0.01)


def test_merge_never_overwrites(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    kept = kept_paths(store, default_model)
    destination = tmp_path / "clean"
    (destination / "sub").mkdir(parents=True)
    shutil.copy(folder / kept[0], destination / kept[0])
    (destination / "sub" / "s0001.png").write_bytes(b"another image")
    (destination / "manifest.csv").write_text("an earlier manifest")

    summary = export(store, default_model, destination, merge=True).summary

    rows = read_csv(destination / "manifest (1).csv")
    assert "sub/s0001.png" in kept
    assert (destination / "sub" / "s0001.png").read_bytes() == b"another image"
    assert (destination / "manifest.csv").read_text() == "an earlier manifest"
    assert summary.failed == 1
    assert "sub/s0001.png" in summary.errors[0]
    assert "never overwritten" in summary.errors[0]
    assert summary.errors[0].endswith("To export this version, move that file out of the "
                                      "destination, or export to a new folder.")
    assert rows["sub/s0001.png"]["exported"] == "false"
    assert summary.already_present == 1
    assert rows[kept[0]]["exported"] == "true"
    assert rows[kept[0]]["exported_as"] == kept[0]
    # In the destination: every kept file but the one that failed.
    assert summary.exported == len(kept) - 1
    # Copied by this export: those, but the one that was there already.
    assert summary.added == len(kept) - 2
    assert summary.manifest_json == destination / "manifest (1).json"


def test_merge_rejects_linked_folder(
    store: ReviewStore, tmp_path: Path, default_model: ReferenceModel
) -> None:
    kept = kept_paths(store, default_model)
    destination = tmp_path / "clean"
    elsewhere = tmp_path / "elsewhere"
    destination.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, destination / "sub")

    summary = export(store, default_model, destination, merge=True).summary

    in_sub = [path for path in kept if path.startswith("sub/")]
    assert in_sub
    assert summary.failed == len(in_sub)
    assert all("it is a file or a link, not a folder" in error
               and str(destination / "sub") in error for error in summary.errors)
    assert list(elsewhere.iterdir()) == []
    assert summary.exported == len(kept) - len(in_sub)


def test_link_makes_hard_links(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    destination = tmp_path / "clean"

    summary = export(store, default_model, destination, link=True).summary

    kept = kept_paths(store, default_model)
    assert summary.linked == len(kept)
    for path in kept:
        assert (destination / path).stat().st_ino == (folder / path).stat().st_ino


def test_link_across_devices_copies(
    store: ReviewStore, folder: Path, default_model: ReferenceModel
) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == folder.stat().st_dev:
        pytest.skip("needs /dev/shm on another file system than the temporary folder")
    destination = Path(tempfile.mkdtemp(dir=shm)) / "clean"
    try:
        summary = export(store, default_model, destination, link=True).summary
        kept = kept_paths(store, default_model)
        copied = inventory_by_path(destination)
    finally:
        shutil.rmtree(destination.parent)

    assert summary.linked == 0
    assert summary.exported == len(kept)
    assert "copied instead" in summary.notes[0]
    assert all(copied[path] == sha256_of(folder / path) for path in kept)


def test_changed_file_not_exported(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    changed = kept_paths(store, default_model)[0]
    with (folder / changed).open("ab") as stream:
        stream.write(b"appended after scoring")

    summary = export_cleaned_set(store, tmp_path / "clean", default_model.fingerprint,
                                 default_model.threshold)

    assert summary.failed == 1
    assert "changed since it was scored" in summary.errors[0]
    assert not (tmp_path / "clean" / changed).exists()


def test_cancelled_export_marked_incomplete(
    store: ReviewStore, tmp_path: Path, default_model: ReferenceModel
) -> None:
    destination = tmp_path / "clean"
    job = CleanedSetExport(store, destination, default_model.fingerprint,
                           default_model.threshold)
    files = job.run()
    next(files)
    files.close()

    with (destination / "manifest.json").open(encoding="utf-8") as stream:
        document = json.load(stream)

    assert job.summary.cancelled
    assert document["complete"] is False
    assert len(document["files"]) == 1


@contextlib.contextmanager
def stop_on_return(function: Callable[..., object]) -> Iterator[None]:
    """Raise KeyboardInterrupt, as Ctrl+C and SIGTERM do in the command line, as soon as
    `function` first returns in this thread.

    A Python function is matched by its code object, and a built-in one, such as
    os.link, by identity. The interrupt comes out of that call, so the work the call
    did is done and its caller has not seen the result.
    """
    code = getattr(function, "__code__", None)

    def profile(frame: FrameType, event: str, argument: object) -> None:
        if (event == "return" and frame.f_code is code) or (
                event == "c_return" and argument is function):
            sys.setprofile(None)
            raise KeyboardInterrupt

    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(None)


def exported_files(destination: Path) -> set[str]:
    """Return the relative paths of the files in `destination` other than manifests."""
    return {path for path in inventory_by_path(destination) if not path.startswith("manifest")}


@pytest.mark.parametrize("link", [False, True], ids=["copy", "link"])
def test_stop_after_placing_lists_file(
    store: ReviewStore, tmp_path: Path, default_model: ReferenceModel, link: bool
) -> None:
    destination = tmp_path / "clean"
    job = CleanedSetExport(store, destination, default_model.fingerprint,
                           default_model.threshold, link=link)

    # The stop comes once the first kept file is whole in the destination, before
    # the export has its row.
    with stop_on_return(os.link if link else Placement.place), \
            pytest.raises(KeyboardInterrupt):
        for _ in job.run():
            pass
    rows = read_csv(destination / "manifest.csv")
    with (destination / "manifest.json").open(encoding="utf-8") as stream:
        document = json.load(stream)

    listed = {row["exported_as"] for row in rows.values() if row["exported"] == "true"}
    assert len(exported_files(destination)) == 1
    assert exported_files(destination) == listed
    assert job.summary.exported == 1
    assert job.summary.added == 1
    assert job.summary.linked == int(link)
    assert document["summary"]["exported"] == 1
    assert document["complete"] is False
    for path in listed:
        assert rows[path]["sha256"] == sha256_of(destination / path)


def test_stop_after_finding_present_file(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    destination = tmp_path / "clean"
    for path in kept_paths(store, default_model):
        (destination / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / path, destination / path)
    job = CleanedSetExport(store, destination, default_model.fingerprint,
                           default_model.threshold, merge=True)

    # The stop comes once the first kept file is found in the destination with
    # the same content, before the export has its row.
    with stop_on_return(Placement.place), pytest.raises(KeyboardInterrupt):
        for _ in job.run():
            pass
    with (destination / "manifest.json").open(encoding="utf-8") as stream:
        document = json.load(stream)

    listed = [row for row in document["files"] if row["exported"]]
    assert job.summary.already_present == len(listed)
    assert job.summary.exported == len(listed)
    assert job.summary.added == 0
    assert document["summary"]["already_present"] == len(listed)


def test_files_not_in_review_mark_export_incomplete(
    store: ReviewStore, folder: Path, tmp_path: Path, data_root: Path,
    default_model: ReferenceModel,
) -> None:
    # Files that the last scan did not reach, as after a scan cancelled before them.
    late = [f"late/{name}" for name in write_retina_pngs(data_root, folder / "late", 4,
                                                         prefix="late")]
    backdate(folder)
    destination = tmp_path / "clean"

    summary = export(store, default_model, destination).summary

    with (destination / "manifest.json").open(encoding="utf-8") as stream:
        document = json.load(stream)
    assert document["complete"] is False
    assert not any(row["path"].startswith("late/") for row in document["files"])
    assert not (destination / "late").exists()
    assert document["summary"]["not_reviewed"] == late
    assert summary.not_reviewed == late
    assert not summary.cancelled
    assert not summary.complete
    assert summary.notes[0].startswith(
        f"4 files in {folder} are not in its review, because no scan has scored them: "
        "late/late0000.png, late/late0001.png, late/late0002.png and 1 more.")
    assert "export again with the merge option" in summary.notes[0]

    # Scored, they are exported by a merge, whose manifest is complete again.
    for _ in score_with_cache(store, default_model):
        pass
    merged = export(store, default_model, destination, merge=True).summary

    with (destination / "manifest (1).json").open(encoding="utf-8") as stream:
        document = json.load(stream)
    assert merged.not_reviewed == []
    assert merged.complete
    assert document["complete"] is True
    assert all((destination / path).is_file() for path in late)


def test_manifest_json_types(
    store: ReviewStore, tmp_path: Path, default_model: ReferenceModel
) -> None:
    destination = tmp_path / "clean"
    export(store, default_model, destination)

    with (destination / "manifest.json").open(encoding="utf-8") as stream:
        files = json.load(stream)["files"]

    readable = [row for row in files if row["status"] == "ok"]
    unreadable = [row for row in files if row["status"] != "ok"]
    assert all(isinstance(row["size"], int) for row in files)
    assert all(isinstance(row["score"], float) for row in readable)
    assert all(row["score"] is None for row in unreadable)
    assert all(isinstance(row["exported"], bool) for row in files)


KEEP_ALL = 1e9  # far above any combined score


def scored_store(folder: Path, model: ReferenceModel) -> ReviewStore:
    """Open the review of `folder` and score every file in it."""
    backdate(folder)
    opened = ReviewStore.open(folder)
    for _ in score_with_cache(opened, model):
        pass
    return opened


def retina_pngs_named(data_root: Path, folder: Path, names: list[str]) -> None:
    """Write one RetinaMNIST PNG under each of `names` in `folder`."""
    written = write_retina_pngs(data_root, folder, len(names))
    for old, new in zip(written, names, strict=True):
        os.rename(folder / old, folder / new)


NFC_CAFE = unicodedata.normalize("NFC", "caf\u00e9.png")
NFD_CAFE = unicodedata.normalize("NFD", "caf\u00e9.png")
NFD_CAFE_CAPITAL = unicodedata.normalize("NFD", "CAF\u00c9.png")

# Pairs of names that fold_name makes equal, in the order the export meets them,
# with the difference its note must give.
LOOK_ALIKE_NAMES = {
    "case": ("Photo.png", "photo.png", "case"),
    # The composed spelling keeps its name, although the decomposed one sorts first.
    "normalisation": (NFC_CAFE, NFD_CAFE, "Unicode normalisation"),
    "both": (NFC_CAFE, NFD_CAFE_CAPITAL, "case and Unicode normalisation"),
}


@pytest.mark.parametrize("kind", LOOK_ALIKE_NAMES)
def test_renamed_export_notes_real_difference(
    tmp_path: Path, data_root: Path, default_model: ReferenceModel, kind: str
) -> None:
    first, second, difference = LOOK_ALIKE_NAMES[kind]
    folder = tmp_path / "batch"
    retina_pngs_named(data_root, folder, [first, second])
    destination = tmp_path / "clean"

    with scored_store(folder, default_model) as store:
        job = CleanedSetExport(store, destination, default_model.fingerprint, KEEP_ALL)
        exported = {item.relative_path: item.destination for item in job.run()}

    renamed = second.removesuffix(".png") + " (1).png"
    # Names that differ in normalisation look alike, so the note gives each one's spelling.
    second_named, first_named = ((f"{second} (decomposed, NFD)", f"{first} (composed, NFC)")
                                 if "normalisation" in difference else (second, first))
    assert exported == {first: destination / first, second: destination / renamed}
    assert job.summary.notes == [
        f"{second_named} was exported as {renamed}, because its name differs only in "
        f"{difference} from {first_named}, which was exported before it. The two names "
        "would be one on "
        + {"case": "case-insensitive file systems such as exFAT, NTFS and the default APFS.",
           "normalisation": "file systems that ignore normalisation, such as APFS and HFS+ "
                            "on macOS.",
           "both": "file systems that ignore both, such as the default APFS on macOS."}[kind]
    ]
    assert read_csv(destination / "manifest.csv")[second]["exported_as"] == renamed


def test_merge_notes_name_in_destination(
    tmp_path: Path, data_root: Path, default_model: ReferenceModel
) -> None:
    folder = tmp_path / "batch"
    retina_pngs_named(data_root, folder, [NFC_CAFE])
    destination = tmp_path / "clean"
    destination.mkdir()
    (destination / NFD_CAFE).write_bytes(b"exported by an earlier run")

    with scored_store(folder, default_model) as store:
        summary = export_cleaned_set(store, destination, default_model.fingerprint, KEEP_ALL,
                                     merge=True)

    renamed = NFC_CAFE.removesuffix(".png") + " (1).png"
    assert summary.exported == 1
    assert len(summary.notes) == 1
    assert summary.notes[0].startswith(
        f"{NFC_CAFE} (composed, NFC) was exported as {renamed}, because its name differs "
        f"only in Unicode normalisation from {NFD_CAFE} (decomposed, NFD), which was in the "
        "destination already.")
    assert (destination / NFD_CAFE).read_bytes() == b"exported by an earlier run"


def test_numbered_long_name_exported_shortened(
    tmp_path: Path, data_root: Path, default_model: ReferenceModel
) -> None:
    # Names of 255 bytes, the NAME_MAX of the file systems the tests run on.
    first, second = "L" * 251 + ".png", "l" * 251 + ".png"
    folder = tmp_path / "batch"
    retina_pngs_named(data_root, folder, [first, second])
    contents = inventory_by_path(folder)
    destination = tmp_path / "clean"

    with scored_store(folder, default_model) as store:
        summary = export_cleaned_set(store, destination, default_model.fingerprint, KEEP_ALL)
        merged = export_cleaned_set(store, destination, default_model.fingerprint, KEEP_ALL,
                                    merge=True)

    renamed = "l" * 247 + " (1).png"
    exported = inventory_by_path(destination)
    assert summary.errors == []
    assert summary.exported == 2
    assert exported[first] == contents[first]
    assert exported[renamed] == contents[second]
    assert len(summary.notes) == 1
    assert summary.notes[0].endswith(
        "The numbered name was shortened to fit the limit of 255 bytes of file names there.")
    # A merge finds the shortened name again and adds no copy.
    assert (merged.added, merged.already_present, merged.errors) == (0, 2, [])
    assert len(exported) == 2 + 4


def test_full_disk_leaves_whole_manifests_only(
    store: ReviewStore, tmp_path: Path, default_model: ReferenceModel
) -> None:
    reference = export(store, default_model, tmp_path / "reference").summary
    assert reference.manifest_csv is not None and reference.manifest_json is not None
    page = os.sysconf("SC_PAGE_SIZE")
    csv_pages = -(-reference.manifest_csv.stat().st_size // page)
    json_pages = -(-reference.manifest_json.stat().st_size // page)
    # The disk keeps room for the CSV manifest only, once every file is exported.
    assert json_pages > csv_pages

    with tmpfs(tmp_path / "small_disk", "4m") as disk:
        destination = disk / "clean"
        job = CleanedSetExport(store, destination, default_model.fingerprint,
                               default_model.threshold, model_name=default_model.name)
        files = job.run()
        for _ in range(job.total):
            next(files)
        free = os.statvfs(disk)
        (disk / "filler").write_bytes(b"\0" * ((free.f_bavail - csv_pages) * free.f_frsize))
        with pytest.raises(ExportError) as failure:
            next(files)
        written = sorted(path.name for path in destination.glob("manifest*"))

    assert str(failure.value) == (
        f"writing the JSON manifest to {destination} failed: no space left on device. "
        "Free some space on that disk, or choose a folder on another disk. Only "
        "manifest.csv was written.")
    assert written == ["manifest.csv"]
    assert job.summary.manifest_csv == destination / "manifest.csv"
    assert job.summary.manifest_json is None


def test_full_disk_stops_export(
    store: ReviewStore, tmp_path: Path, default_model: ReferenceModel
) -> None:
    kept = kept_paths(store, default_model)
    # The disk is full from the first kept file in sub/, so the export makes sub/ for it.
    first_in_sub = kept.index(next(path for path in kept if path.startswith("sub/")))
    with tmpfs(tmp_path / "full_disk", "1m") as disk:
        destination = disk / "clean"
        (destination / "before").mkdir(parents=True)
        job = CleanedSetExport(store, destination, default_model.fingerprint,
                               default_model.threshold, model_name=default_model.name,
                               merge=True)
        files = job.run()
        while next(files).relative_path != kept[first_in_sub - 1]:
            pass
        free = os.statvfs(disk)
        (disk / "filler").write_bytes(b"\0" * (free.f_bavail * free.f_frsize))
        with pytest.raises(ExportError) as failure:
            for _ in files:
                pass
        copied = sorted(path.relative_to(destination).as_posix()
                        for path in destination.rglob("*") if path.is_file())
        folders = sorted(path.relative_to(destination).as_posix()
                         for path in destination.rglob("*") if path.is_dir())

    summary = job.summary
    full = [error for error in summary.errors if "no space left on device" in error]
    assert copied == sorted(kept[:first_in_sub])
    assert len(full) == 1
    assert full[0].startswith(f"Exporting {kept[first_in_sub]} failed: ")
    # Every kept file after the one that found the disk full is skipped, not tried.
    assert summary.skipped_full == kept[first_in_sub + 1:]
    assert summary.skipped_full
    assert summary.failed == 1 + len(summary.skipped_full)
    assert len(summary.errors) == 2
    assert summary.errors[1].startswith(f"{len(summary.skipped_full)} file")
    assert f"not exported, because {destination} is full: " in summary.errors[1]
    # sub/, made for the file that did not fit, is removed. The folder there before stays.
    assert folders == ["before"]
    assert str(failure.value).endswith(
        f"{len(copied)} files were copied into it without a manifest: "
        f"{', '.join(kept[:first_in_sub])}. Remove them, or free some space and export "
        "again with the merge option, which writes the manifests.")


def test_merge_lists_files_left_behind(
    store: ReviewStore, folder: Path, tmp_path: Path, default_model: ReferenceModel
) -> None:
    destination = tmp_path / "clean"
    first = export(store, default_model, destination).summary
    kept = kept_paths(store, default_model)
    rejected, quarantined, *_ = kept
    # Another file at the path of a rejected one is not a copy of it.
    blood = next(record.relative_path for record in store.records()
                 if record.relative_path.startswith("blood/"))
    (destination / blood).parent.mkdir()
    (destination / blood).write_bytes(b"another image")
    store.set_override([rejected, quarantined], Decision.REJECT)
    list(move_batch(store, [quarantined], tmp_path / "quarantine"))
    before = inventory_by_path(destination)

    summary = export(store, default_model, destination, merge=True).summary

    with (destination / "manifest (1).json").open(encoding="utf-8") as stream:
        document = json.load(stream)
    assert first.left_in_destination == []
    assert summary.left_in_destination == [rejected, quarantined]
    assert document["summary"]["left_in_destination"] == [rejected, quarantined]
    assert summary.notes == [
        f"2 files that are rejected or in quarantine now, and so were not exported, are still "
        f"in {destination} from an earlier export, with the same content: {rejected} and "
        f"{quarantined}. They were left there, because nothing is ever deleted; remove them by "
        "hand if the cleaned set should not have them. The JSON manifest lists all of them in "
        "\"left_in_destination\" of its summary."
    ]
    assert document["summary"]["notes"] == summary.notes
    # Nothing is deleted or changed; the merge only adds its manifests.
    after = inventory_by_path(destination)
    del after["manifest (1).csv"], after["manifest (1).json"]
    assert after == before
    assert summary.already_present == len(kept) - 2


def test_merge_names_few_of_many_files_left(
    store: ReviewStore, tmp_path: Path, default_model: ReferenceModel
) -> None:
    destination = tmp_path / "clean"
    export(store, default_model, destination)
    kept = kept_paths(store, default_model)

    summary = export_cleaned_set(store, destination, default_model.fingerprint, 0.0,
                                 merge=True)

    # Every score is above 0, so every file is rejected now.
    assert summary.left_in_destination == kept
    assert summary.notes[0].startswith(
        f"{len(kept)} files that are rejected or in quarantine now, and so were not exported, "
        f"are still in {destination} from an earlier export, with the same content: "
        f"{', '.join(kept[:3])} and {len(kept) - 3} more. They were left there")


def test_repeated_merge_finds_renamed_copy(
    tmp_path: Path, data_root: Path, default_model: ReferenceModel
) -> None:
    folder = tmp_path / "batch"
    retina_pngs_named(data_root, folder, ["Photo.PNG", "photo.png", "other.png"])
    contents = inventory_by_path(folder)
    destination = tmp_path / "clean"

    with scored_store(folder, default_model) as store:
        export_cleaned_set(store, destination, default_model.fingerprint, KEEP_ALL)
        merges = [export_cleaned_set(store, destination, default_model.fingerprint, KEEP_ALL,
                                     merge=True) for _ in range(2)]
        store.set_override(["photo.png"], Decision.REJECT)
        rejected = export_cleaned_set(store, destination, default_model.fingerprint, KEEP_ALL,
                                      merge=True)

    exported = inventory_by_path(destination)
    rows = read_csv(destination / "manifest (2).csv")
    assert {path: digest for path, digest in exported.items()
            if not path.startswith("manifest")} == {
        "Photo.PNG": contents["Photo.PNG"],
        "photo (1).png": contents["photo.png"],
        "other.png": contents["other.png"],
    }
    for summary in merges:
        assert (summary.added, summary.already_present, summary.errors) == (0, 3, [])
        assert summary.notes == [
            "photo.png was there already as photo (1).png, with the same content, so it was "
            "not copied again. Its name differs only in case from Photo.PNG, which was in the "
            "destination already. The two names would be one on case-insensitive file systems "
            "such as exFAT, NTFS and the default APFS."
        ]
    assert rows["photo.png"]["exported"] == "true"
    assert rows["photo.png"]["exported_as"] == "photo (1).png"
    # Once rejected, its earlier copy is one that the export leaves behind.
    assert rejected.left_in_destination == ["photo (1).png"]
    assert rejected.already_present == 2


def test_merge_finds_renamed_copy_beyond_a_gap(
    tmp_path: Path, data_root: Path, default_model: ReferenceModel
) -> None:
    folder = tmp_path / "batch"
    retina_pngs_named(data_root, folder, ["Photo.png", "photo.png"])
    destination = tmp_path / "clean"
    destination.mkdir()
    # An earlier export named it photo (2).png, and photo (1).png was removed by
    # hand. photo (3).png is another image.
    shutil.copy(folder / "photo.png", destination / "photo (2).png")
    (destination / "photo (3).png").write_bytes(b"another image")

    with scored_store(folder, default_model) as store:
        summary = export_cleaned_set(store, destination, default_model.fingerprint, KEEP_ALL,
                                     merge=True)

    rows = read_csv(destination / "manifest.csv")
    assert sorted(os.listdir(destination)) == [
        "Photo.png", "manifest.csv", "manifest.json", "photo (2).png", "photo (3).png"]
    assert (summary.added, summary.already_present) == (1, 1)
    assert rows["photo.png"]["exported_as"] == "photo (2).png"
    assert (destination / "photo (3).png").read_bytes() == b"another image"


def test_link_fallback_per_file_system(
    tmp_path: Path, data_root: Path, default_model: ReferenceModel
) -> None:
    folder = tmp_path / "batch"
    write_retina_pngs(data_root, folder, 4)
    destination = tmp_path / "clean"
    # Sorted first, so the first link tried crosses file systems.
    with tmpfs(folder / "a_mount", "4m") as mount:
        mounted = write_retina_pngs(data_root, mount, 3, prefix="m")
        with scored_store(folder, default_model) as store:
            summary = export_cleaned_set(store, destination, default_model.fingerprint,
                                         KEEP_ALL, link=True)
        inodes = {path: (folder / path).stat().st_ino for path in inventory_by_path(folder)}
        contents = inventory_by_path(folder)

    copied = [f"a_mount/{name}" for name in mounted]
    exported = inventory_by_path(destination)
    assert summary.errors == []
    assert summary.exported == 7
    assert summary.linked == 4
    for path, inode in inodes.items():
        assert exported[path] == contents[path]
        assert ((destination / path).stat().st_ino == inode) is (path not in copied), path
    assert summary.notes == [
        f"3 files from {folder / 'a_mount'} were copied instead of hard-linked, because "
        f"{folder / 'a_mount'} is on another file system than {destination} (Invalid "
        "cross-device link)."
    ]


def test_full_disk_leaves_no_empty_copies(
    store: ReviewStore, tmp_path: Path, default_model: ReferenceModel
) -> None:
    with tmpfs(tmp_path / "full_disk", "1m") as disk:
        destination = disk / "clean"
        job = CleanedSetExport(store, destination, default_model.fingerprint,
                               default_model.threshold, model_name=default_model.name)
        files = job.run()
        next(files)
        free = os.statvfs(disk)
        (disk / "filler").write_bytes(b"\0" * (free.f_bavail * free.f_frsize))
        with pytest.raises(ExportError):
            for _ in files:
                pass
        sizes = {path.name: path.stat().st_size for path in destination.rglob("*")
                 if path.is_file()}

    assert job.summary.failed >= 6
    # The first copy that does not fit fails, and the files after it are skipped.
    assert "no space left on device" in job.summary.errors[0]
    assert " is full: " in job.summary.errors[1]
    # Each copy that did not fit was removed, not left behind empty or cut short.
    assert all(size > 0 for size in sizes.values()), sizes
    assert len(sizes) <= 1
