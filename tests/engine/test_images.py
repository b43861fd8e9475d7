"""Tests of the guarded image loader on generated and real files."""

from __future__ import annotations

import logging
import shutil
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from png_files import png_chunk

from engine.conversion import BACKGROUND_RGB
from engine.framing import Framing
from engine.images import Status, load_image, log_decoder_warnings

FRAMING = Framing()
# An EXIF block whose first directory announces five entries and holds one.
CORRUPT_EXIF = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12\x01\x03\x00"


def write_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array, mode).save(path)
    return path


def test_good_png_gives_input_and_thumbnail(tmp_path: Path) -> None:
    array = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    loaded = load_image(write_png(tmp_path / "good.png", array), FRAMING, thumbnail_size=32)

    assert loaded.status is Status.OK
    assert loaded.model_input is not None
    assert loaded.model_input.shape == (28, 28, 3)
    assert loaded.model_input.dtype == np.uint8
    assert loaded.thumbnail is not None
    assert max(loaded.thumbnail.shape[:2]) == 32
    assert (loaded.width, loaded.height, loaded.format) == (60, 40, "PNG")


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"", Status.EMPTY),  # zero bytes
        (b"just some text, not pixels\n", Status.NOT_IMAGE),  # wrong content
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 20, Status.UNSUPPORTED),  # no HEIC codec
    ],
)
def test_bad_content_gets_status(tmp_path: Path, content: bytes, status: Status) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(content)

    loaded = load_image(path, FRAMING)

    assert loaded.status is status
    assert loaded.model_input is None
    assert loaded.detail


def test_truncated_jpeg_is_damaged(tmp_path: Path, data_root: Path) -> None:
    source = next((data_root / "blood" / "pbc" / "basophil").glob("*.jpg"))
    data = source.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])

    loaded = load_image(path, FRAMING)

    assert loaded.status is Status.DAMAGED
    assert "truncated" in loaded.detail


def test_vanished_file_is_missing(tmp_path: Path) -> None:
    loaded = load_image(tmp_path / "gone.png", FRAMING)

    assert loaded.status is Status.MISSING


def test_alpha_composited_on_background(tmp_path: Path) -> None:
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)
    rgba[..., 1] = 255  # green hidden under alpha 0
    rgba[:, 14:, :] = 200  # right half opaque grey
    path = write_png(tmp_path / "rgba.png", rgba, "RGBA")

    loaded = load_image(path, Framing(crop_dark_margins=False), thumbnail_size=28)

    assert loaded.model_input is not None
    assert loaded.thumbnail is not None
    assert (loaded.model_input[:, :10] == BACKGROUND_RGB).all()
    assert (loaded.thumbnail[:, :10] == BACKGROUND_RGB).all()
    assert loaded.model_input[..., 1].max() <= 200


@pytest.mark.parametrize(("mode", "transparent"), [
    # One transparent colour in place of an alpha channel, as PNG optimisers write.
    ("RGB", (0, 255, 0)),
    ("L", 255),
])
def test_transparent_colour_composited(
    tmp_path: Path, mode: str, transparent: tuple[int, int, int] | int,
) -> None:
    pixels = np.full((28, 28, 3), 200, dtype=np.uint8)
    pixels[:, :14] = (0, 255, 0) if mode == "RGB" else 255
    image = Image.fromarray(pixels).convert(mode)
    path = tmp_path / f"{mode}.png"
    image.save(path, transparency=transparent)

    loaded = load_image(path, Framing(crop_dark_margins=False), thumbnail_size=28)

    assert loaded.model_input is not None
    assert loaded.thumbnail is not None
    assert (loaded.model_input[:, :10] == BACKGROUND_RGB).all()
    assert (loaded.thumbnail[:, :10] == BACKGROUND_RGB).all()
    assert (loaded.model_input[:, 18:] == 200).all()


