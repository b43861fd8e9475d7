"""Guarded image intake: any file becomes a model input and a thumbnail, or a status."""

from __future__ import annotations

import contextlib
import enum
import errno
import io
import logging
import os
import re
import stat
import struct
import threading
import warnings
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
from PIL import ExifTags, Image, ImageCms, UnidentifiedImageError

from engine.framing import Framing

logger = logging.getLogger(__name__)

# Transparent pixels are composited onto black, the colour of the margins around a
# fundus photograph, so that a transparent frame reads like an empty margin.
BACKGROUND_RGB = (0, 0, 0)

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

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".gif", ".webp",
     ".ppm", ".pgm", ".pbm", ".tga", ".jp2", ".j2k", ".heic", ".heif", ".avif"}
)

# Pillow keeps 4 bytes a pixel, so an image of more than this many pixels takes
# over 128 MB decoded, and framing it about a third more. Such images are decoded
# one at a time, even on different threads.
LARGE_PIXELS = 32_000_000
_large_decoding = threading.Lock()

# Conversions that need a temporary copy of an image in another form, such as
# floats for 16-bit grey or planes for compositing alpha, go a band of this many
# pixels at a time. Converting a 20 Mpx image whole took 460 MB more for 16-bit
# grey and 310 MB for RGBA; by bands, about 95 MB for either.
_BAND_PIXELS = 1_000_000

# Pillow allocates an image in blocks of up to 16 MB. glibc may serve blocks under
# 32 MB from a per-thread heap that keeps them once freed, so two decoding threads
# each kept the memory of the last large image they decoded. Larger blocks are
# mapped and unmapped one by one. Scoring four PNGs of 88 Mpx on two threads
# peaked 0.87 GB above the memory before scoring with 16 MB blocks, 0.53 GB with
# 64 MB. PILLOW_BLOCK_SIZE, Pillow's own setting, takes precedence.
if "PILLOW_BLOCK_SIZE" not in os.environ:
    # The allocator settings are in Pillow's C module, which its stubs leave out.
    Image.core.set_block_size(64 * 1024 * 1024)  # type: ignore[attr-defined]

# File signatures of formats that Pillow may lack a codec for; a file that starts
# like this but cannot be opened is "unsupported", not "not an image".
_CODEC_SIGNATURES = (
    (b"RIFF", 8, b"WEBP", "WebP"),
    (b"", 4, b"ftypavif", "AVIF"),
    (b"", 4, b"ftypheic", "HEIC"),
    (b"", 4, b"ftypmif1", "HEIF"),
    (b"\x00\x00\x00\x0cjP  ", 0, b"", "JPEG 2000"),
)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Files that start like one of these images but cannot be opened are damaged.
_IMAGE_SIGNATURES = (
    _PNG_SIGNATURE, b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM",
)
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


def list_images(folder: Path) -> list[Path]:
    """List the files with an image suffix under `folder`, recursively and sorted.

    Hidden files and folders are left out, and so are names that are not valid
    UTF-8, each with a warning. Links to folders are not followed, and
    a link to a file inside `folder` is left out because its target is listed
    already, so a scan never leaves the folder or visits a file twice. Raises
    OSError when `folder` itself cannot be listed; a subfolder that cannot be
    listed is skipped with a warning.
    """
    return [folder / relative_path for relative_path in list_relative_images(folder)]


