"""Tests of the checks that Pillow leaves out of PNG decoding, on written files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from png_files import png_chunk

from engine.framing import Framing
from engine.images import Status, load_image
from engine.plainpng import PLAIN_PNG_BYTES
from engine.signatures import PNG_SIGNATURE

FRAMING = Framing()

# The interlaced passes as the PNG standard lists them: first row, first column,
# row step and column step.
ADAM7 = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2),
         (1, 0, 2, 1)]


def write_rows(path: Path, size: tuple[int, int], kind: tuple[int, int], rows: bytes,
               interlace: int = 0, idat_parts: int = 1) -> Path:
    """Write a PNG of `size` and (bit depth, colour type) `kind` whose image data is
    the filtered `rows`, compressed and split over `idat_parts` chunks.
    """
    width, height = size
    header = struct.pack(">IIBBBBB", width, height, *kind, 0, 0, interlace)
    stream = zlib.compress(rows)
    step = -(-len(stream) // idat_parts)
    parts = [stream[start : start + step] for start in range(0, len(stream), step)]
    palette = png_chunk(b"PLTE", bytes(range(48))) if kind[1] == 3 else b""
    image_data = b"".join(png_chunk(b"IDAT", part) for part in parts)
    path.write_bytes(PNG_SIGNATURE + png_chunk(b"IHDR", header) + palette + image_data
                     + png_chunk(b"IEND", b""))
    return path


def pixel_rows(pixels: np.ndarray) -> bytes:
    """Return the unfiltered rows of an (h, w, 3) uint8 array, a filter byte before each."""
    return b"".join(b"\0" + row.tobytes() for row in pixels)


def zero_rows(size: tuple[int, int], bits: int, interlace: int) -> bytes:
    """Return the image data of an all-zero image with `bits` a pixel, counting the
    rows and columns of each interlaced pass one by one.
    """
    width, height = size
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    data = b""
    for first_row, first_column, row_step, column_step in passes:
        columns = len(range(first_column, width, column_step))
        rows = len(range(first_row, height, row_step))
        if columns and rows:
            data += rows * bytes(1 + (columns * bits + 7) // 8)
    return data


@pytest.fixture(scope="module")
def retina(data_root: Path) -> np.ndarray:
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        image: np.ndarray = arrays["test_images"][7]
    return image


def enlarged(image: np.ndarray, side: int) -> np.ndarray:
    """Return `image` scaled to `side` pixels with some noise, so that it compresses
    to a file too large for the short path.
    """
    scaled = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BICUBIC))
    noise = np.random.default_rng(side).integers(-6, 7, scaled.shape)
    return np.clip(scaled + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("side", "parts"), [(28, 1), (28, 2), (300, 1)])
def test_short_image_data_is_truncated(
    tmp_path: Path, retina: np.ndarray, side: int, parts: int,
) -> None:
    # A complete stream of half the rows, which Pillow decodes with the rest black:
    # a 28 px file that the short path reads, and a 300 px one that it does not.
    pixels = retina if side == 28 else enlarged(retina, side)
    path = write_rows(tmp_path / "half.png", (side, side), (8, 2),
                      pixel_rows(pixels[: side // 2]), idat_parts=parts)
    assert (path.stat().st_size > PLAIN_PNG_BYTES) == (side > 28)

    loaded = load_image(path, FRAMING)

    assert (loaded.status, loaded.detail) == (Status.DAMAGED, "damaged or truncated")


def test_data_after_short_stream_is_truncated(tmp_path: Path, retina: np.ndarray) -> None:
    # Image data chunks go on after a stream of half the rows has ended: they are
    # read for their checksums but not kept.
    path = write_rows(tmp_path / "half.png", (28, 28), (8, 2), pixel_rows(retina[:14]))
    data = path.read_bytes()
    end = data.index(b"IEND") - 4
    extra = png_chunk(b"IDAT", bytes(range(256)) * 32) * 2000
    path.write_bytes(data[:end] + extra + data[end:])

    loaded = load_image(path, FRAMING)

    assert (loaded.status, loaded.detail) == (Status.DAMAGED, "damaged or truncated")


def test_short_interlaced_data_is_truncated(tmp_path: Path) -> None:
    size = (20, 13)
    full = zero_rows(size, 8, interlace=1)
    path = write_rows(tmp_path / "short.png", size, (8, 0), full[:-20], interlace=1)

    loaded = load_image(path, FRAMING)

    assert (loaded.status, loaded.detail) == (Status.DAMAGED, "damaged or truncated")


@pytest.mark.parametrize("size", [(1, 1), (5, 3), (8, 8), (13, 7), (30, 2)])
@pytest.mark.parametrize(("kind", "bits"), [
    ((1, 0), 1),  # 1-bit grey
    ((4, 3), 4),  # 4-bit palette
    ((8, 2), 24),  # RGB
    ((16, 6), 64),  # 16-bit RGBA
])
@pytest.mark.parametrize("interlace", [0, 1])
def test_black_images_of_any_layout_are_whole(
    tmp_path: Path, size: tuple[int, int], kind: tuple[int, int], bits: int, interlace: int,
) -> None:
    # All black, so the rows are counted: their number must come out exact.
    path = write_rows(tmp_path / "black.png", size, kind, zero_rows(size, bits, interlace),
                      interlace)

    loaded = load_image(path, FRAMING)

    assert loaded.status is Status.OK, loaded.detail


def test_black_bordered_photo_is_whole(tmp_path: Path, retina: np.ndarray) -> None:
    framed = np.zeros((400, 400, 3), dtype=np.uint8)
    framed[50:350, 50:350] = enlarged(retina, 300)
    path = tmp_path / "framed.png"
    Image.fromarray(framed).save(path)
    assert path.stat().st_size > PLAIN_PNG_BYTES

    assert load_image(path, FRAMING).status is Status.OK


def test_extra_rows_are_ignored(tmp_path: Path, retina: np.ndarray) -> None:
    pixels = np.concatenate([retina, retina[:3]])
    path = write_rows(tmp_path / "extra.png", (28, 28), (8, 2), pixel_rows(pixels))

    loaded = load_image(path, FRAMING)

    assert loaded.status is Status.OK
    reference = load_image(write_rows(tmp_path / "exact.png", (28, 28), (8, 2),
                                      pixel_rows(retina)), FRAMING)
    assert np.array_equal(loaded.model_input, reference.model_input)


@pytest.mark.parametrize("kind", [b"IDAT", b"IEND"])
@pytest.mark.parametrize("side", [28, 300])
def test_bad_checksum_after_header_is_damaged(
    tmp_path: Path, retina: np.ndarray, kind: bytes, side: int,
) -> None:
    pixels = retina if side == 28 else enlarged(retina, side)
    path = write_rows(tmp_path / "image.png", (side, side), (8, 2), pixel_rows(pixels))
    data = bytearray(path.read_bytes())
    # The checksum is the last 4 bytes of the chunk; IEND ends the file.
    end = len(data) if kind == b"IEND" else data.index(b"IEND") - 4
    data[end - 1] ^= 0xFF
    path.write_bytes(bytes(data))

    loaded = load_image(path, FRAMING)

    assert (loaded.status, loaded.detail) == (Status.DAMAGED, "damaged (bad chunk checksum)")
