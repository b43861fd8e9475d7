"""Tests of the short path for small, plain PNG files, on real MedMNIST images."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from png_files import png_chunk

from engine.conversion import to_rgb
from engine.framing import Framing
from engine.images import Status, load_image
from engine.plainpng import PLAIN_PNG_BYTES, read_plain_png
from engine.signatures import PNG_SIGNATURE, png_chunks

FRAMING = Framing()


@pytest.fixture(scope="module")
def real_images(data_root: Path) -> list[np.ndarray]:
    """RGB RetinaMNIST and grey PneumoniaMNIST test images, 28 px."""
    images: list[np.ndarray] = []
    for name in ("retinamnist", "pneumoniamnist"):
        with np.load(data_root / "medmnist" / f"{name}.npz") as arrays:
            images += list(arrays["test_images"][:40])
    return images


def write_png(path: Path, pixels: np.ndarray, **options: object) -> Path:
    Image.fromarray(pixels).save(path, **options)
    return path


def rewrite_chunks(path: Path, change: Callable[[bytes, bytes], list[tuple[bytes, bytes]]]) -> Path:
    """Rewrite the PNG `path` with each chunk replaced by what `change` returns for it,
    with correct checksums.
    """
    data = path.read_bytes()
    output = bytearray(data[:8])
    for kind, body, _ in png_chunks(data):
        for new_kind, new_body in change(kind, body):
            output += png_chunk(new_kind, new_body)
    path.write_bytes(bytes(output))
    return path


def test_real_pngs_read_like_pillow(tmp_path: Path, real_images: list[np.ndarray]) -> None:
    for number, pixels in enumerate(real_images):
        # Both compression extremes, which change the filters and the IDAT layout.
        level = 9 if number % 2 else 0
        path = write_png(tmp_path / f"{number}.png", pixels, compress_level=level)
        plain = read_plain_png(path)
        assert plain is not None, path
        with Image.open(path) as image:
            assert (plain.mode, plain.size, plain.format) == (image.mode, image.size, "PNG")
            assert np.array_equal(np.asarray(plain), np.asarray(image))


def test_multi_block_image_reads_like_pillow(
    tmp_path: Path, real_images: list[np.ndarray],
) -> None:
    # 160 × 168 RGB rows take 80 808 bytes, more than one stored deflate block of
    # 65 535, and the repeated real image compresses to well under PLAIN_PNG_BYTES.
    pixels = np.tile(real_images[0], (6, 6, 1))[:, :160]
    path = write_png(tmp_path / "tiled.png", pixels)
    assert path.stat().st_size <= PLAIN_PNG_BYTES
    plain = read_plain_png(path)
    assert plain is not None
    assert np.array_equal(np.asarray(plain), pixels)


def test_load_image_matches_full_path(
    tmp_path: Path, real_images: list[np.ndarray],
) -> None:
    for number, pixels in enumerate(real_images[::8]):
        path = write_png(tmp_path / f"{number}.png", pixels)
        loaded = load_image(path, FRAMING)
        with Image.open(path) as image:
            expected = FRAMING.apply(to_rgb(image))
            assert (loaded.width, loaded.height, loaded.format) == (*image.size, "PNG")
        assert loaded.status is Status.OK
        assert np.array_equal(loaded.model_input, expected)
        assert loaded.thumbnail is not None
        assert loaded.thumbnail.shape == (28, 28, 3)


def test_split_image_data_is_read(tmp_path: Path, real_images: list[np.ndarray]) -> None:
    path = write_png(tmp_path / "split.png", real_images[0])

    def split(kind: bytes, body: bytes) -> list[tuple[bytes, bytes]]:
        if kind != b"IDAT":
            return [(kind, body)]
        return [(kind, body[start : start + 100]) for start in range(0, len(body), 100)]

    rewrite_chunks(path, split)
    plain = read_plain_png(path)
    assert plain is not None
    assert np.array_equal(np.asarray(plain), real_images[0])


def _interlaced(kind: bytes, body: bytes) -> list[tuple[bytes, bytes]]:
    return [(kind, body[:12] + b"\x01" if kind == b"IHDR" else body)]


def _text_between_idat(kind: bytes, body: bytes) -> list[tuple[bytes, bytes]]:
    if kind != b"IDAT":
        return [(kind, body)]
    return [(kind, body[:50]), (b"tEXt", b"Comment\x00late"), (kind, body[50:])]


def _short_idat(kind: bytes, body: bytes) -> list[tuple[bytes, bytes]]:
    return [(kind, body[: len(body) // 2] if kind == b"IDAT" else body)]


def _exif(path: Path, rgb: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    write_png(path, rgb, exif=exif)


def _exif_text() -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", "\nexif\n      8\n4d4d002a00000008\n")
    return info


def _turned_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return exif.tobytes()


def _before_idat(kind: bytes, body: bytes) -> Callable[[Path, np.ndarray], Path]:
    """Return a maker of a PNG with the chunk `kind` of data `body` before its image data."""
    def insert(chunk: bytes, data: bytes) -> list[tuple[bytes, bytes]]:
        return [(kind, body), (chunk, data)] if chunk == b"IDAT" else [(chunk, data)]

    return lambda path, rgb: rewrite_chunks(write_png(path, rgb), insert)


def _palette(path: Path, rgb: np.ndarray) -> None:
    Image.fromarray(rgb).convert("P").save(path)


def _sixteen_bit(path: Path, rgb: np.ndarray) -> None:
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(path)


def _bad_checksum(path: Path, rgb: np.ndarray) -> None:
    data = bytearray(write_png(path, rgb).read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncated(path: Path, rgb: np.ndarray) -> None:
    path.write_bytes(write_png(path, rgb).read_bytes()[:-30])


def _noise(path: Path, rgb: np.ndarray) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    write_png(path, noise, compress_level=0)


def _short_stream(path: Path, rgb: np.ndarray) -> None:
    """Write a complete zlib stream of half the rows, its checksum in a chunk of its own."""
    rows = b"".join(b"\0" + row.tobytes() for row in rgb[: len(rgb) // 2])
    stream = zlib.compress(rows)
    header = struct.pack(">IIBBBBB", rgb.shape[1], rgb.shape[0], 8, 2, 0, 0, 0)
    chunks = [(b"IHDR", header), (b"IDAT", stream[:-4]), (b"IDAT", stream[-4:]), (b"IEND", b"")]
    data = bytearray(PNG_SIGNATURE)
    for kind, body in chunks:
        data += png_chunk(kind, body)
    path.write_bytes(bytes(data))


OTHER_FILES: dict[str, Callable[[Path, np.ndarray], object]] = {
    # A palette, transparency, alpha and 16 bits need Pillow's conversions.
    "palette": _palette,
    "transparency": lambda path, rgb: write_png(path, rgb, transparency=(0, 0, 0)),
    "alpha": lambda path, rgb: write_png(path, np.dstack([rgb, rgb[..., :1]])),
    "16-bit": _sixteen_bit,
    # An EXIF orientation, in its own chunk or in a text chunk.
    "exif": _exif,
    "exif text": lambda path, rgb: write_png(path, rgb, pnginfo=_exif_text()),
    # An animation, whose first frame Image.open picks.
    "animation": lambda path, rgb: write_png(
        path, rgb, save_all=True, append_images=[Image.fromarray(255 - rgb)]),
    "interlaced": lambda path, rgb: rewrite_chunks(write_png(path, rgb), _interlaced),
    # Metadata shorter than the standard, which Pillow rejects as truncated.
    "short pHYs": _before_idat(b"pHYs", b"\0\0\0\1"),
    "short gAMA": _before_idat(b"gAMA", b"\0\1"),
    "short cHRM": _before_idat(b"cHRM", bytes(8)),
    "empty sRGB": _before_idat(b"sRGB", b""),
    # Text that Pillow reads as EXIF or XMP data, which may turn the image.
    "exif in text": _before_idat(b"tEXt", b"exif\0" + _turned_exif()),
    "xmp in text": _before_idat(b"tEXt", b'XML:com.adobe.xmp\0<x:xmpmeta xmlns:x="adobe:ns:meta/">'
                                b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                                b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
                                b'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'),
    "bad exif in text": _before_idat(b"tEXt", b"exif\0not exif data"),
    # Pillow stops reading the image data at the first other chunk.
    "text between": lambda path, rgb: rewrite_chunks(write_png(path, rgb), _text_between_idat),
    # Faults that the full path reports with its own status.
    "short stream in two chunks": _short_stream,
    "bad checksum": _bad_checksum,
    "truncated": _truncated,
    "short data": lambda path, rgb: rewrite_chunks(write_png(path, rgb), _short_idat),
    # Too large to gain from the short path.
    "large": _noise,
    "not a PNG": lambda path, rgb: write_png(path, rgb, format="BMP"),
}


@pytest.mark.parametrize("name", OTHER_FILES)
def test_other_pngs_left_to_pillow(
    tmp_path: Path, real_images: list[np.ndarray], name: str,
) -> None:
    path = tmp_path / "image.png"
    OTHER_FILES[name](path, real_images[0])
    assert path.stat().st_size > 0
    assert read_plain_png(path) is None


def test_large_file_left_to_pillow(tmp_path: Path) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    path = write_png(tmp_path / "noise.png", noise, compress_level=0)
    assert path.stat().st_size > PLAIN_PNG_BYTES
    assert read_plain_png(path) is None
    loaded = load_image(path, FRAMING, None)
    assert loaded.status is Status.OK
    assert (loaded.width, loaded.height) == (200, 200)


def test_cut_png_stays_damaged(tmp_path: Path, real_images: list[np.ndarray]) -> None:
    path = write_png(tmp_path / "cut.png", real_images[0])
    path.write_bytes(path.read_bytes()[:-40])
    loaded = load_image(path, FRAMING)
    assert loaded.status is Status.DAMAGED
    assert loaded.model_input is None


@pytest.mark.parametrize("name", ["short pHYs", "short gAMA", "short cHRM", "empty sRGB",
                                  "exif in text", "xmp in text", "bad exif in text",
                                  "short stream in two chunks"])
def test_left_files_keep_full_path_result(
    tmp_path: Path, real_images: list[np.ndarray], name: str,
) -> None:
    # A crop taller than wide shows whether an orientation was applied.
    path = tmp_path / "image.png"
    OTHER_FILES[name](path, np.ascontiguousarray(real_images[0][:, :20]))
    # Only files named .png take the short path, so the copy takes the full one.
    full_path_copy = tmp_path / "copy.jpg"
    full_path_copy.write_bytes(path.read_bytes())

    loaded = load_image(path, FRAMING)
    expected = load_image(full_path_copy, FRAMING)

    assert (loaded.status, loaded.detail) == (expected.status, expected.detail)
    assert (loaded.width, loaded.height) == (expected.width, expected.height)
    if expected.model_input is None:
        assert loaded.model_input is None
    else:
        assert np.array_equal(loaded.model_input, expected.model_input)
