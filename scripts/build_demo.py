"""Build the bundled demo folder resources/demo/ from the shared data folder."""

from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

DATA_VARIABLE = "RETINA_CURATOR_DATA"
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "resources" / "demo"
SEED = 20230041

RETINA_COUNT = 100
PBC_SMALL_COUNT = 20
PBC_FULL_COUNT = 10
BCCD_COUNT = 4

# The 28 px images sit in a folder named for retina photos. The full-size files
# arrived later in a batch of their own. Stray blood images sit among the retina
# photos in both, the way misfiled images turn up in a real dataset folder.
SMALL_FOLDER = "retina"
BATCH_FOLDER = "new_batch"
ATTRIBUTION_NAME = "ATTRIBUTION.md"


@dataclass(frozen=True)
class Selection:
    """The source items chosen for the demo, as indices or paths relative to the data root."""

    retina_rows: list[int]
    pbc_small: list[tuple[int, str]]
    pbc_full: list[str]
    bccd: list[str]
    fundus: str = "fundus/wikimedia_retina/retina.jpg"


def choose(data_root: Path, seed: int = SEED) -> Selection:
    """Pick the demo images with a fixed seed, so every build picks the same ones.

    The 28 px and the full-size PBC images come from disjoint rows of the derived
    npz, so no blood cell appears twice.
    """
    rng = np.random.default_rng(seed)
    with np.load(data_root / "medmnist" / "retinamnist.npz") as retina:
        retina_total = len(retina["test_images"])
    with np.load(data_root / "blood" / "pbc_bloodmnist_style_28.npz") as blood:
        pbc_files = [str(name) for name in blood["files"]]

    retina_rows = sorted(int(row) for row in rng.choice(retina_total, RETINA_COUNT, replace=False))
    order = [int(row) for row in rng.permutation(len(pbc_files))]
    small_rows = sorted(order[:PBC_SMALL_COUNT])
    full_rows = sorted(order[PBC_SMALL_COUNT : PBC_SMALL_COUNT + PBC_FULL_COUNT])
    bccd_all = sorted(path.name for path in (data_root / "blood" / "bccd").glob("*.jpg"))
    bccd = sorted(str(name) for name in rng.choice(bccd_all, BCCD_COUNT, replace=False))
    return Selection(
        retina_rows=retina_rows,
        pbc_small=[(row, pbc_files[row]) for row in small_rows],
        pbc_full=[pbc_files[row] for row in full_rows],
        bccd=[f"blood/bccd/{name}" for name in bccd],
    )


def retina_name(row: int) -> str:
    return f"{SMALL_FOLDER}/retinamnist_test_{row:03d}.png"


def pbc_small_name(source: str) -> str:
    return f"{SMALL_FOLDER}/pbc28_{Path(source).stem}.png"


def batch_name(source: str) -> str:
    return f"{BATCH_FOLDER}/{Path(source).name}"


def write_images(data_root: Path, selection: Selection, output: Path) -> None:
    """Write the 28 px arrays as PNG and copy the full-size files byte for byte."""
    (output / SMALL_FOLDER).mkdir(parents=True)
    (output / BATCH_FOLDER).mkdir(parents=True)
    with np.load(data_root / "medmnist" / "retinamnist.npz") as retina:
        test_images = retina["test_images"]
        for row in selection.retina_rows:
            _write_png(test_images[row], output / retina_name(row))
    with np.load(data_root / "blood" / "pbc_bloodmnist_style_28.npz") as blood:
        images = blood["images"]
        for row, source in selection.pbc_small:
            _write_png(images[row], output / pbc_small_name(source))

    expected_md5 = _manifest_md5(data_root)
    for source in [selection.fundus, *selection.pbc_full, *selection.bccd]:
        target = output / batch_name(source)
        shutil.copyfile(data_root / source, target)
        # The manifest records the md5 of each file as it is in its source repository.
        if _md5(target) != expected_md5[source]:
            raise RuntimeError(f"{data_root / source} does not match its md5 in MANIFEST.csv")


