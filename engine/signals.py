"""The three outlier signals of a reference model and the one decision made from them.

The autoencoder's reconstruction error misses inputs that are easy to rebuild:
blank frames, grey copies of retina photos. Two more signals cover them:

- `latent`: the mean distance from an image's code to its nearest codes of the
  training images, with every code dimension scaled to unit spread. An input the
  encoder has never seen the like of lands far from all of them.
- `colour`: how far simple colour and intensity statistics fall outside the range
  of the training images, in units of that range's width.

Each signal is calibrated on the held-out clean images at target_frr / 3, so a
clean image is flagged by any of the three with probability at most target_frr
(the union bound). The combined score is the largest signal divided by its own
calibrated threshold: an image is flagged when it is above 1.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

RECONSTRUCTION = "reconstruction"
LATENT = "latent"
COLOUR = "colour"
SIGNALS = (RECONSTRUCTION, LATENT, COLOUR)

# A description of each signal, for tables, tooltips and model cards.
DESCRIPTIONS = {
    RECONSTRUCTION: "mean squared reconstruction error, pixels in [0, 1]",
    LATENT: "distance to the nearest training images in the model's code space",
    COLOUR: "colour and brightness statistics outside the training range",
}

COLOUR_FEATURES = ("brightness", "contrast", "saturation", "blue balance")
# Share of the training images' features left outside the colour range at each end.
COLOUR_RANGE_TAIL = 0.005
# Minimum colour threshold, in range widths. When no held-out image falls outside
# the training range, the calibrated threshold is 0, and an image just outside it
# would get an unbounded score: a distance of 0.0039 scored 3.9e9 with a 65-image model.
MIN_COLOUR_THRESHOLD = 0.01
# Saturation is measured only on pixels brighter than this, where hue is defined.
_SATURATION_LEVEL = 40
# References are searched in blocks of this many; see _nearest.
_BLOCK = 64


@dataclass(frozen=True)
class SignalReference:
    """The reference that the latent and colour signals compare a new image with.

    `codes` are (n, latent_size) codes of the training images and their augmented
    copies, already divided by `code_scale`, the spread of each code dimension.
    `colour_low` and `colour_high` bound each of COLOUR_FEATURES.
    """

    codes: np.ndarray
    code_scale: np.ndarray
    colour_low: np.ndarray
    colour_high: np.ndarray
    neighbours: int = 5

    @classmethod
    def fit(cls, codes: np.ndarray, images: np.ndarray, neighbours: int = 5) -> SignalReference:
        """Build the reference from training codes and the framed training images."""
        codes = np.asarray(codes, dtype=np.float32)
        scale = (codes.std(axis=0, dtype=np.float64) + 1e-6).astype(np.float32)
        features = colour_features(images)
        low = np.quantile(features, COLOUR_RANGE_TAIL, axis=0)
        high = np.quantile(features, 1.0 - COLOUR_RANGE_TAIL, axis=0)
        # Scaled in float32, as latent_distances scales a new code, so that a copy
        # of a training image lands exactly on its reference.
        return cls(codes / scale, scale, low, high, neighbours)

    def latent_distances(self, codes: np.ndarray) -> np.ndarray:
        """Return the mean distance of each code to its `neighbours` nearest references."""
        centre, references, lengths = self._centred
        scaled = torch.from_numpy(np.asarray(codes, dtype=np.float32) / self.code_scale)
        scaled -= centre
        # |a - b|² = |a|² - 2ab + |b|², without an (n, m, latent) intermediate.
        squared = torch.addmm(lengths, scaled, references.T, alpha=-2.0)
        squared += (scaled**2).sum(dim=1, keepdim=True)
        nearest = _nearest(squared, min(self.neighbours, self.codes.shape[0]))
        # The expansion rounds small distances badly: an exact copy of a training
        # image came out 0.06 from its own code. The k nearest are measured again.
        offsets = scaled[:, None, :] - references[nearest]
        distances: np.ndarray = offsets.norm(dim=2).mean(dim=1).double().numpy()
        return distances

    @functools.cached_property
    def _centred(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return the references' mean, the references less that mean, and their squared
        lengths.

        Distances do not depend on the origin, and the expansion in latent_distances
        loses less to rounding near the references than far from them. The
        references are padded to whole blocks of _BLOCK with rows of infinite
        length, which no image has as a neighbour.
        """
        centre = self.codes.mean(axis=0, dtype=np.float64).astype(np.float32)
        references = torch.from_numpy(self.codes - centre)
        lengths = (references**2).sum(dim=1)
        padding = -len(references) % _BLOCK
        references = torch.cat([references, references.new_zeros(padding, references.shape[1])])
        lengths = torch.cat([lengths, lengths.new_full((padding,), math.inf)])
        return torch.from_numpy(centre), references, lengths

    def colour_distances(self, images: np.ndarray) -> np.ndarray:
        """Return how far each image's colour features fall outside the training range."""
        features = colour_features(images)
        width = np.maximum(self.colour_high - self.colour_low, 1e-6)
        above = (features - self.colour_high) / width
        below = (self.colour_low - features) / width
        distances: np.ndarray = np.maximum(0.0, np.maximum(above, below)).max(axis=1)
        return distances


