"""Move and export cases from real reports, on copies of the case layouts and real mounts."""

from __future__ import annotations

import csv
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_files import contents, exfat, sha256_inventory, tmpfs

from engine.export import CleanedSetExport
from engine.images import Status
from engine.listing import list_images
from engine.modelfile import ReferenceModel
from engine.moves import move_batch
from engine.quarantine import default_quarantine_dir
from engine.records import Location
from engine.review import ReviewStore
from engine.scorecache import score_with_cache
from engine.undo import undo_last_batch

# Every score is a mean squared error of pixel values in [0, 1], so a threshold of
# 0 rejects every readable file and a threshold of 1 keeps every one.
REJECT_ALL = 0.0
KEEP_ALL = 1e9  # far above any combined score


def copy_layout(cases_root: Path, name: str, folder: Path) -> Path:
    """Copy `layouts/<name>/input` of the cases to `folder` and return `folder`."""
    shutil.copytree(cases_root / "layouts" / name / "input", folder)
    for path in folder.iterdir():
        # The case files are read-only; the copies must be movable like any file.
        os.chmod(path, 0o644)
    return folder


class ReviewStoreOpener:
    """Opens reviews of folders, scored with one model, and closes them all at the end."""

    def __init__(self, model: ReferenceModel) -> None:
        self.model = model
        self._stores: list[ReviewStore] = []

    def __call__(self, folder: Path) -> ReviewStore:
        store = ReviewStore.open(folder)
        self._stores.append(store)
        for _ in score_with_cache(store, self.model):
            pass
        return store

    def rejects(self, store: ReviewStore) -> list[str]:
        return store.relative_paths_to_reject(self.model.fingerprint, REJECT_ALL)

    def close(self) -> None:
        for store in self._stores:
            store.close()


@pytest.fixture
def scored(default_model: ReferenceModel) -> Iterator[ReviewStoreOpener]:
    """Open a folder's review and score it with the shipped model; closed in teardown."""
    opener = ReviewStoreOpener(default_model)
    yield opener
    opener.close()


def locations(store: ReviewStore) -> dict[str, Location]:
    return {record.relative_path: record.location for record in store.records()}


# --- across file systems ---------------------------------------------------------


def test_move_across_file_systems(
    tmp_path: Path, cases_root: Path, scored: ReviewStoreOpener
) -> None:
    # The same batch moved within one file system and onto a tmpfs must end alike.
    local = copy_layout(cases_root, "move_basic", tmp_path / "local")
    remote = copy_layout(cases_root, "move_basic", tmp_path / "remote")
    mtimes = {path.name: path.stat().st_mtime_ns for path in remote.iterdir()}
    before = sha256_inventory(remote)

    with tmpfs(tmp_path / "other_device", "16m") as other_device:
        assert os.stat(other_device).st_dev != os.stat(remote).st_dev
        quarantine = other_device / "rejected"
        local_store, remote_store = scored(local), scored(remote)
        local_outcomes = list(
            move_batch(local_store, scored.rejects(local_store), tmp_path / "local_rejected")
        )
        outcomes = list(move_batch(remote_store, scored.rejects(remote_store), quarantine))
        after = sha256_inventory(remote, quarantine)
        moved_mtimes = {path.name: path.stat().st_mtime_ns for path in quarantine.iterdir()}
        moved = sorted(path.name for path in quarantine.iterdir())

    assert len(outcomes) == 6
    assert [outcome.error for outcome in outcomes] == [None] * 6
    assert [o.relative_path for o in outcomes] == [o.relative_path for o in local_outcomes]
    assert moved == sorted(path.name for path in (tmp_path / "local_rejected").iterdir())
    assert list_images(remote) == []
    assert contents(after) == contents(before)
    assert moved_mtimes == mtimes
    assert set(locations(remote_store).values()) == {Location.QUARANTINE}


# --- destination full ------------------------------------------------------------


def test_full_destination_moves_what_fits(
    tmp_path: Path, cases_root: Path, scored: ReviewStoreOpener
) -> None:
    folder = copy_layout(cases_root, "move_large", tmp_path / "batch")
    before = sha256_inventory(folder)
    store = scored(folder)
    planned = scored.rejects(store)

    # A 1 MB tmpfs as the quarantine folder has room for two of the three ~480 KB files.
    with tmpfs(default_quarantine_dir(folder), "1m") as quarantine:
        outcomes = list(move_batch(store, planned, quarantine))
        after = sha256_inventory(folder, quarantine)
        in_quarantine = sorted(path.name for path in quarantine.iterdir())

    assert planned == ["noise_0.png", "noise_1.png", "noise_2.png"]
    assert [outcome.error is None for outcome in outcomes] == [True, True, False]
    failed = outcomes[2]
    assert failed.error == (
        f"Moving noise_2.png failed: no space left in {quarantine}. Free some space there "
        "or choose another quarantine folder."
    )
    # No partial copy of the third file is left in the quarantine folder.
    assert in_quarantine == ["noise_0.png", "noise_1.png"]
    assert after[f"{folder.name}/noise_2.png"] == before[f"{folder.name}/noise_2.png"]
    assert contents(after) == contents(before)
    assert locations(store) == {
        "noise_0.png": Location.QUARANTINE,
        "noise_1.png": Location.QUARANTINE,
        "noise_2.png": Location.FOLDER,
    }


