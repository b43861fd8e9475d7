"""Bad-input cases from real reports, each run on a copy of its input file."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.conversion import BACKGROUND_RGB
from engine.framing import Framing
from engine.images import Status, load_image
from engine.modelfile import ReferenceModel
from engine.scoring import score_folder

REPO = Path(__file__).resolve().parents[2]
# Framing without the margin crop, so pixel checks see the whole picture.
WHOLE = Framing(crop_dark_margins=False)


CopyCase = Callable[[str], Path]


@pytest.fixture
def case(tmp_path: Path, cases_root: Path) -> CopyCase:
    """Return a function that copies one case file into a temporary folder."""
    def copy(name: str) -> Path:
        return Path(shutil.copy2(cases_root / name, tmp_path / name))

    return copy


@pytest.mark.parametrize("name", ["zero.png", "zero.jpg"])
def test_zero_byte_file_is_empty(case: CopyCase, name: str) -> None:
    loaded = load_image(case(name), Framing())

    assert loaded.status is Status.EMPTY
    assert loaded.detail == "empty file (0 bytes)"


def test_extension_mismatch_read_by_content(case: CopyCase) -> None:
    path = case("png_named.jpg")
    with Image.open(path) as image:
        expected = Framing().apply(image.convert("RGB"))

    loaded = load_image(path, Framing())

    assert loaded.status is Status.OK
    assert loaded.format == "PNG"
    assert loaded.model_input is not None
    np.testing.assert_array_equal(loaded.model_input, expected)


def test_sixteen_bit_ramp_rescaled(case: CopyCase) -> None:
    loaded = load_image(case("gray16.png"), WHOLE, thumbnail_size=256)

    assert loaded.thumbnail is not None
    assert 0.45 < loaded.thumbnail.mean() / 255 < 0.55
    columns = loaded.thumbnail[..., 0].mean(axis=0)
    assert columns[0] < columns[len(columns) // 2] < columns[-1]


@pytest.mark.parametrize("name", ["rgba.png", "la.png", "sample_alpha.webp"])
def test_alpha_composited_without_hidden_colour(case: CopyCase, name: str) -> None:
    path = case(name)
    with Image.open(path) as image:
        alpha = np.asarray(image.convert("RGBA"))[..., 3]

    loaded = load_image(path, WHOLE, thumbnail_size=max(alpha.shape))

    assert loaded.thumbnail is not None
    transparent = alpha == 0
    assert (loaded.thumbnail[transparent] == BACKGROUND_RGB).all()


def test_cmyk_matches_reference(case: CopyCase) -> None:
    loaded = load_image(case("cmyk.jpg"), WHOLE, thumbnail_size=128)
    with Image.open(case("cmyk_reference_rgb.png")) as reference:
        expected = np.asarray(reference.convert("RGB"), dtype=np.float64)

    assert loaded.thumbnail is not None
    difference = np.abs(loaded.thumbnail.astype(np.float64) - expected).mean()
    assert difference <= 8


def test_exif_orientation_applied(case: CopyCase) -> None:
    loaded = load_image(case("exif_rotated.jpg"), WHOLE, thumbnail_size=96)

    assert loaded.thumbnail is not None
    height, width = loaded.thumbnail.shape[:2]
    assert (width, height) == (64, 96)
    assert (loaded.width, loaded.height) == (64, 96)
    top_right = loaded.thumbnail[:8, -8:].reshape(-1, 3).mean(axis=0)
    assert top_right[0] > 150
    assert top_right[1] < 100


def test_multipage_tiff_uses_first_page(case: CopyCase) -> None:
    loaded = load_image(case("multipage.tif"), WHOLE, thumbnail_size=64)

    assert loaded.thumbnail is not None
    assert loaded.thumbnail.shape[:2] == (64, 64)
    red, green, blue = loaded.thumbnail.reshape(-1, 3).mean(axis=0)
    assert red > 200
    assert green < 50
    assert blue < 50


def test_decompression_bomb_refused(case: CopyCase) -> None:
    loaded = load_image(case("bomb.png"), Framing())

    assert loaded.status is Status.TOO_LARGE
    assert "declared 50000×50000" in loaded.detail


def test_bomb_scan_stays_small(case: CopyCase) -> None:
    path = case("bomb.png")
    # VmHWM, the peak resident memory, starts again at exec. getrusage's ru_maxrss
    # would keep the peak of pytest, which forked the child.
    program = (
        "import sys\n"
        "from pathlib import Path\n"
        "from engine.framing import Framing\n"
        "from engine.images import load_image\n"
        "def peak_kb():\n"
        "    with open('/proc/self/status') as status:\n"
        "        return int(status.read().split('VmHWM:')[1].split()[0])\n"
        "before = peak_kb()\n"
        "print(load_image(Path(sys.argv[1]), Framing()).status.name)\n"
        "print((peak_kb() - before) // 1024)\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", program, str(path)], cwd=REPO,
        capture_output=True, text=True, check=False, timeout=120,
    )

    status, grown_mb = result.stdout.split()
    assert status == "TOO_LARGE", result.stderr
    assert int(grown_mb) < 100


def test_huge_legal_image_refused_by_policy(case: CopyCase) -> None:
    path = case("huge_warn.png")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_image(path, Framing())

    assert loaded.status is Status.TOO_LARGE
    assert loaded.detail.startswith("too large (100 Mpx")


def test_above_hard_limit_reports_megapixels(case: CopyCase) -> None:
    loaded = load_image(case("huge_error.png"), Framing())

    assert loaded.status is Status.TOO_LARGE
    assert loaded.detail.startswith("too large (182 Mpx")
    assert (loaded.width, loaded.height, loaded.format) == (14000, 13000, "PNG")


def test_webp_scored_like_png(case: CopyCase) -> None:
    loaded = load_image(case("sample.webp"), Framing())

    assert loaded.status is Status.OK
    assert loaded.format == "WEBP"


def test_non_ascii_name_kept(case: CopyCase, default_model: ReferenceModel) -> None:
    path = case("файл_眼.png")

    results = list(score_folder(default_model, path.parent))

    assert [item.relative_path for item in results] == ["файл_眼.png"]
    assert results[0].status is Status.OK
    assert results[0].score is not None


def test_bad_chunk_checksum_is_damaged(case: CopyCase) -> None:
    loaded = load_image(case("bad_crc.png"), Framing())

    assert loaded.status is Status.DAMAGED
    assert loaded.detail == "damaged (bad chunk checksum)"
    assert (loaded.width, loaded.height, loaded.format) == (64, 64, "PNG")



def test_pipe_and_device_never_opened(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    os.mkfifo(folder / "pipe.png")
    (folder / "zeros.jpg").symlink_to("/dev/zero")
    csv_path = tmp_path / "scores.csv"

    # Reading either would block or never end, so the command runs with a timeout.
    finished = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "score", str(folder), "--csv", str(csv_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )

    with csv_path.open(newline="", encoding="utf-8") as stream:
        rows = {row["path"]: row for row in csv.DictReader(stream)}
    assert finished.returncode == 0, finished.stderr
    for name in ("pipe.png", "zeros.jpg"):
        assert rows[name]["status"] == "not an image"
        assert rows[name]["detail"] == "not a regular file (a pipe or a device)"
        assert rows[name]["sha256"] == ""
