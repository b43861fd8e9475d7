"""File faults from permissions and read-only mounts, met for real by the command line.

Root ignores permission bits, so as root each command runs in a child process as
the unprivileged user curator-test (see fault_files). Every test compares SHA-256
inventories before and after: each input file still exists, byte-identical.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fault_files import (
    contents,
    give_to_user,
    make_read_only,
    run_unprivileged,
    sha256_inventory,
    shared_temp_folder,
    tmpfs,
)
from PIL import Image

from engine.export import CleanedSetExport
from engine.modelfile import ReferenceModel
from engine.quarantine import move_files
from engine.review import ReviewStore
from engine.scorecache import score_with_cache

KEEP_ALL = "1e9"  # far above any combined score
REJECT_ALL = "0"


def fill_folder(folder: Path, data_root: Path) -> None:
    """Write two retina PNGs and copy two blood-cell JPEGs into `folder`."""
    folder.mkdir(parents=True)
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        for index in range(2):
            Image.fromarray(arrays["test_images"][index]).save(folder / f"retina_{index}.png")
    for index, source in enumerate(
        sorted((data_root / "blood" / "pbc" / "neutrophil").glob("*.jpg"))[:2]
    ):
        shutil.copy(source, folder / f"cell_{index}.jpg")


@pytest.fixture
def base(data_root: Path) -> Iterator[Path]:
    """A folder the unprivileged user owns, with `batch/` of four images and `home/`."""
    with shared_temp_folder() as root:
        fill_folder(root / "batch", data_root)
        (root / "home").mkdir()
        give_to_user(root)
        yield root


def cli(base: Path, *arguments: str) -> tuple[int, str]:
    """Run main.py with `arguments` as the unprivileged user; return the code and stderr."""
    result = run_unprivileged(["main.py", *arguments], home=base / "home")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stderr


def failures(errors: str, action: str) -> list[str]:
    """Return the per-file error lines that the command printed for `action`."""
    lines = errors.splitlines()
    return [
        line
        for line in lines
        if line.startswith(f"{action} ") and not line.startswith(f"{action} failed:")
    ]


def files_under(root: Path) -> list[str]:
    return sorted(key for key in sha256_inventory(root))


# --- read-only source ------------------------------------------------------------


def test_read_only_source_refused_before_moving(base: Path) -> None:
    folder, quarantine = base / "batch", base / "rejected"
    make_read_only(folder)
    before = sha256_inventory(folder)

    code, errors = cli(
        base, "move-rejects", str(folder), "--to", str(quarantine), "--threshold", REJECT_ALL
    )

    assert code == 1
    assert errors.splitlines()[-1] == (
        f"Moving files failed: the folders that hold the 4 files are read-only for this "
        f"user ({folder}), so none of them can be moved out. Make those folders writable, "
        "then move the rejects out again.")
    assert sha256_inventory(folder) == before
    assert not quarantine.exists()


def test_read_only_subfolder_keeps_its_files(base: Path) -> None:
    folder, quarantine = base / "batch", base / "rejected"
    (folder / "sub").mkdir()
    for name in ("cell_0.jpg", "cell_1.jpg"):
        (folder / name).rename(folder / "sub" / name)
    give_to_user(base)
    make_read_only(folder / "sub")
    before = sha256_inventory(folder)

    code, errors = cli(
        base, "move-rejects", str(folder), "--to", str(quarantine), "--threshold", REJECT_ALL
    )

    # The files of the writable folder move; those of the read-only one fail each.
    assert code == 1
    lines = failures(errors, "Moving")
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("Moving sub/cell_")
        assert "failed: permission denied" in line
        assert line.endswith(
            "Check the permissions of the folders named, or choose another folder.")
    assert contents(sha256_inventory(folder, quarantine)) == contents(before)
    # The hard links made before the unlinks failed were removed again.
    assert files_under(quarantine) == ["rejected/retina_0.png", "rejected/retina_1.png"]


def test_read_only_source_scored_and_exported(base: Path) -> None:
    folder = base / "batch"
    make_read_only(folder)
    before = sha256_inventory(folder)

    score_code, score_errors = cli(base, "score", str(folder), "--csv", str(base / "s.csv"))
    export_code, export_errors = cli(
        base, "export", str(folder), "--to", str(base / "clean"), "--threshold", KEEP_ALL
    )

    assert score_code == 0, score_errors
    assert export_code == 0, export_errors
    assert sha256_inventory(folder) == before
    # The review database went to the data folder, not into the read-only folder.
    assert not (folder / ".retina-curator").exists()
    assert list((base / "home" / "data").rglob("*.sqlite"))
    exported = sha256_inventory(base / "clean")
    assert sorted(value for key, value in exported.items() if "manifest" not in key) == sorted(
        before.values()
    )


# --- read-only destination -------------------------------------------------------


def test_read_only_quarantine_keeps_files(base: Path) -> None:
    folder, quarantine = base / "batch", base / "rejected"
    quarantine.mkdir()
    give_to_user(quarantine)
    make_read_only(quarantine)
    before = sha256_inventory(folder)

    code, errors = cli(
        base, "move-rejects", str(folder), "--to", str(quarantine), "--threshold", REJECT_ALL
    )

    assert code == 1
    # Rejected before the scan, rather than file by file.
    assert (f"Moving rejects failed: {quarantine} cannot be written to (read-only, or no "
            "permission). Choose another quarantine folder.") in errors
    assert "permission denied" not in errors
    assert sha256_inventory(folder) == before
    assert files_under(quarantine) == []


def test_unwritable_quarantine_subfolder_kept(base: Path) -> None:
    folder, quarantine = base / "batch", base / "rejected"
    # The images are in batch/sub. The quarantine can be written to, but its
    # subfolder sub, empty before the move, cannot.
    (folder / "sub").mkdir()
    for path in sorted(folder.glob("*.*")):
        path.rename(folder / "sub" / path.name)
    subfolder = quarantine / "sub"
    subfolder.mkdir(parents=True)
    give_to_user(base)
    make_read_only(subfolder)
    inode = os.lstat(subfolder).st_ino
    before = sha256_inventory(folder)

    code, errors = cli(
        base, "move-rejects", str(folder), "--to", str(quarantine), "--threshold", REJECT_ALL
    )

    assert code == 1
    lines = failures(errors, "Moving")
    assert len(lines) == 4, errors
    for line in lines:
        assert "failed: permission denied" in line
    # The same folder, read-only as before: never removed and made again by the user.
    assert os.lstat(subfolder).st_ino == inode
    assert stat.S_IMODE(os.lstat(subfolder).st_mode) == 0o555
    assert sha256_inventory(folder) == before
    assert files_under(quarantine) == []


def test_read_only_export_destination(base: Path) -> None:
    folder, destination = base / "batch", base / "clean"
    destination.mkdir()
    give_to_user(destination)
    make_read_only(destination)
    before = sha256_inventory(folder)

    code, errors = cli(
        base, "export", str(folder), "--to", str(destination), "--threshold", KEEP_ALL
    )

    assert code == 1
    assert (f"Exporting failed: {destination} cannot be written to (read-only, or no "
            "permission). Choose another destination.") in errors
    assert "permission denied" not in errors
    assert sha256_inventory(folder) == before
    assert files_under(destination) == []


def test_read_only_non_empty_destination_not_offered_merge(base: Path) -> None:
    folder, destination = base / "batch", base / "clean"
    destination.mkdir()
    (destination / "earlier.png").write_bytes(b"an earlier export")
    give_to_user(destination)
    make_read_only(destination)

    code, errors = cli(base, "export", str(folder), "--to", str(destination))

    assert code == 1
    assert (f"Exporting failed: {destination} cannot be written to (read-only, or no "
            "permission). Choose another destination.") in errors
    assert "not empty" not in errors
    assert "--merge" not in errors


def test_unwritable_export_parent(base: Path) -> None:
    locked = base / "locked"
    locked.mkdir()
    give_to_user(locked)
    make_read_only(locked)
    before = sha256_inventory(base / "batch")

    code, errors = cli(base, "export", str(base / "batch"), "--to", str(locked / "clean"))

    assert code == 1
    assert (f"Exporting failed: {locked} cannot be written to (read-only, or no "
            "permission). Choose another destination.") in errors
    assert sha256_inventory(base / "batch") == before


# --- unreadable files and folders ------------------------------------------------


def test_unreadable_file_listed_in_csv(base: Path) -> None:
    folder = base / "batch"
    os.chmod(folder / "retina_1.png", 0o000)
    before = sha256_inventory(folder)
    out = base / "scores.csv"

    code, errors = cli(base, "score", str(folder), "--csv", str(out))

    assert code == 0, errors
    with out.open(newline="", encoding="utf-8") as stream:
        rows = {row["path"]: row for row in csv.DictReader(stream)}
    assert sorted(rows) == ["cell_0.jpg", "cell_1.jpg", "retina_0.png", "retina_1.png"]
    assert rows["retina_1.png"]["status"] == "unreadable"
    assert rows["retina_1.png"]["detail"] == "permission denied"
    assert rows["retina_1.png"]["score"] == ""
    assert rows["retina_0.png"]["status"] == "ok"
    assert sha256_inventory(folder) == before


def test_unreadable_folder_fails_score(base: Path) -> None:
    folder = base / "batch"
    os.chmod(folder, 0o300)  # may enter and write, but not list

    code, errors = cli(base, "score", str(folder), "--csv", str(base / "scores.csv"))

    assert code == 1
    assert f"Scoring failed: cannot list {folder}: Permission denied." in errors
    assert "Check the folder's permissions." in errors
    assert not (base / "scores.csv").exists()


def lock_cells(folder: Path) -> Path:
    """Move the blood-cell JPEGs of `folder` into `locked/` and take every permission
    from that subfolder; return it.
    """
    locked = folder / "locked"
    locked.mkdir()
    for name in ("cell_0.jpg", "cell_1.jpg"):
        (folder / name).rename(locked / name)
    give_to_user(folder)
    os.chmod(locked, 0o000)
    return locked


def test_unreadable_subfolder_row_in_csv(base: Path) -> None:
    folder = base / "batch"
    lock_cells(folder)
    before = sha256_inventory(folder)
    out = base / "scores.csv"

    code, errors = cli(base, "score", str(folder), "--csv", str(out))

    assert code == 0, errors
    assert (f"1 folder of {folder} could not be read, so its images are left out: "
            "locked (permission denied).") in errors.splitlines()
    with out.open(newline="", encoding="utf-8") as stream:
        rows = {row["path"]: row for row in csv.DictReader(stream)}
    assert sorted(rows) == ["locked/", "retina_0.png", "retina_1.png"]
    assert rows["locked/"]["status"] == "unreadable"
    assert rows["locked/"]["detail"] == ("permission denied: the folder could not be listed, "
                                         "so its images are not scored and have no rows")
    assert rows["locked/"]["score"] == ""
    assert rows["locked/"]["final_decision"] == ""
    assert sha256_inventory(folder) == before


def test_unreadable_subfolder_fails_export(base: Path) -> None:
    folder, destination = base / "batch", base / "clean"
    lock_cells(folder)
    before = sha256_inventory(folder)

    result = run_unprivileged(
        ["main.py", "export", str(folder), "--to", str(destination), "--threshold", KEEP_ALL],
        home=base / "home")

    note = (f"1 folder of {folder} could not be read, so its images were not exported and "
            "are not in the manifest: locked (permission denied). Once that is fixed, export "
            f"again, merging into {destination}.")
    assert result.returncode == 1, result.stderr
    assert note in result.stdout.splitlines()
    assert result.stderr.splitlines()[-1] == (
        "1 folder could not be read, so its images were not exported; the reason is listed "
        "above.")
    manifest = json.loads((destination / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["summary"]["notes"] == [note]
    assert manifest["summary"]["skipped_folders"] == [
        {"path": "locked", "status": "unreadable", "detail": "permission denied"}]
    assert [row["path"] for row in manifest["files"]] == ["retina_0.png", "retina_1.png"]
    assert files_under(destination) == ["clean/manifest.csv", "clean/manifest.json",
                                        "clean/retina_0.png", "clean/retina_1.png"]
    assert sha256_inventory(folder) == before


def test_unreadable_subfolder_fails_move_rejects(base: Path) -> None:
    folder, quarantine = base / "batch", base / "rejected"
    lock_cells(folder)
    before = sha256_inventory(folder)

    code, errors = cli(
        base, "move-rejects", str(folder), "--to", str(quarantine), "--threshold", REJECT_ALL
    )

    assert code == 1
    assert errors.splitlines()[-1] == (
        "1 folder could not be read, so its images were neither scored nor moved; the reason "
        "is listed above.")
    assert files_under(quarantine) == ["rejected/retina_0.png", "rejected/retina_1.png"]
    assert contents(sha256_inventory(folder, quarantine)) == contents(before)


# --- read-only mounts ------------------------------------------------------------


def test_read_only_mount_as_quarantine(tmp_path: Path, data_root: Path) -> None:
    folder = tmp_path / "batch"
    fill_folder(folder, data_root)
    before = sha256_inventory(folder)
    names = sorted(path.name for path in folder.iterdir())

    with tmpfs(tmp_path / "read_only", "1m", read_only=True) as mount:
        outcomes = list(move_files(folder, names, mount / "rejected"))

    assert [outcome.destination for outcome in outcomes] == [None] * 4
    for outcome in outcomes:
        assert outcome.error is not None
        assert "read-only file system" in outcome.error
        assert outcome.error.endswith("That file system is read-only. Remount it "
                                      "read-write first.")
    assert sha256_inventory(folder) == before


def test_read_only_mount_as_export(
    tmp_path: Path, data_root: Path, default_model: ReferenceModel
) -> None:
    folder = tmp_path / "batch"
    fill_folder(folder, data_root)
    before = sha256_inventory(folder)

    with (
        tmpfs(tmp_path / "read_only", "1m", read_only=True) as mount,
        ReviewStore.open(folder) as store,
    ):
        for _ in score_with_cache(store, default_model):
            pass
        with pytest.raises(ValueError, match="cannot be written to"):
            CleanedSetExport(store, mount, default_model.fingerprint, float(KEEP_ALL),
                             merge=True)

    assert sha256_inventory(folder) == before