# --- symbolic links --------------------------------------------------------------


def test_symlink_layout_is_real(symlink_layout: Path) -> None:
    links = sorted(path.name for path in symlink_layout.iterdir() if path.is_symlink())
    assert links == [
        "broken_link.png",
        "link_to_inside.png",
        "link_to_outside.png",
        "link_to_rejected_dir",
        "linked_dir",
    ]
    assert (symlink_layout / "linked_dir").is_dir()
    assert (symlink_layout / "link_to_rejected_dir").is_dir()
    assert not (symlink_layout / "broken_link.png").exists()


def test_symlinks_listed_once_never_followed(
    symlink_layout: Path, scored: ReviewStoreOpener
) -> None:
    store = scored(symlink_layout)
    records = {record.relative_path: record for record in store.records(scored.model.fingerprint)}

    # The inside link's target is listed already, and folder links are not followed.
    assert sorted(records) == ["broken_link.png", "link_to_outside.png", "real.png"]
    assert records["broken_link.png"].status is Status.UNREADABLE
    assert records["broken_link.png"].detail == "broken symbolic link"
    assert records["real.png"].status is Status.OK
    assert records["link_to_outside.png"].status is Status.OK


def test_full_destination_leaves_no_empty_folder(
    tmp_path: Path, cases_root: Path, scored: ReviewStoreOpener
) -> None:
    folder = copy_layout(cases_root, "move_large", tmp_path / "batch")
    (folder / "sub").mkdir()
    (folder / "noise_2.png").rename(folder / "sub" / "noise_2.png")
    store = scored(folder)

    with tmpfs(default_quarantine_dir(folder), "1m") as quarantine:
        outcomes = list(move_batch(store, scored.rejects(store), quarantine))
        in_quarantine = sorted(path.name for path in quarantine.iterdir())

    # The third file found no space after its folder was made for it.
    assert [outcome.error is None for outcome in outcomes] == [True, True, False]
    assert in_quarantine == ["noise_0.png", "noise_1.png"]
    assert (folder / "sub" / "noise_2.png").is_file()


def test_no_folder_left_without_inodes(
    tmp_path: Path, cases_root: Path, scored: ReviewStoreOpener
) -> None:
    folder = copy_layout(cases_root, "move_large", tmp_path / "batch")
    (folder / "b" / "deep").mkdir(parents=True)
    (folder / "noise_1.png").rename(folder / "b" / "deep" / "noise_1.png")
    store = scored(folder)

    # Room for the mount's root and one more entry: "b" fits, "b/deep" does not.
    with tmpfs(default_quarantine_dir(folder), "10m", inodes=2) as quarantine:
        outcomes = list(move_batch(store, scored.rejects(store), quarantine))
        in_quarantine = sorted(path.name for path in quarantine.iterdir())

    assert outcomes[0].relative_path == "b/deep/noise_1.png"
    assert outcomes[0].error is not None
    assert "b" not in in_quarantine
    assert (folder / "b" / "deep" / "noise_1.png").is_file()


def test_symlink_loops_listed_as_unreadable(tmp_path: Path, scored: ReviewStoreOpener) -> None:
    folder = tmp_path / "input"
    folder.mkdir()
    (folder / "self.png").symlink_to("self.png")
    (folder / "a.png").symlink_to("b.png")
    (folder / "b.png").symlink_to("a.png")

    store = scored(folder)
    records = {record.relative_path: record for record in store.records(scored.model.fingerprint)}

    assert sorted(records) == ["a.png", "b.png", "self.png"]
    for record in records.values():
        assert record.status is Status.UNREADABLE
        assert record.detail == "symbolic link loop"


