"""Benchmark folders written from the real images of the shared data folder."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

logger = logging.getLogger(__name__)

SEED = 7

# 28 px arrays: every split of the MedMNIST files, then the BloodMNIST-style PBC cells.
_SMALL_SOURCES = (
    ("medmnist/retinamnist.npz", ("train_images", "val_images", "test_images")),
    ("medmnist/pneumoniamnist.npz", ("train_images", "val_images", "test_images")),
    ("medmnist/breastmnist.npz", ("train_images", "val_images", "test_images")),
    ("blood/pbc_bloodmnist_style_28.npz", ("images",)),
)

# Full-size photos that the large JPEGs are made from, relative to the data root.
_PHOTO_PATTERNS = (
    "fundus/*/*", "blood/pbc/*/*.jpg", "blood/bccd/*.jpg",
    "other/skin_dermoscopy_isic/*.jpg", "other/chest_xray_nih/*.png", "other/photos_skimage/*",
)

# Pixel counts of the large JPEGs, drawn uniformly from this range.
MIN_MEGAPIXELS = 2.0
MAX_MEGAPIXELS = 8.0
JPEG_QUALITY = 90

# Files per subfolder, so a large folder looks like a real dataset of batches.
_FILES_PER_FOLDER = 1000
_MARKER = ".benchmark-folder.json"


def small_arrays(data_root: Path) -> Iterator[np.ndarray]:
    """Yield every 28 px image of the sources as an (28, 28) or (28, 28, 3) uint8 array."""
    for name, keys in _SMALL_SOURCES:
        with np.load(data_root / name) as arrays:
            for key in keys:
                yield from arrays[key]


def write_small_pngs(data_root: Path, folder: Path, count: int) -> list[Path]:
    """Write `count` 28 px PNGs into subfolders of `folder` and return their paths.

    Beyond the number of source images (about 9000), the images repeat rotated by
    quarter turns and mirrored.
    """
    if _is_complete(folder, {"kind": "small", "count": count}):
        return sorted(folder.rglob("*.png"))
    sources = list(small_arrays(data_root))
    paths = []
    for number in range(count):
        variant, index = divmod(number, len(sources))
        pixels = np.rot90(sources[index], k=variant % 4)
        if variant % 8 >= 4:
            pixels = pixels[:, ::-1]
        path = folder / f"part_{number // _FILES_PER_FOLDER:02d}" / f"small_{number:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(pixels)).save(path)
        paths.append(path)
    _mark_complete(folder, {"kind": "small", "count": count})
    return paths


def photo_sources(data_root: Path) -> list[Path]:
    """Return the full-size photos of the data folder, sorted."""
    found = {path for pattern in _PHOTO_PATTERNS for path in data_root.glob(pattern)}
    return sorted(path for path in found if path.suffix.lower() in {".jpg", ".png", ".tif"})


def write_large_jpegs(data_root: Path, folder: Path, count: int) -> list[Path]:
    """Write `count` JPEGs of 2–8 Mpx made from the real photos and return their paths.

    Each photo is cropped to 4:3 (or 3:4) when it is wider (or taller) than that,
    scaled to a pixel count drawn at random and encoded at quality 90. The photos
    are used in turn, so every kind appears.
    """
    if _is_complete(folder, {"kind": "large", "count": count}):
        return sorted(folder.rglob("*.jpg"))
    sources = photo_sources(data_root)
    if not sources:
        raise FileNotFoundError(f"no full-size photos found under {data_root}")
    rng = np.random.default_rng(SEED)
    jobs = [
        (sources[number % len(sources)],
         folder / f"part_{number // _FILES_PER_FOLDER:02d}" / f"large_{number:04d}.jpg",
         float(rng.uniform(MIN_MEGAPIXELS, MAX_MEGAPIXELS)))
        for number in range(count)
    ]
    # Pillow releases the GIL while it resizes and encodes, so two threads help.
    with ThreadPoolExecutor(max_workers=2) as pool:
        paths = list(pool.map(lambda job: _write_large_jpeg(*job), jobs))
    _mark_complete(folder, {"kind": "large", "count": count})
    return paths


def _write_large_jpeg(source: Path, target: Path, megapixels: float) -> Path:
    with Image.open(source) as image:
        rgb = ImageOps.exif_transpose(image).convert("RGB")
    width, height = rgb.size
    aspect = min(max(width / height, 0.75), 4 / 3)
    crop_width = min(width, round(height * aspect))
    crop_height = min(height, round(crop_width / aspect))
    left, top = (width - crop_width) // 2, (height - crop_height) // 2
    rgb = rgb.crop((left, top, left + crop_width, top + crop_height))
    scale = math.sqrt(megapixels * 1e6 / (crop_width * crop_height))
    size = (round(crop_width * scale), round(crop_height * scale))
    target.parent.mkdir(parents=True, exist_ok=True)
    rgb.resize(size, Image.Resampling.BICUBIC).save(target, "JPEG", quality=JPEG_QUALITY)
    return target


def _is_complete(folder: Path, description: dict[str, object]) -> bool:
    """Return True when `folder` contains a finished folder of this description, for reuse."""
    marker = folder / _MARKER
    try:
        return bool(json.loads(marker.read_text()) == description)
    except (OSError, ValueError):
        return False


def _mark_complete(folder: Path, description: dict[str, object]) -> None:
    (folder / _MARKER).write_text(json.dumps(description))
