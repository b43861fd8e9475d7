"""Framing: the one preprocessing that turns an RGB image into a model input."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageChops

logger = logging.getLogger(__name__)

# The margin search runs on a copy no larger than this, which is plenty to find a
# frame edge and keeps the cost independent of the photo's size.
_SEARCH_SIDE = 256

# An image is reduced to fit in this side before it is padded to a square, so the
# square takes at most 64 MB at Pillow's 4 bytes a pixel. A 100 × 100 000 strip
# padded at full size would take 40 GB. Photos of up to 4096 pixels a side are
# framed as they were before this limit.
MAX_SQUARE_SIDE = 4096


@dataclass(frozen=True)
class Framing:
    """Preprocessing recorded in every model file and used for training and scoring.

    With `crop_dark_margins`, the image is cropped to the rows and columns that hold
    content brighter than `margin_level` (0–255) in at least `margin_fraction` of
    their pixels. The result is padded with black to a square and resized to
    `size` × `size`. A fundus photo thus fills the frame the same way whether it was
    saved as a tight square crop or as a 3:2 frame with black margins.
    """

    size: int = 28
    crop_dark_margins: bool = True
    margin_level: int = 20
    margin_fraction: float = 0.02

    @property
    def decode_size(self) -> int:
        """Smallest side a JPEG may be drafted to without losing framing detail."""
        return self.size * 8

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Framing:
        """Build a framing from `to_dict` output; raises ValueError for invalid values."""
        framing = cls(
            size=_strict_int(values["size"]),
            crop_dark_margins=bool(values["crop_dark_margins"]),
            margin_level=_strict_int(values["margin_level"]),
            margin_fraction=float(values["margin_fraction"]),
        )
        if not 8 <= framing.size <= 512:
            raise ValueError(f"framing size {framing.size} is outside 8–512 pixels")
        if not 0 <= framing.margin_level <= 255:
            raise ValueError(f"margin level {framing.margin_level} is outside 0–255")
        if not 0.0 <= framing.margin_fraction < 1.0:
            raise ValueError(f"margin fraction {framing.margin_fraction} is outside [0, 1)")
        return framing

    def apply(self, image: Image.Image) -> np.ndarray:
        """Return the (size, size, 3) uint8 model input for an RGB image."""
        box = self.content_box(image) if self.crop_dark_margins else (0, 0, *image.size)
        image = _pad_to_square(_crop_within(image, box, MAX_SQUARE_SIDE))
        if image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.Resampling.BICUBIC)
        return np.asarray(image, dtype=np.uint8)

    def content_box(self, image: Image.Image) -> tuple[int, int, int, int]:
        """Return the (left, top, right, bottom) box inside the dark margins.

        An image with no content above the margin level keeps its whole frame, so a
        black or dark image is scored as it is rather than cropped to nothing.
        """
        width, height = image.size
        scale = min(1.0, _SEARCH_SIDE / max(width, height))
        small = image
        if scale < 1.0:
            small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = image.resize(small_size, Image.Resampling.BOX)
        if 0.0 < self.margin_fraction * max(small.size) <= 1.0:
            # One bright pixel makes a row or column content, so the box is that of
            # the pixels above the margin level: 7 µs in Pillow against 25 in numpy.
            level = Image.new(small.mode, small.size, (self.margin_level,) * len(small.getbands()))
            found = ImageChops.subtract(small, level).getbbox()
        else:
            found = self._bright_box(np.asarray(small))
        if found is None:
            return (0, 0, width, height)
        left, top, right, bottom = found
        return (math.floor(left / scale), math.floor(top / scale),
                min(width, math.ceil(right / scale)), min(height, math.ceil(bottom / scale)))

    def _bright_box(self, pixels: np.ndarray) -> tuple[int, int, int, int] | None:
        """Return the box of the rows and columns with enough bright pixels, if any."""
        # Equal to pixels.max(axis=2), which numpy computes about ten times slower
        # for three channels.
        brightest = np.maximum(np.maximum(pixels[..., 0], pixels[..., 1]), pixels[..., 2])
        bright = brightest > self.margin_level
        rows = np.flatnonzero(bright.mean(axis=1) >= self.margin_fraction)
        cols = np.flatnonzero(bright.mean(axis=0) >= self.margin_fraction)
        if rows.size == 0 or cols.size == 0:
            return None
        return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def _strict_int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"expected a whole number, got {value!r}")
    return value


def _crop_within(image: Image.Image, box: tuple[int, int, int, int], side: int) -> Image.Image:
    """Return the `box` of `image`, reduced to fit in a `side` square, keeping its aspect ratio.

    A box larger than `side` is reduced straight from `image` rather than cropped
    first: a crop of an 88 Mpx photo is another 350 MB.
    """
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    if max(width, height) <= side:
        return image if box == (0, 0, *image.size) else image.crop(box)
    scale = side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.BOX, box=box)


def _pad_to_square(image: Image.Image) -> Image.Image:
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    square = Image.new("RGB", (side, side), (0, 0, 0))
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    return square