def test_rejected_symlinks_moved_as_links(symlink_layout: Path, scored: ReviewStoreOpener) -> None:
    root = symlink_layout.parent
    outside_before = sha256_inventory(root / "outside")
    outside_stats = {path.name: os.stat(path) for path in (root / "outside").iterdir()}
    before = sha256_inventory(symlink_layout)
    store = scored(symlink_layout)
    planned = scored.rejects(store)

    outcomes = list(move_batch(store, planned, root / "rejected"))

    assert planned == ["broken_link.png", "link_to_outside.png", "real.png"]
    assert [outcome.error for outcome in outcomes] == [None] * 3
    rejected = root / "rejected"
    assert sorted(path.name for path in rejected.iterdir()) == planned
    for name in ("broken_link.png", "link_to_outside.png"):
        assert stat.S_ISLNK(os.lstat(rejected / name).st_mode)
        assert os.readlink(rejected / name) == before[f"input/{name}"].removeprefix("link:")
    # Nothing outside the reviewed folder was moved, deleted or written.
    assert sha256_inventory(root / "outside") == outside_before
    for path in (root / "outside").iterdir():
        assert os.stat(path).st_mtime_ns == outside_stats[path.name].st_mtime_ns
    # The folder links stay where they were, with their targets.
    assert os.readlink(symlink_layout / "linked_dir") == "../outside"
    assert os.readlink(symlink_layout / "link_to_rejected_dir") == "../rejected"

    undone = list(undo_last_batch(store))

    assert [outcome.error for outcome in undone] == [None] * 3
    assert sha256_inventory(symlink_layout) == before
    assert list(rejected.iterdir()) == []


# --- case-insensitive destination ------------------------------------------------


CASE_NAMES = ["PHOTO.PNG", "Photo.png", "photo.png"]


def check_three_distinct(
    destination: Path, arrived: dict[str, Path], source: dict[str, str], folder_name: str
) -> None:
    """Assert that each case file arrived under its own name with its own content."""
    assert sorted(arrived) == CASE_NAMES
    names = [path.name for path in arrived.values()]
    assert len({name.casefold() for name in names}) == 3
    assert set(names) <= set(os.listdir(destination))
    after = sha256_inventory(destination)
    for name, path in arrived.items():
        assert after[f"{destination.name}/{path.name}"] == source[f"{folder_name}/{name}"]


def test_case_only_names_moved_to_exfat(
    tmp_path: Path, cases_root: Path, scored: ReviewStoreOpener
) -> None:
    folder = copy_layout(cases_root, "case_collision", tmp_path / "batch")
    before = sha256_inventory(folder)
    store = scored(folder)

    with exfat(tmp_path / "exfat", tmp_path / "exfat.img") as mount:
        quarantine = mount / "rejected"
        outcomes = list(move_batch(store, scored.rejects(store), quarantine))
        arrived = {o.relative_path: o.destination for o in outcomes if o.destination}
        check_three_distinct(quarantine, arrived, before, folder.name)
        after = sha256_inventory(folder, quarantine)

    assert [outcome.error for outcome in outcomes] == [None] * 3
    assert list_images(folder) == []
    assert contents(after) == contents(before)


def test_case_only_names_exported_to_exfat(
    tmp_path: Path, cases_root: Path, scored: ReviewStoreOpener
) -> None:
    folder = copy_layout(cases_root, "case_collision", tmp_path / "batch")
    before = sha256_inventory(folder)
    store = scored(folder)

    with exfat(tmp_path / "exfat", tmp_path / "exfat.img") as mount:
        destination = mount / "cleaned"
        export = CleanedSetExport(store, destination, scored.model.fingerprint, KEEP_ALL)
        exported = list(export.run())
        arrived = {item.relative_path: item.destination for item in exported if item.destination}
        check_three_distinct(destination, arrived, before, folder.name)
        assert export.summary.manifest_csv is not None
        with export.summary.manifest_csv.open(newline="", encoding="utf-8") as stream:
            rows = {row["path"]: row for row in csv.DictReader(stream)}

    assert [item.error for item in exported] == [None] * 3
    assert export.summary.exported == 3
    assert len(export.summary.notes) == 2
    assert all("differs only in case" in note for note in export.summary.notes)
    for name, path in arrived.items():
        assert rows[name]["exported_as"] == path.name
    # Export copies, so the reviewed folder is unchanged.
    assert sha256_inventory(folder) == before


def test_repeated_merge_to_exfat_adds_no_copies(
    tmp_path: Path, cases_root: Path, scored: ReviewStoreOpener
) -> None:
    folder = copy_layout(cases_root, "case_collision", tmp_path / "batch")
    store = scored(folder)

    with exfat(tmp_path / "exfat", tmp_path / "exfat.img") as mount:
        destination = mount / "cleaned"
        first = CleanedSetExport(store, destination, scored.model.fingerprint, KEEP_ALL)
        arrived = {item.relative_path: item.destination.name
                   for item in first.run() if item.destination}
        merges = []
        for _ in range(2):
            merge = CleanedSetExport(store, destination, scored.model.fingerprint, KEEP_ALL,
                                     merge=True)
            again = {item.relative_path: item.destination.name
                     for item in merge.run() if item.destination}
            merges.append((merge.summary, again))
        names = sorted(name for name in os.listdir(destination)
                       if not name.startswith("manifest"))

    # The two renamed copies of the first export are found under their numbered
    # names, which exFAT lists as it stored them, and none is added.
    assert names == sorted(arrived.values())
    for summary, again in merges:
        assert summary.errors == []
        assert (summary.added, summary.already_present) == (0, 3)
        assert again == arrived
