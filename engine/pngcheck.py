"""Checks of a decoded PNG that Pillow leaves out: chunk checksums and missing rows."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from engine.signatures import PNG_SIGNATURE

# Samples in a pixel of each PNG colour type: grey, RGB, palette, grey and alpha, RGBA.
_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}

# The seven passes of an interlaced PNG: first row, first column, row step, column step.
_PASSES = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2),
           (0, 1, 2, 2), (1, 0, 2, 1))

# The file is read, and its image data inflated, this many bytes at a time.
_PIECE = 1 << 20


def check_png_data(path: Path, image: Image.Image) -> None:
    """Raise OSError if the PNG file `path`, which Pillow decoded into `image`, is damaged.

    Pillow checks the checksums of the chunks before the image data only, and a
    compressed stream that ends early, though intact, leaves the rows it lacks
    black. So the checksum of every chunk up to IEND is checked, and when the last
    row that the image data fills is all zero, the data is inflated to count the
    bytes it holds. The error's text names a bad checksum or a truncated file.
    """
    header = b""
    inflater = zlib.decompressobj() if _last_row_empty(image) else None
    inflated = 0
    with path.open("rb") as stream:
        if stream.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
            return
        while len(head := stream.read(8)) == 8:
            length, kind = int.from_bytes(head[:4], "big"), head[4:]
            checksum = zlib.crc32(kind)
            left = length
            while left and (piece := stream.read(min(left, _PIECE))):
                left -= len(piece)
                checksum = zlib.crc32(piece, checksum)
                if kind == b"IHDR":
                    header = piece
                elif kind == b"IDAT" and inflater is not None:
                    inflated += _inflated_size(inflater, piece)
            stored = stream.read(4)
            if left or len(stored) < 4:
                # A file cut after its image data: the rows decide.
                break
            if int.from_bytes(stored, "big") != checksum:
                raise OSError(f"bad chunk checksum in the {kind.decode('latin-1')} chunk")
            if kind == b"IEND":
                break
    if inflater is not None and len(header) == 13 and inflated < _data_size(header):
        raise OSError("image data truncated: fewer rows than the header declares")


def _last_row_empty(image: Image.Image) -> bool:
    """Return whether the last row that a PNG's image data fills is all zero.

    Rows come in order, so when that row contains anything, every row was decoded.
    Interlaced data fills the odd rows last. An animation's frames are other data,
    so for one of them this is False.
    """
    if getattr(image, "n_frames", 1) > 1:
        return False
    width, height = image.size
    row = height - 1
    if image.info.get("interlace"):
        if height < 2:
            return True
        row = height - 1 if height % 2 == 0 else height - 2
    return not np.asarray(image.crop((0, row, width, row + 1))).any()


def _inflated_size(inflater: zlib._Decompress, data: bytes) -> int:
    """Return how many bytes `data` inflates to, inflating at most _PIECE at a time.

    Data past a fault in the stream counts as nothing: Pillow stopped there too.
    """
    size = 0
    try:
        # Data after the end of the stream is not inflated: zlib would keep a copy of
        # all of it, copied again for each piece.
        while data and not inflater.eof:
            size += len(inflater.decompress(data, _PIECE))
            data = inflater.unconsumed_tail
    except zlib.error:
        pass
    return size


def _data_size(header: bytes) -> int:
    """Return the inflated size of the image data that the IHDR chunk's data declares.

    Each row has a filter byte before its pixels. An interlaced image has the rows
    of each of its seven passes, except passes that contain no pixel.
    """
    width, height = int.from_bytes(header[0:4], "big"), int.from_bytes(header[4:8], "big")
    depth, colour, interlace = header[8], header[9], header[12]
    bits = depth * _SAMPLES.get(colour, 1)

    def rows_size(columns: int, rows: int) -> int:
        return 0 if columns <= 0 or rows <= 0 else rows * (1 + (columns * bits + 7) // 8)

    if not interlace:
        return rows_size(width, height)
    return sum(rows_size((width - column + column_step - 1) // column_step,
                         (height - row + row_step - 1) // row_step)
               for row, column, row_step, column_step in _PASSES)
