"""Helpers for review tests: folders of real images and SHA-256 inventories of files."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from engine.reviewdb import DB_FOLDER_NAME

# The review cache does not trust a score taken within two seconds of the file's
# last modification (see engine.scorestore.RACY_WINDOW_NS), so test files are dated
# an hour back, as files copied into a folder some time ago would be.
AGE_S = 3600


def write_retina_pngs(data_root: Path, folder: Path, count: int, prefix: str = "r") -> list[str]:
    """Write `count` RetinaMNIST train images as PNGs under `folder`; return relative paths."""
    folder.mkdir(parents=True, exist_ok=True)
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        images = arrays["train_images"][:count]
    names = []
    for index, image in enumerate(images):
        name = f"{prefix}{index:04d}.png"
        Image.fromarray(image).save(folder / name)
        names.append(name)
    return names


def copy_blood_jpgs(data_root: Path, folder: Path, count: int) -> list[str]:
    """Copy `count` PBC blood-cell JPEGs into `folder`; return their names."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted((data_root / "blood" / "pbc").glob("*/*.jpg"))[::37][:count]
    for source in sources:
        shutil.copy(source, folder / source.name)
    return [source.name for source in sources]


def backdate(folder: Path, age_s: float = AGE_S) -> None:
    """Set the access and modification times of every file under `folder` to `age_s` ago."""
    moment = time.time() - age_s
    for root, _dirs, files in os.walk(folder):
        for name in files:
            os.utime(Path(root, name), (moment, moment))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def inventory(*roots: Path) -> Counter[str]:
    """Count the files under `roots` by SHA-256, leaving out review databases."""
    found: Counter[str] = Counter()
    for root in roots:
        for path in _files(root):
            found[sha256_of(path)] += 1
    return found


def inventory_by_path(root: Path) -> dict[str, str]:
    """Map each file's relative path under `root` to its SHA-256, leaving out review databases."""
    return {path.relative_to(root).as_posix(): sha256_of(path) for path in _files(root)}


def _files(root: Path) -> list[Path]:
    paths = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if name != DB_FOLDER_NAME]
        for name in files:
            path = Path(folder, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                paths.append(path)
    return paths