def write_levels_png(path: Path, levels: np.ndarray, depth: int,
                     transparent: tuple[int, ...]) -> Path:
    """Write `levels`, an array of `depth`-bit values of (rows, columns) for grey or of
    (rows, columns, 3) for RGB, as a PNG with the transparent colour `transparent`.
    Pillow writes no 2- or 4-bit grey and no 16-bit RGB.
    """
    height, width = levels.shape[:2]
    if depth == 16:
        rows = levels.astype(">u2").reshape(height, -1).view(np.uint8)
    else:
        per_byte = 8 // depth
        shifts = np.arange(per_byte)[::-1] * depth
        groups = levels.astype(np.uint8).reshape(height, -1, per_byte)
        rows = (groups << shifts).sum(axis=2).astype(np.uint8)
    data = b"".join(b"\0" + row.tobytes() for row in rows)
    colour = 2 if levels.ndim == 3 else 0

    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0,
                                                  0, 0))
                     + png_chunk(b"tRNS", struct.pack(f">{len(transparent)}H", *transparent))
                     + png_chunk(b"IDAT", zlib.compress(data)) + png_chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(("depth", "opaque", "level"), [
    # The opaque level and the 8-bit level it is read as.
    (1, 0, 0),
    (2, 1, 85),
    (4, 5, 85),
    (16, 30000, 117),
])
def test_transparent_grey_level_composited(
    tmp_path: Path, depth: int, opaque: int, level: int,
) -> None:
    # The largest value, white, is transparent in the left half.
    white = 2**depth - 1
    levels = np.full((32, 32), opaque)
    levels[:, :16] = white
    path = write_levels_png(tmp_path / f"grey{depth}.png", levels, depth, (white,))

    loaded = load_image(path, Framing(crop_dark_margins=False, size=32), thumbnail_size=32)

    assert loaded.status is Status.OK
    assert loaded.model_input is not None
    assert loaded.thumbnail is not None
    assert (loaded.model_input[:, :16] == BACKGROUND_RGB).all()
    assert (loaded.thumbnail[:, :16] == BACKGROUND_RGB).all()
    assert (loaded.model_input[:, 16:] == level).all()


def test_transparent_sixteen_bit_colour_composited(tmp_path: Path) -> None:
    # Left: the transparent colour. Right: a colour whose high bytes are the
    # transparent colour's low bytes, which must stay visible.
    levels = np.empty((32, 32, 3), dtype=np.uint16)
    levels[:, :16] = (0x1234, 0x5678, 0x9ABC)
    levels[:, 16:] = (0x3400, 0x7800, 0xBC00)
    path = write_levels_png(tmp_path / "rgb16.png", levels, 16, (0x1234, 0x5678, 0x9ABC))

    loaded = load_image(path, Framing(crop_dark_margins=False, size=32), thumbnail_size=32)

    assert loaded.model_input is not None
    assert (loaded.model_input[:, :16] == BACKGROUND_RGB).all()
    assert (loaded.model_input[:, 16:] == (0x34, 0x78, 0xBC)).all()


def test_sixteen_bit_grey_is_rescaled(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    path = tmp_path / "gray16.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode == "I;16"

    loaded = load_image(path, Framing(crop_dark_margins=False), thumbnail_size=64)

    assert loaded.thumbnail is not None
    mean = loaded.thumbnail.mean() / 255
    assert 0.45 < mean < 0.55
    assert loaded.thumbnail[0, 0, 0] < loaded.thumbnail[0, -1, 0]


def test_large_jpeg_decoded_at_reduced_scale(data_root: Path) -> None:
    path = data_root / "fundus" / "wikimedia_retina" / "retina.jpg"

    loaded = load_image(path, FRAMING, thumbnail_size=128)

    assert loaded.status is Status.OK
    assert (loaded.width, loaded.height) == (1411, 1411)
    assert loaded.thumbnail is not None
    assert max(loaded.thumbnail.shape[:2]) == 128


def test_real_blood_jpeg_loads(tmp_path: Path, data_root: Path) -> None:
    source = next((data_root / "blood" / "pbc" / "platelet").glob("*.jpg"))
    path = Path(shutil.copy(source, tmp_path / "файл_眼.jpg"))

    loaded = load_image(path, FRAMING)

    assert loaded.status is Status.OK
    assert loaded.format == "JPEG"


# Loads one file in a process whose address space may grow only 150 MB.
_LOAD_WITH_LITTLE_MEMORY = """
import resource, sys
from pathlib import Path
from engine.framing import Framing
from engine.images import load_image
with open("/proc/self/status") as status:
    size = int(status.read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + 150 * 2**20, resource.RLIM_INFINITY))
loaded = load_image(Path(sys.argv[1]), Framing(), None)
print(loaded.status.value, loaded.detail, sep="|")
"""


def test_memory_shortage_gives_status(tmp_path: Path) -> None:
    # 81 Mpx is within the pixel limit, but its decoded pixels take 324 MB.
    path = tmp_path / "large.png"
    Image.new("RGB", (9000, 9000), (90, 40, 20)).save(path)

    result = subprocess.run([sys.executable, "-c", _LOAD_WITH_LITTLE_MEMORY, str(path)],
                            capture_output=True, text=True, check=False,
                            cwd=Path(__file__).resolve().parents[2])

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{Status.TOO_LARGE.value}|not enough memory to decode it"


def test_million_row_image_rejected(tmp_path: Path) -> None:
    # Within the pixel limit, but Pillow keeps a pointer and an allocation per row.
    path = tmp_path / "thin.png"
    Image.new("L", (1, 1_000_001), 200).save(path)

    loaded = load_image(path, FRAMING, None)

    assert loaded.status is Status.TOO_LARGE
    assert loaded.detail == "1 × 1000001 pixels; the limit is 1000000 pixels a side"


def test_decoder_warnings_name_each_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    paths = [tmp_path / "first.jpg", tmp_path / "second.jpg"]
    for path in paths:
        Image.new("RGB", (40, 30), (200, 80, 30)).save(path, exif=CORRUPT_EXIF)

    # catch_warnings restores the filters and warnings.showwarning afterwards.
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING, logger="engine.images"):
        log_decoder_warnings()
        log_decoder_warnings()
        loaded = [load_image(path, FRAMING, None) for path in paths]

    assert [item.status for item in loaded] == [Status.OK, Status.OK]
    assert [record.getMessage() for record in caplog.records] == [
        f"{path}: Corrupt EXIF data.  Expecting to read 12 bytes but only got 4."
        for path in paths]


