"""Guarded image intake: any file becomes a model input and a thumbnail, or a status."""

from __future__ import annotations

import contextlib
import enum
import errno
import logging
import os
import re
import stat
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from engine.conversion import to_rgb, turn_upright
from engine.framing import Framing
from engine.plainpng import PLAIN_PNG_BYTES, read_plain_png
from engine.pngcheck import check_png_data
from engine.signatures import (
    IMAGE_SIGNATURES,
    PNG_SIGNATURE,
    missing_codec,
    png_has_bad_crc,
    png_header_size,
    png_size,
)

logger = logging.getLogger(__name__)

# Pillow's own decompression-bomb limit (about 89 Mpx) is the largest image decoded.
# Larger files get the status "too large" and are never decoded.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
# Pillow keeps a pointer and an allocation for every row, so a 1 × 89 000 000 grey
# PNG of 172 KB, within MAX_PIXELS, took 2.9 GB and 10 s to read. No photo has
# this many rows or columns.
MAX_SIDE = 1_000_000

# Pillow warns on opening an image above its limit, which duplicates the refusal
# load_image reports for every image above MAX_PIXELS; with warnings turned into
# errors it would also turn that status into an exception.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

# The file that each thread is decoding, for log_decoder_warnings.
_decoding = threading.local()

# Pillow keeps 4 bytes a pixel, so an image of more than this many pixels takes
# over 128 MB decoded, and framing it about a third more. Such images are decoded
# one at a time, even on different threads.
LARGE_PIXELS = 32_000_000
_large_decoding = threading.Lock()

# Pillow allocates an image in blocks of up to 16 MB. glibc may serve blocks under
# 32 MB from a per-thread heap that keeps them once freed, so two decoding threads
# each kept the memory of the last large image they decoded. Larger blocks are
# mapped and unmapped one by one. Scoring four PNGs of 88 Mpx on two threads
# peaked 0.87 GB above the memory before scoring with 16 MB blocks, 0.53 GB with
# 64 MB. PILLOW_BLOCK_SIZE, Pillow's own setting, takes precedence.
if "PILLOW_BLOCK_SIZE" not in os.environ:
    # The allocator settings are in Pillow's C module, which its stubs leave out.
    Image.core.set_block_size(64 * 1024 * 1024)  # type: ignore[attr-defined]

# Bits a pixel in the low-depth grey modes of Pillow's PNG decoder.
_GREY_BITS = {"L;2": 2, "L;4": 4}
# The mode in which Pillow's PNG decoder keeps the high byte of each 16-bit sample.
_RGB_16_BITS = "RGB;16B"

# The chunk checksums of a failed PNG are checked in this much of the file.
_MAX_CHUNK_SCAN_BYTES = 1 << 20

# Decoding a small file is mostly Python code that holds the GIL. Two threads
# decoding small files ran slower than one: 8000 28 px PNGs took 157 µs a file on
# two threads, 85 µs on one and 82 µs in a plain loop. Pillow decodes the pixels
# of a large file without the GIL, so files that average more than this many
# bytes are split over two threads. 500 JPEGs of 2–8 Mpx then scored in 1.35 s,
# against 2.53 s on one thread.
SPLIT_DECODING_BYTES = 64 * 1024
# Files whose sizes are read to decide on the split.
SIZE_SAMPLE = 8


class Status(enum.StrEnum):
    """Outcome of reading one file; the value is the text shown to the user."""

    OK = "ok"
    EMPTY = "empty file"
    NOT_IMAGE = "not an image"
    UNSUPPORTED = "unsupported format"
    DAMAGED = "damaged"
    TOO_LARGE = "too large"
    MISSING = "missing"
    UNREADABLE = "unreadable"


# The detail of a file found gone after the folder was listed.
MISSING_DETAIL = "the file was removed or renamed"


