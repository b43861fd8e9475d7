"""Conversion of a decoded Pillow image to upright 8-bit RGB: EXIF orientation, modes, alpha."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

import numpy as np
from PIL import ExifTags, Image, ImageCms

logger = logging.getLogger(__name__)

# Transparent pixels are composited onto black, the colour of the margins around a
# fundus photograph, so that a transparent frame reads like an empty margin.
BACKGROUND_RGB = (0, 0, 0)
# The background as a grey level, for grey images; BACKGROUND_RGB is grey.
_BACKGROUND_LEVEL = BACKGROUND_RGB[0]

# Conversions that need a temporary copy of an image in another form, such as
# floats for 16-bit grey or planes for compositing alpha, go a band of this many
# pixels at a time. Converting a 20 Mpx image whole took 460 MB more for 16-bit
# grey and 310 MB for RGBA; by bands, about 95 MB for either.
_BAND_PIXELS = 1_000_000

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


def turn_upright(image: Image.Image) -> tuple[Image.Image, bool]:
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
    through its embedded ICC profile when there is one, and any alpha channel or
    transparent colour is composited onto `BACKGROUND_RGB`.
    """
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        scale = 257.0 if mode.startswith("I;16") or _max_value(image) <= 65535 else 16843009.0
        image = _grey_levels(image, lambda grey: grey / scale, image.info.get("transparency"))
    elif mode == "F":
        image = _grey_levels(image, lambda grey: grey * 255.0)
    elif mode == "CMYK":
        return _cmyk_to_rgb(image)

    # A palette, grey or RGB image may name one transparent colour instead of
    # having an alpha channel, as PNG optimisers write images with on-off alpha.
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
            image.mode in ("P", "1", "L", "RGB") and "transparency" in image.info):
        return _composited(image)
    # convert() copies even an RGB image, and nothing here changes the result.
    return image if image.mode == "RGB" else image.convert("RGB")


def _grey_levels(image: Image.Image, level: Callable[[np.ndarray], np.ndarray],
                 transparent: object = None) -> Image.Image:
    """Return the 8-bit grey image of rounded `level`s of the float64 pixel values.

    The floats exist for one band of rows at a time. Pixels of the `transparent`
    value, if any, take the level of BACKGROUND_RGB, as compositing would give
    them. The value cannot stay a transparent colour: others round to its level.
    """
    pixels = np.asarray(image)
    grey = np.empty(pixels.shape, dtype=np.uint8)
    rows = _band_rows(image.width)
    for top in range(0, len(pixels), rows):
        band = pixels[top : top + rows]
        grey[top : top + rows] = np.clip(np.rint(level(band.astype(np.float64))), 0, 255)
        if isinstance(transparent, int):
            grey[top : top + rows][band == transparent] = _BACKGROUND_LEVEL
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