def list_relative_images(folder: Path, warn_skipped: bool = True) -> list[str]:
    """List what list_images lists, as paths relative to `folder` with forward slashes.

    The order is that of list_images. Strings cost less: building a Path for each
    of 8000 files took about 25 ms on Python 3.11, and the `score` command needs a
    Path only for each file it scores. With `warn_skipped` False, the names and
    subfolders left out are logged at debug level instead of as warnings, for a
    listing that repeats one whose warnings were shown already.
    """
    skip_level = logging.WARNING if warn_skipped else logging.DEBUG
    root = folder.resolve()
    found: list[str] = []
    # os.scandir, unlike os.walk, keeps each entry's type from the listing, so a
    # file costs no lstat to tell a link: listing 8000 files took 0.22 s with
    # os.walk and Path.is_symlink, most of a re-run on a folder already scored.
    pending = [(os.fspath(folder), "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except OSError as error:
            if not prefix:
                # The folder itself: PermissionError, FileNotFoundError and the like.
                raise
            logger.log(skip_level, "skipped folder %s: %s", error.filename,
                       error.strerror or error)
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if _is_folder(entry):
                if entry.is_symlink():
                    continue
                if not _is_utf8(entry.name):
                    # Its files could not be stored in the review, as with a file name.
                    logger.log(skip_level, "skipped folder %s: the folder name is not valid "
                               "UTF-8, so rename the folder to score its files", entry.path)
                    continue
                pending.append((entry.path, f"{prefix}{entry.name}/"))
                continue
            if _is_listed_image(entry, root, skip_level):
                found.append(prefix + entry.name)
    found.sort(key=_path_order)
    return found


def _path_order(relative_path: str) -> str:
    """Return a sort key that orders relative paths as their Path objects compare.

    Path compares part by part, so "a/b" sorts before "a-b". The key turns each
    separator into NUL, which sorts before every character a name can contain.
    Windows paths compare without case.
    """
    key = relative_path.replace("/", "\0")
    return key.lower() if os.name == "nt" else key


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_listed_image(entry: os.DirEntry[str], root: Path, skip_level: int) -> bool:
    """Return whether the scan takes a listed file, logging a bad name at `skip_level`."""
    name = entry.name
    dot = name.rfind(".")
    if dot <= 0 or name[dot:].lower() not in IMAGE_SUFFIXES:
        return False
    if not _is_utf8(name):
        # NOTE: the review database stores names as UTF-8 text, so such a
        # file is left out of the scan with a warning rather than listed.
        logger.log(skip_level, "skipped %s: the file name is not valid UTF-8, so rename "
                   "the file to score it", entry.path)
        return False
    if entry.is_symlink() and _points_inside(Path(entry.path), root):
        logger.debug("left out %s: it links to a file inside the folder", entry.path)
        return False
    return True


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _points_inside(link: Path, root: Path) -> bool:
    try:
        target = link.resolve()
    except (RuntimeError, OSError):
        # Path.resolve raises RuntimeError for a link loop on Python 3.11, and
        # OSError for a target it cannot read. load_image gives the link its status.
        return False
    return target.exists() and target.is_relative_to(root)


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
        return LoadedImage(path, Status.MISSING, "the file was removed or renamed")
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
        with Image.open(path) as image:
            return _decode(path, image, status, framing, thumbnail_size)
    except FileNotFoundError:
        return LoadedImage(path, Status.MISSING, "the file was removed or renamed")
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
    thumbnail_size: int | None,
) -> LoadedImage:
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
    if image_format == "JPEG":
        needed = max(thumbnail_size or 0, framing.decode_size)
        image.draft("RGB", (needed, needed))
    # The size after a JPEG's draft is the size decoded.
    if image.width * image.height <= LARGE_PIXELS:
        model_input, thumbnail, swapped = _pixels(image, framing, thumbnail_size)
    else:
        with _large_decoding:
            model_input, thumbnail, swapped = _pixels(image, framing, thumbnail_size)
            # Frees the decoded pixels before another large image is decoded.
            image.close()
    if swapped:
        # The size as shown: a photo taken upright is listed upright.
        width, height = height, width
    return LoadedImage(
        path, Status.OK, "", model_input, thumbnail,
        width, height, image_format, status.st_size, status.st_mtime_ns,
    )


def _pixels(
    image: Image.Image, framing: Framing, thumbnail_size: int | None
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Decode `image` and return its model input, its thumbnail if requested, and
    whether its EXIF orientation swapped its width and height.
    """
    image.load()
    turned, swapped = _upright(image)
    rgb = to_rgb(turned)
    model_input = framing.apply(rgb)
    thumbnail = None
    if thumbnail_size:
        # In place, once the model input is made: a copy of an 88 Mpx photo to
        # shrink is another 350 MB.
        rgb.thumbnail((thumbnail_size, thumbnail_size), Image.Resampling.BILINEAR)
        thumbnail = np.asarray(rgb)
    return model_input, thumbnail, swapped


# The transposition that undoes each EXIF orientation other than 1.
_ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# The transpositions after which width and height trade places.
_QUARTER_TURNS = {Image.Transpose.TRANSPOSE, Image.Transpose.ROTATE_270,
                  Image.Transpose.TRANSVERSE, Image.Transpose.ROTATE_90}


def _upright(image: Image.Image) -> tuple[Image.Image, bool]:
    """Return a loaded image turned as its EXIF orientation requires, and whether
    that swapped its width and height.

    Unlike ImageOps.exif_transpose, an upright image is not copied: for a small
    file, that copy cost as much as the decoding.
    """
    transposition = _ORIENTATIONS.get(image.getexif().get(ExifTags.Base.Orientation, 1))
    if transposition is None:
        return image, False
    return image.transpose(transposition), transposition in _QUARTER_TURNS


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB with correct pixel values.

    16- and 32-bit grey is rescaled to 8 bit over its type's full range, CMYK goes
    through its embedded ICC profile when there is one, and any alpha channel is
    composited onto `BACKGROUND_RGB`.
    """
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        scale = 257.0 if mode.startswith("I;16") or _max_value(image) <= 65535 else 16843009.0
        image = _grey_levels(image, lambda grey: grey / scale)
    elif mode == "F":
        image = _grey_levels(image, lambda grey: grey * 255.0)
    elif mode == "CMYK":
        return _cmyk_to_rgb(image)

    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
            image.mode == "P" and "transparency" in image.info):
        return _composited(image)
    # convert() copies even an RGB image, and nothing here changes the result.
    return image if image.mode == "RGB" else image.convert("RGB")


def _grey_levels(image: Image.Image, level: Callable[[np.ndarray], np.ndarray]) -> Image.Image:
    """Return the 8-bit grey image of rounded `level`s of the float64 pixel values.

    The floats exist for one band of rows at a time.
    """
    pixels = np.asarray(image)
    grey = np.empty(pixels.shape, dtype=np.uint8)
    rows = _band_rows(image.width)
    for top in range(0, len(pixels), rows):
        band = level(pixels[top : top + rows].astype(np.float64))
        grey[top : top + rows] = np.clip(np.rint(band), 0, 255)
    return Image.fromarray(grey, "L")


def _composited(image: Image.Image) -> Image.Image:
    """Return `image`, which has an alpha channel or a transparent colour, composited
    onto BACKGROUND_RGB, one band of rows at a time.
    """
    width, height = image.size
    rows = _band_rows(width)
    rgb = Image.new("RGB", image.size)
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(height, top + rows))).convert("RGBA")
        background = Image.new("RGBA", band.size, (*BACKGROUND_RGB, 255))
        rgb.paste(Image.alpha_composite(background, band).convert("RGB"), (0, top))
    return rgb