@dataclass(frozen=True)
class LoadedImage:
    """One file after intake.

    `model_input` is a (size, size, 3) uint8 array framed for the model.
    `thumbnail` is an (h, w, 3) uint8 array no larger than the requested side. Both
    are None unless `status` is OK. `detail` explains a status other than OK.
    `size` and `mtime_ns` are those the file had just before it was decoded, also
    set only when `status` is OK.
    """

    path: Path
    status: Status
    detail: str = ""
    model_input: np.ndarray | None = None
    thumbnail: np.ndarray | None = None
    width: int = 0
    height: int = 0
    format: str = ""
    size: int | None = None
    mtime_ns: int | None = None


def decoding_parts(paths: list[Path]) -> list[list[Path]]:
    """Return `paths` whole, or in two halves when the files are large enough to split.

    The size is that of a sample of files spread over `paths`: each stat lets a
    decoding thread take the GIL.
    """
    sample = paths[:: max(1, len(paths) // SIZE_SAMPLE)]
    total = 0
    for path in sample:
        with contextlib.suppress(OSError):
            total += os.stat(path).st_size
    if total <= SPLIT_DECODING_BYTES * len(sample):
        return [paths]
    half = (len(paths) + 1) // 2
    return [paths[:half], paths[half:]]


def load_images(
    paths: list[Path], framing: Framing, thumbnail_size: int | None = None
) -> list[LoadedImage]:
    """Return load_image of each of `paths`, in order, on two threads for large files."""
    def load(part: list[Path]) -> list[LoadedImage]:
        return [load_image(path, framing, thumbnail_size) for path in part]

    parts = decoding_parts(paths)
    if len(parts) == 1:
        return load(paths)
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="decode") as pool:
        return [item for loaded in pool.map(load, parts) for item in loaded]


class _DecoderWarnings:
    """A warnings.showwarning that logs the warnings raised in load_image with the
    path of the file being decoded, and shows any other warning as before.
    """

    def __init__(self, show_other: Callable[..., None]) -> None:
        self.show_other = show_other

    def __call__(self, message: Warning | str, category: type[Warning], filename: str,
                 lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
        path = getattr(_decoding, "path", None)
        if path is None:
            self.show_other(message, category, filename, lineno, file, line)
            return
        text = str(message).strip()
        # Pillow raised some texts twice for one damaged TIFF.
        if getattr(_decoding, "last_warning", None) != (path, text):
            _decoding.last_warning = (path, text)
            logger.warning("%s: %s", path, text)


def log_decoder_warnings() -> None:
    """Log each warning raised while load_image decodes a file, with that file's path.

    Pillow reports damaged metadata in a readable file, such as corrupt EXIF
    data, with warnings.warn. Python prints such a warning with the line of Pillow
    that raised it, but not the file, and in the middle of a progress bar. It
    also prints each text only once, so the second damaged file went unnamed.
    The applications call this at start; calling it again changes nothing.
    Filters set before, such as `-W error`, take precedence.
    """
    warnings.filterwarnings("always", module=r"PIL\.", append=True)
    if not isinstance(warnings.showwarning, _DecoderWarnings):
        warnings.showwarning = _DecoderWarnings(warnings.showwarning)


def load_image(path: Path, framing: Framing, thumbnail_size: int | None = 128) -> LoadedImage:
    """Read `path` into a model input and a thumbnail, or into a status.

    The errors that the OS and Pillow raise for a bad file (OSError, SyntaxError,
    ValueError, EOFError, IndexError, decompression bombs, unidentified formats)
    become a status with a detail text instead. A JPEG is decoded at reduced scale
    when the targets are small.
    """
    try:
        status = os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():
            return LoadedImage(path, Status.UNREADABLE, "broken symbolic link")
        return LoadedImage(path, Status.MISSING, MISSING_DETAIL)
    except PermissionError:
        return LoadedImage(path, Status.UNREADABLE, "permission denied")
    except OSError as error:
        if error.errno == errno.ELOOP:
            return LoadedImage(path, Status.UNREADABLE, "symbolic link loop")
        return LoadedImage(path, Status.UNREADABLE, error.strerror or str(error))
    if not stat.S_ISREG(status.st_mode):
        # Opening a FIFO or a device would block or read without end.
        return LoadedImage(path, Status.NOT_IMAGE, "not a regular file (a pipe or a device)")
    if status.st_size == 0:
        return LoadedImage(path, Status.EMPTY, "empty file (0 bytes)")

    _decoding.path = path
    try:
        plain = None
        if status.st_size <= PLAIN_PNG_BYTES and path.suffix.lower() == ".png":
            plain = read_plain_png(path)
        if plain is not None:
            return _decode(path, plain, status, framing, thumbnail_size, plain=True)
        with Image.open(path) as image:
            return _decode(path, image, status, framing, thumbnail_size)
    except FileNotFoundError:
        return LoadedImage(path, Status.MISSING, MISSING_DETAIL)
    except PermissionError:
        return LoadedImage(path, Status.UNREADABLE, "permission denied")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Raised by Image.open before any pixel buffer exists; the warning arrives
        # as an exception only when warnings are turned into errors.
        return _too_large(path, error)
    except UnidentifiedImageError:
        return _unidentified(path)
    except MemoryError:
        # A decoder that believes a damaged header can ask for more than the
        # machine has. Only that file fails, and the scan goes on.
        return LoadedImage(path, Status.TOO_LARGE, "not enough memory to decode it")
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as error:
        if isinstance(error, OSError) and error.errno in (errno.EACCES, errno.EIO):
            return LoadedImage(path, Status.UNREADABLE, error.strerror or str(error))
        return LoadedImage(path, Status.DAMAGED, _damage_detail(error))
    finally:
        _decoding.path = None


def _decode(
    path: Path, image: Image.Image, status: os.stat_result, framing: Framing,
    thumbnail_size: int | None, plain: bool = False,
) -> LoadedImage:
    """Return the LoadedImage of an opened `image`; `plain` is for one of read_plain_png."""
    width, height = image.size
    image_format = image.format or ""
    if width * height > MAX_PIXELS:
        return LoadedImage(
            path, Status.TOO_LARGE, _too_large_detail(width * height, (width, height)),
            width=width, height=height, format=image_format,
        )
    if max(width, height) > MAX_SIDE:
        return LoadedImage(
            path, Status.TOO_LARGE,
            f"{width} × {height} pixels; the limit is {MAX_SIDE} pixels a side",
            width=width, height=height, format=image_format,
        )

    # Multi-frame files are read at their first frame, whatever was read before.
    image.seek(0)
    _match_png_transparency(image)
    if image_format == "JPEG":
        needed = max(thumbnail_size or 0, framing.decode_size)
        image.draft("RGB", (needed, needed))
    # The size after a JPEG's draft is the size decoded.
    if image.width * image.height <= LARGE_PIXELS:
        model_input, thumbnail, swapped = _pixels(path, image, framing, thumbnail_size, plain)
    else:
        with _large_decoding:
            model_input, thumbnail, swapped = _pixels(path, image, framing, thumbnail_size,
                                                      plain)
            # Frees the decoded pixels before another large image is decoded.
            image.close()
    if swapped:
        # The size as shown: a photo taken upright is listed upright.
        width, height = height, width
    return LoadedImage(
        path, Status.OK, "", model_input, thumbnail,
        width, height, image_format, status.st_size, status.st_mtime_ns,
    )


def _match_png_transparency(image: Image.Image) -> None:
    """Give an unloaded PNG whose pixels Pillow rescales to 8 bits the transparent
    colour of those pixels.

    Pillow decodes 2- and 4-bit grey scaled up to 8 bits, and 16-bit RGB as the
    high byte of each sample, but keeps the file's transparent colour as it is. So
    a 4-bit file's transparent 15 matched no pixel, its white being 255, and the
    16-bit colour (0x1234, 0x5678, 0x9ABC) hid the pixels of (0x34, 0x78, 0xBC).
    """
    transparent = image.info.get("transparency")
    if (not isinstance(image, ImageFile.ImageFile) or image.format != "PNG"
            or transparent is None or not image.tile):
        return
    rawmode = image.tile[0].args
    bits = _GREY_BITS.get(rawmode) if isinstance(rawmode, str) else None
    if bits and isinstance(transparent, int):
        image.info["transparency"] = transparent * 255 // (2**bits - 1)
    elif rawmode == _RGB_16_BITS and isinstance(transparent, tuple):
        # NOTE: colours with the same high bytes are hidden with it: the 8-bit
        # pixels no longer tell them apart.
        image.info["transparency"] = tuple(value >> 8 for value in transparent)


def _pixels(
    path: Path, image: Image.Image, framing: Framing, thumbnail_size: int | None, plain: bool
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Decode `image` of the file `path` and return its model input, its thumbnail if
    requested, and whether its EXIF orientation swapped its width and height.

    A `plain` image, from read_plain_png, has no EXIF or XMP data to turn it, and
    its checksums and length were checked already.
    """
    image.load()
    if image.format == "PNG" and not plain:
        check_png_data(path, image)
    turned, swapped = (image, False) if plain else turn_upright(image)
    rgb = to_rgb(turned)
    model_input = framing.apply(rgb)
    thumbnail = None
    if thumbnail_size:
        # In place, once the model input is made: a copy of an 88 Mpx photo to
        # shrink is another 350 MB.
        rgb.thumbnail((thumbnail_size, thumbnail_size), Image.Resampling.BILINEAR)
        thumbnail = np.asarray(rgb)
    return model_input, thumbnail, swapped


def _too_large_detail(pixels: int, size: tuple[int, int] | None) -> str:
    declared = f", declared {size[0]}×{size[1]}" if size else ""
    return f"too large ({pixels / 1e6:.0f} Mpx{declared}); the limit is {MAX_PIXELS / 1e6:.0f} Mpx"


def _too_large(path: Path, error: Exception) -> LoadedImage:
    """Return the status of a file that Pillow rejected as a decompression bomb.

    A PNG's declared size is read from its header and kept, so it shows with the file.
    """
    size = png_size(path)
    if size:
        width, height = size
        return LoadedImage(path, Status.TOO_LARGE, _too_large_detail(width * height, size),
                           width=width, height=height, format="PNG")
    match = re.search(r"\((\d+) pixels\)", str(error))
    detail = _too_large_detail(int(match.group(1)), None) if match else f"too large: {error}"
    return LoadedImage(path, Status.TOO_LARGE, detail)


def _unidentified(path: Path) -> LoadedImage:
    codec = missing_codec(path)
    if codec:
        return LoadedImage(path, Status.UNSUPPORTED, f"{codec} (codec missing)")
    try:
        with path.open("rb") as stream:
            data = stream.read(_MAX_CHUNK_SCAN_BYTES)
    except OSError as error:
        return LoadedImage(path, Status.UNREADABLE, error.strerror or str(error))
    if data.startswith(PNG_SIGNATURE) and png_has_bad_crc(data):
        width, height = png_header_size(data) or (0, 0)
        return LoadedImage(path, Status.DAMAGED, "damaged (bad chunk checksum)",
                           width=width, height=height, format="PNG")
    if any(data.startswith(signature) for signature in IMAGE_SIGNATURES):
        return LoadedImage(path, Status.DAMAGED, "damaged: the image header cannot be read")
    return LoadedImage(path, Status.NOT_IMAGE, "not a recognised image format")


def _damage_detail(error: BaseException) -> str:
    text = str(error)
    if "checksum" in text or "crc" in text.lower():
        return "damaged (bad chunk checksum)"
    if "truncated" in text or isinstance(error, EOFError):
        return "damaged or truncated"
    return f"damaged: {text}" if text else "damaged"

