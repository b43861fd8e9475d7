"""Tests for the bundled demo folder that `--demo` opens."""

from __future__ import annotations

import filecmp
import hashlib
import importlib.util
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from engine.resources import DEMO_DIR

logger = logging.getLogger(__name__)

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_demo.py"
IMAGE_SUFFIXES = {".png", ".jpg"}


def _images(pattern: str) -> list[Path]:
    return sorted(DEMO_DIR.glob(pattern))


def _all_images() -> list[Path]:
    return sorted(p for p in DEMO_DIR.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def build_demo() -> Iterator[ModuleType]:
    """scripts/build_demo.py imported by path, because scripts/ is not a package."""
    spec = importlib.util.spec_from_file_location("build_demo", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses looks the module up in sys.modules while the script runs.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_demo_folder_exists() -> None:
    assert DEMO_DIR.is_dir(), f"{DEMO_DIR} is missing; run scripts/build_demo.py"
    assert (DEMO_DIR / "ATTRIBUTION.md").is_file()


def test_demo_counts() -> None:
    assert len(_images("retina/retinamnist_test_*.png")) == 100
    assert len(_images("retina/pbc28_*.png")) == 20
    assert len(_images("new_batch/BloodImage_*.jpg")) == 4
    assert [p.name for p in _images("new_batch/retina.jpg")] == ["retina.jpg"]
    # The other 10 JPEGs in new_batch/ are the full-size PBC images.
    assert len(_images("new_batch/*.jpg")) == 1 + 4 + 10
    assert len(_all_images()) == 135


def test_demo_has_only_expected_files() -> None:
    files = {p.relative_to(DEMO_DIR).as_posix() for p in DEMO_DIR.rglob("*") if p.is_file()}
    images = {p.relative_to(DEMO_DIR).as_posix() for p in _all_images()}
    assert files - images == {"ATTRIBUTION.md"}


def test_demo_images_open() -> None:
    for path in _all_images():
        with Image.open(path) as image:
            image.load()
            assert image.mode == "RGB", path
            if path.parent.name == "retina":
                assert image.size == (28, 28), path


def test_demo_size_small() -> None:
    total = sum(p.stat().st_size for p in DEMO_DIR.rglob("*") if p.is_file())
    assert total < 3_000_000


def test_demo_files_listed_in_attribution() -> None:
    attribution = (DEMO_DIR / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for path in _all_images():
        relative = path.relative_to(DEMO_DIR).as_posix()
        # RetinaMNIST files are listed as one pattern plus their row numbers.
        if path.name.startswith("retinamnist_test_"):
            row = str(int(path.stem.rsplit("_", 1)[1]))
            assert f" {row}," in attribution or f" {row}\n" in attribution, relative
        else:
            assert f"`{relative}`" in attribution, relative


def test_retina_pngs_equal_test_split(data_root: Path) -> None:
    with np.load(data_root / "medmnist" / "retinamnist.npz") as retina:
        test_images = retina["test_images"]
    for path in _images("retina/retinamnist_test_*.png"):
        row = int(path.stem.rsplit("_", 1)[1])
        with Image.open(path) as image:
            assert np.array_equal(np.asarray(image), test_images[row]), path


def test_full_size_files_byte_identical(data_root: Path) -> None:
    originals = {p.name: p for p in (data_root / "blood" / "pbc").glob("*/*.jpg")}
    originals.update({p.name: p for p in (data_root / "blood" / "bccd").glob("*.jpg")})
    originals["retina.jpg"] = data_root / "fundus" / "wikimedia_retina" / "retina.jpg"
    for path in _images("new_batch/*.jpg"):
        assert path.name in originals, f"{path.name} has no source in {data_root}"
        assert _sha256(path) == _sha256(originals[path.name]), path


def test_build_reproduces_demo(build_demo: ModuleType, data_root: Path, tmp_path: Path) -> None:
    output = tmp_path / "demo"

    build_demo.build(data_root, output)

    comparison = filecmp.dircmp(output, DEMO_DIR)
    assert comparison.left_only == []
    assert comparison.right_only == []
    for folder in ("retina", "new_batch"):
        names = sorted(p.name for p in (DEMO_DIR / folder).iterdir())
        _, mismatch, errors = filecmp.cmpfiles(output / folder, DEMO_DIR / folder, names, False)
        assert mismatch == [], f"rebuilt {folder}/ differs; rerun scripts/build_demo.py"
        assert errors == []
    assert (output / "ATTRIBUTION.md").read_text() == (DEMO_DIR / "ATTRIBUTION.md").read_text()


def test_build_rejects_unrelated_folder(
    build_demo: ModuleType, data_root: Path, tmp_path: Path
) -> None:
    unrelated = tmp_path / "photos"
    (unrelated / "keep.txt").parent.mkdir()
    (unrelated / "keep.txt").write_text("not a demo folder")

    with pytest.raises(ValueError, match=r"has no ATTRIBUTION\.md"):
        build_demo.build(data_root, unrelated)

    assert (unrelated / "keep.txt").read_text() == "not a demo folder"