def _write_png(array: np.ndarray, path: Path) -> None:
    # PNG is lossless, so the file decodes to exactly the array's pixels.
    Image.fromarray(array, "RGB").save(path, format="PNG", optimize=True)


def _manifest_md5(data_root: Path) -> dict[str, str]:
    with open(data_root / "MANIFEST.csv", newline="", encoding="utf-8") as manifest:
        return {row["file"]: row["md5"] for row in csv.DictReader(manifest)}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def attribution_text(selection: Selection) -> str:
    """Render ATTRIBUTION.md: the layout, then each source's files, citation and licence."""
    rows = textwrap.fill(
        ", ".join(str(row) for row in selection.retina_rows),
        width=84,
        initial_indent="  ",
        subsequent_indent="  ",
    )
    small = "\n".join(
        f"| `{pbc_small_name(source)}` | {row} | `{Path(source).relative_to('blood/pbc')}` |"
        for row, source in selection.pbc_small
    )
    full = _copy_table(selection.pbc_full, "blood/pbc")
    bccd = _copy_table(selection.bccd, "blood/bccd")
    return _TEMPLATE.format(
        seed=SEED,
        retina_count=RETINA_COUNT,
        retina_total=len(selection.retina_rows) + 1,
        retina_rows=rows,
        small_count=len(selection.pbc_small),
        full_count=len(selection.pbc_full),
        bccd_count=len(selection.bccd),
        not_retina=len(selection.pbc_small) + len(selection.pbc_full) + len(selection.bccd),
        small_table=small,
        full_table=full,
        bccd_table=bccd,
        fundus=batch_name(selection.fundus),
    )


def _copy_table(sources: list[str], source_folder: str) -> str:
    lines = ["| demo file | source image |", "|---|---|"]
    for source in sources:
        lines.append(f"| `{batch_name(source)}` | `{Path(source).relative_to(source_folder)}` |")
    return "\n".join(lines)


