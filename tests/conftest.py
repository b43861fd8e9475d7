"""Shared fixtures: the real data folder, the bad-input cases and the default model."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.modelfile import ReferenceModel, load_model
from engine.resources import DEFAULT_MODEL_PATH

DATA_VARIABLE = "RETINA_CURATOR_DATA"


@pytest.fixture(autouse=True)
def user_cache_folder(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $XDG_CACHE_HOME per test, so no test reads or fills the user's thumbnail cache."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The folder of real public images that the tests run on."""
    value = os.environ.get(DATA_VARIABLE)
    if not value:
        pytest.fail(
            f"{DATA_VARIABLE} is not set: point it at the shared data folder "
            "(the one with medmnist/, blood/, fundus/ and other/), as .ci/run does."
        )
    root = Path(value)
    if not (root / "medmnist" / "retinamnist.npz").is_file():
        pytest.fail(f"{DATA_VARIABLE}={root} does not contain medmnist/retinamnist.npz")
    return root


@pytest.fixture(scope="session")
def default_model() -> ReferenceModel:
    """The reference model shipped in resources/."""
    return load_model(DEFAULT_MODEL_PATH)


@pytest.fixture(scope="session")
def cases_root(data_root: Path) -> Path:
    """The folder of bad-input cases that sits beside the data folder."""
    root = data_root.parent / "cases"
    if not (root / "CASES.md").is_file():
        pytest.fail(f"the cases folder {root} (beside the data folder) is missing")
    return root


@pytest.fixture
def symlink_layout(tmp_path: Path, cases_root: Path) -> Path:
    """The symlink case built with real links: `input/` beside `outside/` and `rejected/`.

    The case folder stores each link as a text file with the link's target, because
    copies of the case files may not keep links. The links are made here from that
    text: to a file outside, to a file inside, to a missing file, to a folder
    outside, and to the `rejected/` folder that the tests move rejects into.
    """
    source = cases_root / "layouts" / "symlinks"
    root = tmp_path / "symlinks"
    shutil.copytree(source / "outside", root / "outside")
    (root / "rejected").mkdir()
    folder = root / "input"
    folder.mkdir()
    for entry in sorted((source / "input").iterdir()):
        if entry.is_symlink():
            os.symlink(os.readlink(entry), folder / entry.name)
        elif entry.stat().st_size < 64 and not entry.read_bytes().startswith(b"\x89PNG"):
            os.symlink(entry.read_text(encoding="utf-8").strip(), folder / entry.name)
        else:
            shutil.copy2(entry, folder / entry.name)
    return folder


# A folder name of 250 bytes, so that a chain of a few such folders passes PATH_MAX.
_LONG_FOLDER_NAME = "deep_" + "d" * 245


@pytest.fixture
def make_too_deep_folder() -> Callable[[Path, Path], str]:
    """Return a function that puts a copy of an image at the end of a chain of
    subfolders of a folder, so deep that the last one cannot be listed.

    A path of PATH_MAX bytes or more (4096 on Linux) is rejected by the kernel
    with "File name too long", for root too, so the listing fails as it does for
    a folder without read permission. The chain is built through open folder
    descriptors, because its paths cannot be used. The function returns the
    relative path of the folder that cannot be listed.
    """

    def make(folder: Path, image: Path) -> str:
        limit = os.pathconf(folder, "PC_PATH_MAX")
        length = len(os.fsencode(folder))
        parts: list[str] = []
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            while length < limit:
                os.mkdir(_LONG_FOLDER_NAME, dir_fd=descriptor)
                child = os.open(_LONG_FOLDER_NAME, os.O_RDONLY | os.O_DIRECTORY,
                                dir_fd=descriptor)
                os.close(descriptor)
                descriptor = child
                parts.append(_LONG_FOLDER_NAME)
                length += 1 + len(_LONG_FOLDER_NAME)
            copy = os.open(image.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644,
                           dir_fd=descriptor)
            with os.fdopen(copy, "wb") as stream:
                stream.write(image.read_bytes())
        finally:
            os.close(descriptor)
        return "/".join(parts)

    return make