def test_decoder_warning_logged_once_per_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Pillow warned twice about the directory of this TIFF cut in half.
    whole = tmp_path / "whole.tif"
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(whole, compression="tiff_lzw")
    path = tmp_path / "cut.tif"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])

    with warnings.catch_warnings(), caplog.at_level(logging.WARNING, logger="engine.images"):
        log_decoder_warnings()
        loaded = load_image(path, FRAMING, None)

    assert loaded.status is Status.DAMAGED
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage().startswith(f"{path}: Corrupt EXIF data")


def test_other_warnings_shown_as_before(caplog: pytest.LogCaptureFixture) -> None:
    other_warnings: list[str] = []

    with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
        warnings.showwarning = lambda message, *details: other_warnings.append(str(message))
        log_decoder_warnings()
        warnings.simplefilter("always")
        warnings.warn("raised outside decoding", UserWarning, stacklevel=1)

    assert other_warnings == ["raised outside decoding"]
    assert caplog.records == []


# Peak resident memory is read from VmHWM, which starts again at exec. The
# ru_maxrss of getrusage keeps the peak of the process that forked the child,
# here pytest's.
_LOAD_LARGE_IMAGES = """
import sys
from pathlib import Path
from engine.framing import Framing
from engine.images import load_images

def peak_mb():
    with open("/proc/self/status") as status:
        return int(status.read().split("VmHWM:")[1].split()[0]) // 1024

paths = sorted(Path(sys.argv[1]).iterdir())
before = peak_mb()
loaded = load_images(paths, Framing(), 128)
print(*[item.status.value for item in loaded], peak_mb() - before)
"""


def test_large_images_decoded_one_at_a_time(tmp_path: Path) -> None:
    # Four 40 Mpx PNGs of 2 MB, which load_images splits over two threads. Each
    # takes 160 MB decoded. Decoded two at a time, each with a full copy for its
    # thumbnail, they raised the peak by 600 MB.
    folder = tmp_path / "large"
    folder.mkdir()
    rows = np.linspace(60, 250, 5000, dtype=np.float32)[:, None]
    columns = np.linspace(60, 250, 8000, dtype=np.float32)[None, :]
    level = ((rows + columns) / 2).astype(np.uint8)
    pixels = np.stack([level, level[::-1], np.full_like(level, 90)], axis=2)
    Image.fromarray(pixels).save(folder / "photo0.png", compress_level=1)
    for number in range(1, 4):
        shutil.copy(folder / "photo0.png", folder / f"photo{number}.png")

    result = subprocess.run([sys.executable, "-c", _LOAD_LARGE_IMAGES, str(folder)],
                            capture_output=True, text=True, check=False,
                            cwd=Path(__file__).resolve().parents[2])
    *statuses, grown_mb = result.stdout.split()

    assert result.returncode == 0, result.stderr
    assert statuses == [Status.OK.value] * 4
    assert int(grown_mb) < 450