def build(data_root: Path, output: Path, seed: int = SEED) -> Selection:
    """Build the demo folder at `output`, replacing an earlier build.

    The new folder is assembled beside `output` and swapped in at the end, so a
    failed build leaves the earlier one in place. Raises ValueError if `output`
    exists but does not look like a demo folder, so that no other folder is removed.
    """
    if output.exists() and any(output.iterdir()) and not (output / ATTRIBUTION_NAME).is_file():
        raise ValueError(
            f"{output} is not empty and has no {ATTRIBUTION_NAME}. Choose another --output."
        )
    selection = choose(data_root, seed)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".demo-", dir=output.parent))
    try:
        # mkdtemp makes the folder private (0700), but the demo is shipped for all users.
        staging.chmod(0o755)
        write_images(data_root, selection, staging)
        (staging / ATTRIBUTION_NAME).write_text(attribution_text(selection), encoding="utf-8")
        if output.exists():
            shutil.rmtree(output)
        os.rename(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return selection


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--data-root",
        type=Path,
        default=os.environ.get(DATA_VARIABLE),
        help=f"shared data folder with medmnist/, blood/ and fundus/ (default: ${DATA_VARIABLE})",
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="demo folder to (re)build"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.data_root is None:
        parser.error(f"--data-root is required when {DATA_VARIABLE} is not set")
    data_root = Path(args.data_root)
    if not (data_root / "medmnist" / "retinamnist.npz").is_file():
        parser.error(f"{data_root} has no medmnist/retinamnist.npz; pass the shared data folder")

    build(data_root, args.output)
    size = _folder_bytes(args.output)
    logger.info("Built %s: %.2f MB", args.output, size / 1e6)
    return 0


_TEMPLATE = """\
# Demo images: sources and licences

This folder is what `retina-curator --demo` opens. It imitates a folder of retina
(fundus) photographs into which blood-cell images were saved by mistake:

- `retina/`: {retina_count} RetinaMNIST photos and {small_count} PBC blood cells, all
  28x28 PNG. The blood cells are named `pbc28_<original name>.png`.
- `new_batch/`: a later batch of full-size files under their original names: the
  Wikimedia fundus photograph, {full_count} PBC blood-cell JPEGs and {bccd_count} BCCD
  blood-smear JPEGs.

{retina_total} images are retina photographs and {not_retina} are not.
`scripts/build_demo.py` builds this folder from the project's shared data folder
with seed {seed}. Running it again with the same numpy and Pillow versions writes
the same selection and the same bytes.

## RetinaMNIST (retina, 28x28, derived)

- Files: `retina/retinamnist_test_NNN.png`, {retina_count} files. `NNN` is the row in
  the `test_images` array of `retinamnist.npz` (the official MedMNIST file, md5
  `bd4c0672f1bba3e3a89f0e4e876791e4`). Rows:

{retina_rows}
- Derived: each PNG is one 28x28 RGB array of the test split, written losslessly
  with Pillow. Its pixels equal the array, and nothing was resized.
- Dataset: RetinaMNIST, part of MedMNIST v2/v3. Source dataset: DeepDRiD.
- Citation: Yang et al., *Scientific Data* 10, 41, 2023.
- Licence: CC BY 4.0.

## PBC blood cells (not retina)

PBC_dataset_normal_DIB, Acevedo et al., *Data in Brief* 30 (2020) 105474, Mendeley
Data snkd93bnjr/1. Licence: CC BY 4.0. The JPEGs were taken from the GitHub
repository AuralinACC/Blood-Cell-Classification at commit
ad051f48965967724d849f955f029afb7285c465 (`PBC_dataset_normal_DIB/<class>/`).

### 28x28 PNGs in `retina/` (derived)

Each is one row of `pbc_bloodmnist_style_28.npz`, a file built in the shared data
folder from the PBC JPEGs by the documented BloodMNIST steps: a 200x200 centre crop
at offset `((w-200)//2, (h-200)//2)`, then `PIL.Image.resize((28, 28), BICUBIC)`.
The row was written losslessly as PNG. These are not official BloodMNIST images:
MedMNIST's exact resize method is not published, so the pixels are close to
BloodMNIST's but not identical.

| demo file | npz row | PBC source image (`<class>/<file>`) |
|---|---|---|
{small_table}

### Full-size JPEGs in `new_batch/` (copied byte for byte)

{full_table}

## BCCD blood smears (not retina, copied byte for byte)

{bccd_table}

- Dataset: BCCD Dataset (original data from cosmicad and akshaylamba), from the
  GitHub repository Shenggan/BCCD_Dataset at commit
  d272fb14cdff6e473fafeeeba32aba5f560e9e43 (`BCCD/JPEGImages/`).
- Licence: MIT. The licence notice from the repository's `LICENSE` file:

  > MIT License
  >
  > Copyright (c) 2017 shenggan
  >
  > Permission is hereby granted, free of charge, to any person obtaining a copy
  > of this software and associated documentation files (the "Software"), to deal
  > in the Software without restriction, including without limitation the rights
  > to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
  > copies of the Software, and to permit persons to whom the Software is
  > furnished to do so, subject to the following conditions:
  >
  > The above copyright notice and this permission notice shall be included in all
  > copies or substantial portions of the Software.
  >
  > THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
  > IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
  > FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
  > AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
  > LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
  > OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
  > SOFTWARE.

## Wikimedia fundus photograph (retina, full size, copied byte for byte)

- File: `{fundus}` (1411x1411 JPEG).
- Work: "Fundus photograph of normal left eye", M. Häggström, Wikimedia Commons,
  https://commons.wikimedia.org/wiki/File:Fundus_photograph_of_normal_left_eye.jpg.
- Reference given for it by scikit-image: Häggström, Mikael (2014), "Medical
  gallery of Mikael Häggström 2014", *WikiJournal of Medicine* 1 (2),
  doi:10.15347/wjm/2014.008.
- Licence: CC0 1.0 Universal.
- Taken from the GitHub repository scikit-image/scikit-image at commit
  cd0a3d22b9f359f05618d75d5c7a29b91b4951ca (`src/_skimage2/data/retina.jpg`). The
  docstring of `skimage.data.retina` states the same source and licence.

Every copied file was checked against the md5 recorded for it in the shared data
folder's manifest when this folder was built.
"""


if __name__ == "__main__":
    sys.exit(main())
