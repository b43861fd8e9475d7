"""Tests of the folder listing on generated folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.framing import Framing
from engine.images import Status, load_image
from engine.listing import (
    SkippedFolder,
    describe_skipped_folders,
    list_folder,
    list_images,
    list_relative_images,
    relative_posix,
)

FRAMING = Framing()


def write_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array, mode).save(path)
    return path


def test_list_images_recursive_and_sorted(tmp_path: Path) -> None:
    pixel = np.zeros((2, 2, 3), dtype=np.uint8)
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    write_png(tmp_path / "b" / "two.png", pixel)
    write_png(tmp_path / "one.PNG", pixel)
    write_png(tmp_path / ".hidden" / "skip.png", pixel)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "link").symlink_to(tmp_path / "b", target_is_directory=True)

    found = [path.relative_to(tmp_path).as_posix() for path in list_images(tmp_path)]

    assert found == ["b/two.png", "one.PNG"]


def test_list_relative_images_order(tmp_path: Path) -> None:
    pixel = np.zeros((2, 2, 3), dtype=np.uint8)
    # A separator sorts before "-" and " " part by part, but after them in a string.
    for name in ("a/b.png", "a-b.png", "a b/c.png", "a/c/d.png", "ab.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write_png(tmp_path / name, pixel)

    found = list_relative_images(tmp_path)

    assert found == ["a/b.png", "a/c/d.png", "a b/c.png", "a-b.png", "ab.png"]
    assert [tmp_path / path for path in found] == list_images(tmp_path)


def test_list_images_symlinks(tmp_path: Path) -> None:
    pixel = np.zeros((2, 2, 3), dtype=np.uint8)
    outside = write_png(tmp_path / "outside.png", pixel)
    folder = tmp_path / "folder"
    folder.mkdir()
    inside = write_png(folder / "real.png", pixel)
    (folder / "to_inside.png").symlink_to(inside)
    (folder / "to_outside.png").symlink_to(outside)
    (folder / "broken.png").symlink_to(tmp_path / "absent.png")

    found = [path.name for path in list_images(folder)]

    assert found == ["broken.png", "real.png", "to_outside.png"]
    assert load_image(folder / "broken.png", FRAMING).status is Status.UNREADABLE
    assert load_image(folder / "broken.png", FRAMING).detail == "broken symbolic link"


def test_list_images_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list_images(tmp_path / "absent")


def test_unlistable_subfolder_reported(
    tmp_path: Path, make_too_deep_folder: Callable[[Path, Path], str]
) -> None:
    pixel = np.zeros((2, 2, 3), dtype=np.uint8)
    write_png(tmp_path / "top.png", pixel)
    (tmp_path / "sub").mkdir()
    write_png(tmp_path / "sub" / "inner.png", pixel)
    unlistable = make_too_deep_folder(tmp_path / "sub", tmp_path / "top.png")

    listing = list_folder(tmp_path)

    assert listing.files == ["sub/inner.png", "top.png"]
    assert listing.skipped_folders == [
        SkippedFolder(f"sub/{unlistable}", Status.UNREADABLE, "File name too long")
    ]
    assert list_relative_images(tmp_path) == listing.files


def test_skipped_folders_described() -> None:
    skipped = [SkippedFolder(name, Status.UNREADABLE, "permission denied")
               for name in ("a", "b", "c", "d", "e")]

    one_folder = describe_skipped_folders(skipped[:1], "are left out", Path("/data"))
    two_folders = describe_skipped_folders(skipped[:2], "are not shown")
    four_folders = describe_skipped_folders(skipped[:4], "are not shown")
    five_folders = describe_skipped_folders(skipped, "are not shown")

    assert one_folder == ("1 folder of /data could not be read, so its images are left out: "
                          "a (permission denied).")
    assert two_folders == ("2 folders could not be read, so their images are not shown: "
                           "a (permission denied) and b (permission denied).")
    # Three folders are named, and the others counted.
    assert four_folders.endswith("a (permission denied), b (permission denied), "
                                 "c (permission denied) and 1 other.")
    assert five_folders.endswith("c (permission denied) and 2 others.")


@pytest.mark.parametrize(("path", "root", "expected"), [
    ("/data/set/a/b.png", "/data/set", "a/b.png"),
    ("/data/set/a/b.png", "/data/set/", "a/b.png"),
    ("a/b.png", ".", "a/b.png"),
    # A name that only starts like the root's last part is outside it.
    ("/data/settle/b.png", "/data/set", None),
    ("/data/set", "/data/set", "."),
])
def test_relative_posix_as_relative_to(path: str, root: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            relative_posix(Path(path), Path(root))
        return
    assert relative_posix(Path(path), Path(root)) == expected
    assert relative_posix(path, root) == Path(path).relative_to(root).as_posix()
