"""PNG chunks for tests that write PNG files byte by byte."""

from __future__ import annotations

import struct
import zlib


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """Return one PNG chunk: its length, type, data and CRC-32."""
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind))))
