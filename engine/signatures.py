"""File signatures, and the PNG header and chunks read without Pillow."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

# File signatures of formats that Pillow may lack a codec for; a file that starts
# like this but cannot be opened is "unsupported", not "not an image".
_CODEC_SIGNATURES = (
    (b"RIFF", 8, b"WEBP", "WebP"),
    (b"", 4, b"ftypavif", "AVIF"),
    (b"", 4, b"ftypheic", "HEIC"),
    (b"", 4, b"ftypmif1", "HEIF"),
    (b"\x00\x00\x00\x0cjP  ", 0, b"", "JPEG 2000"),
)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Files that start like one of these images but cannot be opened are damaged.
IMAGE_SIGNATURES = (
    PNG_SIGNATURE, b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM",
)


def png_size(path: Path) -> tuple[int, int] | None:
    """Return the width and height in the PNG header of the file `path`.

    Returns None for a file that is not a PNG or cannot be read.
    """
    try:
        with path.open("rb") as stream:
            return png_header_size(stream.read(24))
    except OSError:
        return None


def png_header_size(data: bytes) -> tuple[int, int] | None:
    """Return the width and height that PNG bytes declare in their header, if any."""
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def png_has_bad_crc(data: bytes) -> bool:
    """Return True when a complete chunk in `data` fails its CRC-32 check."""
    return not all(intact for _, _, intact in png_chunks(data))


def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes, bool]]:
    """Yield the type, the data and whether the CRC-32 matches, of each complete
    chunk of the PNG bytes `data`, in order, up to the first incomplete one.
    """
    offset = len(PNG_SIGNATURE)
    while offset + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        end = offset + 8 + length
        if end + 4 > len(data):
            return
        (expected,) = struct.unpack_from(">I", data, end)
        body = data[offset + 8 : end]
        yield kind, body, zlib.crc32(body, zlib.crc32(kind)) == expected
        offset = end + 4


def missing_codec(path: Path) -> str:
    """Return the format, such as "HEIC", whose signature starts the file `path`.

    Only formats that Pillow may lack a codec for are named. For any other file,
    and for one that cannot be read, the result is "".
    """
    try:
        with path.open("rb") as stream:
            head = stream.read(16)
    except OSError:
        return ""
    for prefix, offset, tag, name in _CODEC_SIGNATURES:
        if head.startswith(prefix) and head[offset : offset + len(tag)] == tag:
            return name
    return ""