def colour_features(images: np.ndarray) -> np.ndarray:
    """Return the (n, 4) COLOUR_FEATURES of (n, size, size, 3) uint8 framed images.

    - Brightness is the log of the mean level of all pixels.
    - Saturation is the mean HSV saturation of the pixels bright enough to have a hue.
    - Contrast is the standard deviation of the grey level over the interior of those
      pixels: the ones whose four neighbours are lit too. Black padding and the
      blurred edge that resizing leaves between a flat frame and its padding thus do
      not pass for detail.
    - Blue balance is the log ratio of the blue to the green sum over the lit pixels.
      Fundus photos reflect little blue, whatever the camera's white balance.

    Together they set blank frames, flat colours, grey and bluish images apart.
    """
    pixels = np.asarray(images, dtype=np.uint8)
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    # Channel extremes and sums on the 8-bit values: one float plane each, not three.
    brightest = np.maximum(np.maximum(red, green), blue)
    lit = brightest > _SATURATION_LEVEL
    lit_count = np.maximum(np.count_nonzero(lit, axis=(1, 2)), 1)
    spread = (brightest - np.minimum(np.minimum(red, green), blue)) / np.maximum(
        brightest, 1, dtype=np.float32)
    saturation = (spread * lit).sum(axis=(1, 2), dtype=np.float64) / lit_count

    # Sums of 8-bit levels in integers: exact, and faster than in floating point.
    grey = red.astype(np.int32) + green + blue
    inner = _interior(lit)
    inner_count = np.maximum(np.count_nonzero(inner, axis=(1, 2)), 1)
    inner_grey = grey * inner
    inner_mean = inner_grey.sum(axis=(1, 2), dtype=np.int64) / inner_count
    inner_square = np.einsum("nhw,nhw->n", inner_grey, grey, dtype=np.int64) / inner_count
    contrast = np.sqrt(np.maximum(inner_square - inner_mean**2, 0.0)) / (3 * 255.0)

    # One count per pixel keeps the ratio finite for black images.
    blue_sum = np.einsum("nhw,nhw->n", blue, lit, dtype=np.int64) + lit_count
    green_sum = np.einsum("nhw,nhw->n", green, lit, dtype=np.int64) + lit_count
    mean_level = grey.sum(axis=(1, 2), dtype=np.int64) / (grey[0].size * 3 * 255.0)
    brightness = np.log(mean_level + 0.01)
    return np.column_stack([brightness, contrast, saturation, np.log(blue_sum / green_sum)])


def _nearest(squared: torch.Tensor, k: int) -> torch.Tensor:
    """Return the columns of the `k` smallest values in each row of `squared`.

    The columns are searched a block of _BLOCK at a time. The k smallest values
    of a row lie in the k blocks with the smallest minimums: any other block has
    a minimum no smaller than those k, which are k values of the row already. So
    one top-k runs on the block minimums and another on those k blocks, instead
    of one on the whole row: 4 µs an image against 12 µs with 4200 references.
    `squared` has a whole number of blocks a row.
    """
    rows, columns = squared.shape
    blocks = squared.view(rows, columns // _BLOCK, _BLOCK)
    if blocks.shape[1] <= k:
        return torch.topk(squared, k, dim=1, largest=False).indices
    chosen = torch.topk(blocks.amin(dim=2), k, dim=1, largest=False).indices
    candidates = torch.gather(blocks, 1, chosen[:, :, None].expand(-1, -1, _BLOCK))
    places = torch.topk(candidates.view(rows, k * _BLOCK), k, dim=1, largest=False).indices
    return chosen.gather(1, places // _BLOCK) * _BLOCK + places % _BLOCK


def _interior(mask: np.ndarray) -> np.ndarray:
    """Return the pixels of (n, h, w) `mask` whose four neighbours are in it too."""
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    interior: np.ndarray = (mask & padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1]
                            & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:])
    return interior


def combined_scores(
    signals: Mapping[str, np.ndarray], thresholds: Mapping[str, float]
) -> np.ndarray:
    """Return the largest of the signals, each divided by its calibrated threshold."""
    ratios = [np.asarray(signals[name]) / max(thresholds[name], 1e-12) for name in SIGNALS]
    combined: np.ndarray = np.max(np.stack(ratios), axis=0)
    return combined


def flagging_signals(
    signals: Mapping[str, float], thresholds: Mapping[str, float], threshold: float
) -> list[str]:
    """Return the signals above their own threshold scaled by the combined `threshold`.

    At the calibrated combined threshold of 1 these are the signals above their
    calibrated thresholds; a combined threshold of 2 doubles every one of them.
    Signals missing from either mapping are left out.
    """
    return [name for name in SIGNALS if name in signals and name in thresholds
            and signals[name] > threshold * thresholds[name]]
