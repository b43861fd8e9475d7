"""Tests for moving rejected files into a quarantine folder, on real files and mounts."""

from __future__ import annotations

import hashlib
import logging
import os
import random
import shutil
import stat
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.names import numbered_names
from engine.quarantine import MoveOutcome, default_quarantine_dir, move_files

logger = logging.getLogger(__name__)


# --- helpers ---------------------------------------------------------------------


def _write(path: Path, seed: int, size: int = 4096) -> bytes:
    """Write `size` bytes that differ for every seed, so every file has its own hash."""
    data = random.Random(seed).randbytes(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def _inventory(*roots: Path) -> Counter[str]:
    """Count every file by SHA-256 and every link by its text, under all `roots`."""
    found: Counter[str] = Counter()
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                path = Path(folder, name)
                mode = os.lstat(path).st_mode
                if stat.S_ISLNK(mode):
                    found["link:" + os.readlink(path)] += 1
                elif stat.S_ISREG(mode):
                    found[hashlib.sha256(path.read_bytes()).hexdigest()] += 1
    return found


def _files_under(root: Path) -> list[str]:
    """Relative paths of all non-folder entries under `root`, sorted."""
    names = []
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                names.append(path.relative_to(root).as_posix())
    return sorted(names)


def _move_all(folder: Path, relative_paths: list[str], destination: Path) -> list[MoveOutcome]:
    return list(move_files(folder, relative_paths, destination))


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _mount_tmpfs(mount_point: Path, size: str) -> None:
    """Mount a tmpfs of `size` at `mount_point`, or skip the test with the reason."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root; run the tests as root to cover it")
    mount_point.mkdir(parents=True, exist_ok=True)
    result = _run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)])
    if result.returncode != 0:
        pytest.skip(f"mount -t tmpfs was not permitted here: {result.stderr.strip()}")


def _unmount(mount_point: Path) -> None:
    result = _run(["umount", str(mount_point)])
    assert result.returncode == 0, f"umount {mount_point} failed: {result.stderr}"


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    """Mount points that a test fills; each is unmounted in teardown."""
    mounted: list[Path] = []
    yield mounted
    for mount_point in reversed(mounted):
        _unmount(mount_point)


def _tmpfs(mounts: list[Path], mount_point: Path, size: str) -> Path:
    _mount_tmpfs(mount_point, size)
    mounts.append(mount_point)
    return mount_point


@pytest.fixture
def other_device(tmp_path: Path, mounts: list[Path]) -> Iterator[Path]:
    """A folder on another file system than tmp_path: a fresh tmpfs, else /dev/shm."""
    if os.geteuid() == 0:
        yield _tmpfs(mounts, tmp_path / "other_device", "16m")
        return
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system: needs root for a tmpfs mount, or /dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm))
    yield folder
    shutil.rmtree(folder)


# --- default folder --------------------------------------------------------------


def test_default_quarantine_dir_is_sibling(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    assert default_quarantine_dir(folder) == tmp_path / "batch_rejected"


def test_default_quarantine_dir_relative_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path / ".")
    assert default_quarantine_dir(Path(".")) == tmp_path.parent / f"{tmp_path.name}_rejected"


def test_default_quarantine_dir_root_rejected() -> None:
    with pytest.raises(ValueError, match="root"):
        default_quarantine_dir(Path("/"))


# --- same file system ------------------------------------------------------------


def test_move_keeps_relative_paths(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    destination = tmp_path / "batch_rejected"
    paths = ["a.png", "sub/b.png", "sub/deep/c.jpg"]
    for seed, relative in enumerate(paths):
        _write(folder / relative, seed)
    inodes = {relative: os.lstat(folder / relative).st_ino for relative in paths}
    before = _inventory(folder)

    outcomes = _move_all(folder, paths, destination)

    assert [outcome.error for outcome in outcomes] == [None, None, None]
    assert [outcome.destination for outcome in outcomes] == [destination / p for p in paths]
    assert [outcome.source for outcome in outcomes] == [folder / p for p in paths]
    assert _files_under(folder) == []
    assert _files_under(destination) == sorted(paths)
    assert _inventory(folder, destination) == before
    # Same file system: the file is renamed by a hard link, never copied.
    for relative in paths:
        assert os.lstat(destination / relative).st_ino == inodes[relative]


def test_collision_gets_numbered_suffix(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    destination = tmp_path / "rejected"
    incoming = _write(folder / "sub" / "a.png", 1)
    first = _write(destination / "sub" / "a.png", 2)
    second = _write(destination / "sub" / "a (1).png", 3)
    before = _inventory(folder, destination)

    [outcome] = _move_all(folder, ["sub/a.png"], destination)

    assert outcome.error is None
    assert outcome.destination == destination / "sub" / "a (2).png"
    assert (destination / "sub" / "a (2).png").read_bytes() == incoming
    assert (destination / "sub" / "a.png").read_bytes() == first
    assert (destination / "sub" / "a (1).png").read_bytes() == second
    assert _inventory(folder, destination) == before


def test_collision_with_dangling_link(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    destination = tmp_path / "rejected"
    _write(folder / "a.png", 1)
    destination.mkdir()
    os.symlink("missing-target", destination / "a.png")
    before = _inventory(folder, destination)

    [outcome] = _move_all(folder, ["a.png"], destination)

    assert outcome.destination == destination / "a (1).png"
    assert os.readlink(destination / "a.png") == "missing-target"
    assert _inventory(folder, destination) == before


def test_suffix_goes_before_extension(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    destination = tmp_path / "rejected"
    for name in ("scan.tar.gz", ".hidden"):
        _write(folder / name, 1)
        _write(destination / name, 2)

    outcomes = _move_all(folder, ["scan.tar.gz", ".hidden"], destination)

    # Only the last suffix counts as the extension; a dot file has none.
    assert [outcome.destination for outcome in outcomes] == [
        destination / "scan.tar (1).gz",
        destination / ".hidden (1)",
    ]


def test_case_only_names_do_not_collide(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    destination = tmp_path / "rejected"
    names = ["Photo.png", "photo.png", "PHOTO.PNG"]
    contents = {name: _write(folder / name, seed) for seed, name in enumerate(names)}
    before = _inventory(folder)

    outcomes = _move_all(folder, names, destination)

    # The names must stay distinct on a case-insensitive file system too.
    assert [outcome.destination for outcome in outcomes] == [
        destination / "Photo.png",
        destination / "photo (1).png",
        destination / "PHOTO (2).PNG",
    ]
    for outcome in outcomes:
        assert outcome.destination is not None
        assert outcome.destination.read_bytes() == contents[outcome.relative_path]
    assert _inventory(folder, destination) == before


def test_case_only_collision_with_existing_file(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    destination = tmp_path / "rejected"
    _write(folder / "Straße.PNG", 1)
    _write(destination / "strasse.png", 2)
    before = _inventory(folder, destination)

    [outcome] = _move_all(folder, ["Straße.PNG"], destination)

    # casefold() maps ß to ss, the strictest reading of "same name".
    assert outcome.destination == destination / "Straße (1).PNG"
    assert _inventory(folder, destination) == before


# Stems that make a name of exactly 255 bytes with ".jpg", the NAME_MAX of the
# file systems the tests run on, and the numbered name each must get.
LONG_STEMS = {
    "ascii": ("L" * 251, "L" * 247 + " (1).jpg"),
    # Two bytes per é: 123 of them and " (1).jpg" make 254 bytes, and a 124th
    # would need 256, so the cut falls between two characters.
    "two-byte": ("\u00e9" * 125 + "a", "\u00e9" * 123 + " (1).jpg"),
}


@pytest.mark.parametrize("kind", LONG_STEMS)
def test_numbered_long_name_shortened(tmp_path: Path, kind: str) -> None:
    stem, expected = LONG_STEMS[kind]
    name = f"{stem}.jpg"
    folder = tmp_path / "batch"
    destination = tmp_path / "rejected"
    incoming = _write(folder / name, 1)
    earlier = _write(destination / name, 2)
    before = _inventory(folder, destination)

    [outcome] = _move_all(folder, [name], destination)

    assert len(os.fsencode(name)) == os.pathconf(destination, "PC_NAME_MAX")
    assert outcome.error is None
    assert outcome.destination == destination / expected
    assert len(os.fsencode(expected)) <= 255
    assert (destination / expected).read_bytes() == incoming
    assert (destination / name).read_bytes() == earlier
    assert _inventory(folder, destination) == before


def test_numbered_names_keep_whole_characters() -> None:
    # Three bytes per character: 83 of them and ".png" make 253 bytes. Beside
    # " (1).png" or " (12).png" 82 fit, beside " (100).png" or " (1000).png" 81.
    stem = "\u732b" * 83

    names = list(numbered_names(f"{stem}.png", 255))

    assert names[0] == f"{stem}.png"
    assert names[1] == "\u732b" * 82 + " (1).png"
    assert names[12] == "\u732b" * 82 + " (12).png"
    assert names[100] == "\u732b" * 81 + " (100).png"
    assert names[1000] == "\u732b" * 81 + " (1000).png"
    assert all(len(os.fsencode(name)) <= 255 for name in names[1:])
    assert len(set(names)) == len(names)


def test_numbered_names_without_room_left_whole() -> None:
    # The extension alone fills the limit, so no stem fits, and the name is
    # left for the file system to reject as too long.
    suffix = "." + "x" * 250

    names = numbered_names(f"stem{suffix}", 255)

    assert next(names) == f"stem{suffix}"
    assert next(names) == f"stem (1){suffix}"


@pytest.mark.parametrize(
    "relative_path",
    [
        "../outside.png",  # parent of the reviewed folder
        "sub/../../outside.png",  # leaves after entering a subfolder
        "ABSOLUTE",  # absolute path to the same outside file
        "",  # empty path
        "a\x00.png",  # NUL byte, which os functions raise ValueError for
    ],
)
def test_escaping_path_rejected(tmp_path: Path, relative_path: str) -> None:
    folder = tmp_path / "batch"
    destination = tmp_path / "rejected"
    (folder / "sub").mkdir(parents=True)
    outside = tmp_path / "outside.png"
    _write(outside, 1)
    if relative_path == "ABSOLUTE":
        relative_path = str(outside)
    before = _inventory(tmp_path)

    [outcome] = _move_all(folder, [relative_path], destination)

    assert outcome.destination is None
    assert outcome.error is not None
    assert outcome.error.startswith(f"Moving {relative_path} failed: ")
    assert outcome.error.endswith(".")
    assert outside.is_file()
    assert _inventory(tmp_path) == before
    assert not destination.exists()


def test_linked_folder_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    outside = tmp_path / "outside"
    _write(outside / "target.png", 1)
    folder.mkdir()
    os.symlink(outside, folder / "linked_dir")
    before = _inventory(tmp_path)

    [outcome] = _move_all(folder, ["linked_dir/target.png"], tmp_path / "rejected")

    assert outcome.error == (
        "Moving linked_dir/target.png failed: linked_dir is a link to a folder, "
        "and such links are not followed."
    )
    assert (outside / "target.png").is_file()
    assert _inventory(tmp_path) == before


def test_destination_link_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    destination = tmp_path / "rejected"
    elsewhere = tmp_path / "elsewhere"
    _write(folder / "sub" / "a.png", 1)
    elsewhere.mkdir()
    destination.mkdir()
    os.symlink(elsewhere, destination / "sub")

    [outcome] = _move_all(folder, ["sub/a.png"], destination)

    assert outcome.error is not None
    assert "it is a file or a link, not a folder" in outcome.error
    assert (folder / "sub" / "a.png").is_file()
    assert list(elsewhere.iterdir()) == []


def test_failed_move_removes_nothing_through_link(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    destination = tmp_path / "rejected"
    elsewhere = tmp_path / "elsewhere"
    _write(folder / "sub" / "deep" / "a.png", 1)
    (elsewhere / "deep").mkdir(parents=True)
    destination.mkdir()
    os.symlink(elsewhere, destination / "sub")

    [outcome] = _move_all(folder, ["sub/deep/a.png"], destination)

    assert outcome.error is not None
    assert (elsewhere / "deep").is_dir()
    assert (folder / "sub" / "deep" / "a.png").is_file()


def test_missing_source_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "batch"
    destination = tmp_path / "rejected"
    _write(folder / "present.png", 1)

    with caplog.at_level(logging.DEBUG, logger="engine.quarantine"):
        outcomes = _move_all(folder, ["gone.png", "present.png"], destination)
    levels = [record.levelno for record in caplog.records
              if record.getMessage() == outcomes[0].error]

    assert outcomes[0].destination is None
    assert outcomes[0].error == (
        "Moving gone.png failed: the file was not found "
        "(moved or deleted since the folder was read)."
    )
    # One failure does not stop the batch.
    assert outcomes[1].error is None
    # The caller shows the error, so a warning would repeat it.
    assert levels == [logging.DEBUG]


def test_folder_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    _write(folder / "sub" / "a.png", 1)

    [outcome] = _move_all(folder, ["sub"], tmp_path / "rejected")

    assert outcome.error == "Moving sub failed: it is a folder, and only files are moved."
    assert (folder / "sub" / "a.png").is_file()


def test_links_moved_as_links(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    destination = tmp_path / "rejected"
    outside = tmp_path / "outside"
    _write(outside / "target.png", 1)
    _write(folder / "real.png", 2)
    (outside / "dir").mkdir()
    links = {
        "link_to_outside.png": str(outside / "target.png"),
        "link_to_inside.png": "real.png",
        "broken_link.png": "does-not-exist.png",
        "linked_dir": str(outside / "dir"),
    }
    for name, text in links.items():
        os.symlink(text, folder / name)
    before = _inventory(folder, outside)

    outcomes = _move_all(folder, list(links), destination)

    assert [outcome.error for outcome in outcomes] == [None] * len(links)
    for name, text in links.items():
        assert os.readlink(destination / name) == text
        assert not os.path.lexists(folder / name)
    assert (folder / "real.png").is_file()
    assert _inventory(folder, outside, destination) == before


def test_cancel_between_files(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    destination = tmp_path / "rejected"
    paths = [f"img_{index}.png" for index in range(5)]
    for seed, relative in enumerate(paths):
        _write(folder / relative, seed)
    before = _inventory(folder)

    moves = move_files(folder, paths, destination)
    first = next(moves)
    moves.close()

    assert first.error is None
    assert _files_under(destination) == ["img_0.png"]
    assert _files_under(folder) == paths[1:]
    assert _inventory(folder, destination) == before


# --- other file systems ----------------------------------------------------------


def test_cross_device_move_copies_and_verifies(
    tmp_path: Path, other_device: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "batch"
    destination = other_device / "rejected"
    _write(folder / "a.png", 1, size=3 * 1024 * 1024 + 17)
    _write(folder / "sub" / "b.png", 2)
    os.chmod(folder / "sub" / "b.png", 0o444)
    os.utime(folder / "a.png", ns=(1_500_000_000_123_456_789, 1_600_000_000_987_654_321))
    os.symlink("../a.png", folder / "sub" / "link.png")
    paths = ["a.png", "sub/b.png", "sub/link.png"]
    stats_before = {p: os.lstat(folder / p) for p in paths}
    before = _inventory(folder)
    assert os.stat(folder).st_dev != os.stat(other_device).st_dev

    with caplog.at_level(logging.DEBUG, logger="engine.transfer"):
        outcomes = _move_all(folder, paths, destination)

    assert [outcome.error for outcome in outcomes] == [None, None, None]
    assert any("copying" in message for message in caplog.messages)
    assert _files_under(folder) == []
    assert _files_under(destination) == paths
    assert _inventory(destination) == before
    for relative in ("a.png", "sub/b.png"):
        moved = os.lstat(destination / relative)
        assert moved.st_mtime_ns == stats_before[relative].st_mtime_ns
        assert stat.S_IMODE(moved.st_mode) == stat.S_IMODE(stats_before[relative].st_mode)


def test_cross_device_collision(tmp_path: Path, other_device: Path) -> None:
    folder = tmp_path / "batch"
    destination = other_device / "rejected"
    _write(folder / "a.png", 1)
    existing = _write(destination / "a.png", 2)
    before = _inventory(folder, destination)

    [outcome] = _move_all(folder, ["a.png"], destination)

    assert outcome.destination == destination / "a (1).png"
    assert (destination / "a.png").read_bytes() == existing
    assert _inventory(folder, destination) == before


def test_full_destination_keeps_source(tmp_path: Path, mounts: list[Path]) -> None:
    folder = tmp_path / "batch"
    destination = _tmpfs(mounts, tmp_path / "tiny", "256k")
    _write(folder / "small_1.bin", 1, size=16 * 1024)
    _write(folder / "big.bin", 2, size=1024 * 1024)
    _write(folder / "small_2.bin", 3, size=16 * 1024)
    before = _inventory(folder)

    outcomes = _move_all(folder, ["small_1.bin", "big.bin", "small_2.bin"], destination)

    assert outcomes[0].error is None
    assert outcomes[2].error is None
    assert outcomes[1].destination is None
    assert outcomes[1].error == (
        f"Moving big.bin failed: no space left in {destination}. Free some space there "
        "or choose another quarantine folder."
    )
    assert _files_under(folder) == ["big.bin"]
    # No partial copy of big.bin is left behind.
    assert _files_under(destination) == ["small_1.bin", "small_2.bin"]
    assert _inventory(folder, destination) == before


def test_every_file_too_big_for_destination(tmp_path: Path, mounts: list[Path]) -> None:
    folder = tmp_path / "batch"
    destination = _tmpfs(mounts, tmp_path / "tiny", "64k")
    paths = [f"noise_{index}.png" for index in range(3)]
    for seed, relative in enumerate(paths):
        _write(folder / relative, seed, size=480 * 1024)
    before = _inventory(folder)

    outcomes = _move_all(folder, paths, destination)

    assert all(outcome.error is not None for outcome in outcomes)
    assert _files_under(folder) == paths
    assert _files_under(destination) == []
    assert _inventory(folder) == before


def test_unremovable_source_keeps_one_copy(tmp_path: Path, mounts: list[Path]) -> None:
    source_mount = _tmpfs(mounts, tmp_path / "readonly", "1m")
    folder = source_mount / "batch"
    _write(folder / "a.png", 1)
    result = _run(["mount", "-o", "remount,ro", str(source_mount)])
    assert result.returncode == 0, result.stderr
    destination = tmp_path / "rejected"
    before = _inventory(folder)

    [outcome] = _move_all(folder, ["a.png"], destination)

    # The verified copy is removed again, because the source could not be.
    assert outcome.error is not None
    assert outcome.error.startswith("Moving a.png failed: read-only file system")
    assert _files_under(destination) == []
    assert _inventory(folder) == before
