"""Tests of the conversion of Pillow images to 8-bit RGB."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.conversion import BACKGROUND_RGB, to_rgb


def _converted_whole(image: Image.Image) -> np.ndarray:
    """Return what to_rgb gives for `image`, computed on the whole image at once."""
    if image.mode in ("I;16", "I"):
        scale = 257.0 if image.mode == "I;16" or np.asarray(image).max() <= 65535 else 16843009.0
        grey = np.clip(np.rint(np.asarray(image, dtype=np.float64) / scale), 0, 255)
        return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    if image.mode == "F":
        grey = np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255)
        return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*BACKGROUND_RGB, 255))
    return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))


def _test_images() -> list[Image.Image]:
    # 1500 pixels wide, so that the conversion goes in two bands of rows.
    generator = np.random.default_rng(7)
    shape = (1000, 1500)
    levels = generator.integers(0, 256, (*shape, 4), dtype=np.uint8)
    palette = Image.fromarray(levels[..., 0] // 16).convert("P")
    palette.info["transparency"] = 3
    return [
        Image.fromarray(levels, "RGBA"),
        Image.fromarray(levels[..., :2].copy(), "LA"),
        palette,
        Image.fromarray(generator.integers(0, 65536, shape, dtype=np.uint16)),
        Image.fromarray(generator.integers(0, 2**31 - 1, shape, dtype=np.int32)),
        Image.fromarray(generator.random(shape, dtype=np.float32)),
    ]


@pytest.mark.parametrize("image", _test_images(), ids=lambda image: image.mode)
def test_conversion_by_bands_equals_whole_image(image: Image.Image) -> None:
    converted = to_rgb(image)

    assert converted.mode == "RGB"
    assert np.array_equal(np.asarray(converted), _converted_whole(image))


# The growth of the peak resident memory while to_rgb converts the image read from
# a file, in MB.
_CONVERT_LARGE_IMAGE = """
import sys
from PIL import Image
from engine.conversion import to_rgb

def peak_mb():
    with open("/proc/self/status") as status:
        return int(status.read().split("VmHWM:")[1].split()[0]) // 1024

image = Image.open(sys.argv[1])
image.load()
before = peak_mb()
converted = to_rgb(image)
print(converted.mode, peak_mb() - before)
"""


@pytest.mark.parametrize("mode", ["I;16", "RGBA"])
def test_large_image_converted_without_whole_copies(tmp_path: Path, mode: str) -> None:
    # A 20 Mpx image takes 80 MB as Pillow's RGB. Converted whole, the 16-bit grey
    # one took 460 MB more for its float copies, and the RGBA one 310 MB for the
    # planes of compositing. By bands of rows, both take about 95 MB.
    ramp = np.linspace(0, 1, 5000, dtype=np.float32)
    level = (ramp[None, :] + ramp[:4000, None]) / 2
    if mode == "I;16":
        image = Image.fromarray((level * 65535).astype(np.uint16))
    else:
        channel = (60 + 190 * level).astype(np.uint8)
        image = Image.fromarray(np.stack([channel, channel[::-1], np.full_like(channel, 90),
                                          (128 + 127 * level).astype(np.uint8)], axis=2))
    path = tmp_path / "large.png"
    image.save(path, compress_level=1)
    assert Image.open(path).mode == mode

    result = subprocess.run([sys.executable, "-c", _CONVERT_LARGE_IMAGE, str(path)],
                            capture_output=True, text=True, check=False,
                            cwd=Path(__file__).resolve().parents[2])

    assert result.returncode == 0, result.stderr
    converted_mode, grown_mb = result.stdout.split()
    assert converted_mode == "RGB"
    assert int(grown_mb) < 150