def _band_rows(width: int) -> int:
    """Return the rows of a band of about _BAND_PIXELS for an image `width` pixels wide."""
    return max(1, _BAND_PIXELS // max(width, 1))


def _max_value(image: Image.Image) -> int:
    extrema = image.getextrema()
    return int(extrema[1]) if isinstance(extrema[1], int | float) else 0


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    icc = image.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            target = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(image, source, target, outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError) as error:
            logger.warning("CMYK ICC profile ignored: %s", error)
    return image.convert("RGB")


def _too_large_detail(pixels: int, size: tuple[int, int] | None) -> str:
    declared = f", declared {size[0]}×{size[1]}" if size else ""
    return f"too large ({pixels / 1e6:.0f} Mpx{declared}); the limit is {MAX_PIXELS / 1e6:.0f} Mpx"


def _too_large(path: Path, error: Exception) -> LoadedImage:
    """Return the status of a file that Pillow rejected as a decompression bomb.

    A PNG's declared size is read from its header and kept, so it shows with the file.
    """
    size = _png_size(path)
    if size:
        width, height = size
        return LoadedImage(path, Status.TOO_LARGE, _too_large_detail(width * height, size),
                           width=width, height=height, format="PNG")
    match = re.search(r"\((\d+) pixels\)", str(error))
    detail = _too_large_detail(int(match.group(1)), None) if match else f"too large: {error}"
    return LoadedImage(path, Status.TOO_LARGE, detail)


def _png_size(path: Path) -> tuple[int, int] | None:
    try:
        with path.open("rb") as stream:
            return _png_header_size(stream.read(24))
    except OSError:
        return None


def _png_header_size(data: bytes) -> tuple[int, int] | None:
    """Return the width and height that PNG bytes declare in their header, if any."""
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _unidentified(path: Path) -> LoadedImage:
    codec = _missing_codec(path)
    if codec:
        return LoadedImage(path, Status.UNSUPPORTED, f"{codec} (codec missing)")
    try:
        with path.open("rb") as stream:
            data = stream.read(_MAX_CHUNK_SCAN_BYTES)
    except OSError as error:
        return LoadedImage(path, Status.UNREADABLE, error.strerror or str(error))
    if data.startswith(_PNG_SIGNATURE) and _png_has_bad_crc(data):
        width, height = _png_header_size(data) or (0, 0)
        return LoadedImage(path, Status.DAMAGED, "damaged (bad chunk checksum)",
                           width=width, height=height, format="PNG")
    if any(data.startswith(signature) for signature in _IMAGE_SIGNATURES):
        return LoadedImage(path, Status.DAMAGED, "damaged: the image header cannot be read")
    return LoadedImage(path, Status.NOT_IMAGE, "not a recognised image format")


def _png_has_bad_crc(data: bytes) -> bool:
    """Return True when a complete chunk in `data` fails its CRC-32 check."""
    offset = len(_PNG_SIGNATURE)
    while offset + 12 <= len(data):
        length = struct.unpack(">I", data[offset : offset + 4])[0]
        end = offset + 8 + length
        if end + 4 > len(data):
            return False
        expected = struct.unpack(">I", data[end : end + 4])[0]
        if zlib.crc32(data[offset + 4 : end]) != expected:
            return True
        offset = end + 4
    return False


def _missing_codec(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            head = stream.read(16)
    except OSError:
        return ""
    for prefix, offset, tag, name in _CODEC_SIGNATURES:
        if head.startswith(prefix) and head[offset : offset + len(tag)] == tag:
            return name
    return ""


def _damage_detail(error: BaseException) -> str:
    text = str(error)
    if "checksum" in text or "crc" in text.lower():
        return "damaged (bad chunk checksum)"
    if "truncated" in text or isinstance(error, EOFError):
        return "damaged or truncated"
    return f"damaged: {text}" if text else "damaged"

