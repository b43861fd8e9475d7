"""Tests of the framing that makes fundus photos of any layout look alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from engine.framing import Framing


def disc_on_black(width: int, height: int, radius: int) -> Image.Image:
    image = Image.new("RGB", (width, height), (0, 0, 0))
    centre_x, centre_y = width // 2, height // 2
    box = (centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius)
    ImageDraw.Draw(image).ellipse(box, fill=(200, 90, 40))
    return image


def test_wide_frame_cropped_to_disc() -> None:
    framing = Framing()
    image = disc_on_black(900, 600, 250)

    left, top, right, bottom = framing.content_box(image)

    assert abs(left - 200) <= 4
    assert abs(right - 700) <= 4
    assert abs(top - 50) <= 4
    assert abs(bottom - 550) <= 4


def test_margins_do_not_change_the_input() -> None:
    framing = Framing()
    tight = framing.apply(disc_on_black(500, 500, 250)).astype(int)
    wide = framing.apply(disc_on_black(1051, 701, 250)).astype(int)

    assert tight.shape == (28, 28, 3)
    assert np.abs(tight - wide).mean() < 3


def test_black_image_keeps_whole_frame() -> None:
    framing = Framing()
    image = Image.new("RGB", (300, 200), (0, 0, 0))

    assert framing.content_box(image) == (0, 0, 300, 200)
    assert framing.apply(image).shape == (28, 28, 3)


def test_round_trip_through_dict() -> None:
    framing = Framing(size=32, margin_level=12)

    assert Framing.from_dict(framing.to_dict()) == framing


def reference_content_box(framing: Framing, image: Image.Image) -> tuple[int, int, int, int]:
    """The margin search written plainly, with numpy's max over the channel axis."""
    width, height = image.size
    scale = min(1.0, 256 / max(width, height))
    small = image
    if scale < 1.0:
        small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = image.resize(small_size, Image.Resampling.BOX)
    bright = np.asarray(small).max(axis=2) > framing.margin_level
    rows = np.flatnonzero(bright.mean(axis=1) >= framing.margin_fraction)
    cols = np.flatnonzero(bright.mean(axis=0) >= framing.margin_fraction)
    if rows.size == 0 or cols.size == 0:
        return (0, 0, width, height)
    return (int(np.floor(cols[0] / scale)), int(np.floor(rows[0] / scale)),
            min(width, int(np.ceil((cols[-1] + 1) / scale))),
            min(height, int(np.ceil((rows[-1] + 1) / scale))))


def test_content_box_matches_plain_search(data_root: Path) -> None:
    framing = Framing()
    photos = sorted((data_root / "fundus").glob("*/*"))
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        small = [Image.fromarray(image) for image in arrays["test_images"][:50]]
    images = [Image.open(path).convert("RGB") for path in photos] + small
    # Dark and single-channel-bright images test the channel maximum itself.
    images += [Image.new("RGB", (40, 30), (0, 0, 0)), Image.new("RGB", (30, 40), (0, 0, 21))]

    for image in images:
        assert framing.content_box(image) == reference_content_box(framing, image)


@pytest.mark.parametrize("size", [(28, 28), (50, 49), (51, 10), (300, 7)])
def test_content_box_of_scattered_pixels(size: tuple[int, int]) -> None:
    # Around a side of 1 / margin_fraction, one bright pixel stops being enough.
    framing = Framing()
    rng = np.random.default_rng(sum(size))
    for share in (0.0, 0.002, 0.01, 0.05):
        pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        lit = rng.random((size[1], size[0])) < share
        pixels[lit, rng.integers(0, 3)] = rng.integers(framing.margin_level + 1, 256)
        image = Image.fromarray(pixels, "RGB")

        assert framing.content_box(image) == reference_content_box(framing, image)


def test_large_photo_framed_like_its_content_box() -> None:
    # Above 4096 pixels, the content box is reduced straight from the photo.
    photo = disc_on_black(6000, 4500, 2000)
    framing = Framing()
    box = framing.content_box(photo)

    framed = framing.apply(photo)
    expected = Framing(crop_dark_margins=False).apply(photo.crop(box))

    assert box != (0, 0, 6000, 4500)
    assert np.abs(framed.astype(int) - expected.astype(int)).max() <= 1


def test_long_strip_framed_in_a_bounded_square() -> None:
    # Padded at full size, this strip would need a 20 000-pixel square of 1.6 GB.
    strip = Image.new("RGB", (20, 20_000), (200, 120, 60))

    framed = Framing().apply(strip)

    assert framed.shape == (28, 28, 3)
    # The strip is a thousandth of the square's width: a faint middle column.
    assert framed[:, 13:15].max() > 0
    assert framed[:, :12].max() == 0
    assert framed[:, 16:].max() == 0
