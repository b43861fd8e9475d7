"""Detection quality of a model on the retina and non-retina sources of a data folder."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.framing import Framing
from engine.images import Status, load_image
from engine.listing import list_images
from engine.modelfile import ReferenceModel
from engine.scoring import score_arrays
from engine.signals import SIGNALS
from engine.training import frame_arrays

logger = logging.getLogger(__name__)

RETINA = "retina"
NOT_RETINA = "not retina"


@dataclass(frozen=True)
class Source:
    """One evaluation source: a folder of image files, an array in an .npz file, or
    images generated from the RetinaMNIST test split.

    `location` is relative to the data root. For an .npz source, `key` names the
    array; grey (n, h, w) arrays are repeated to three channels. A generated source
    has `make`, which turns the RetinaMNIST test images into its own images, of
    any sizes. `max_flagged` or `min_flagged` is the target fraction flagged at the
    calibrated threshold.
    """

    name: str
    role: str
    location: str
    key: str = ""
    max_flagged: float | None = None
    min_flagged: float | None = None
    make: Callable[[np.ndarray], list[np.ndarray]] | None = None

    @property
    def target(self) -> str:
        if self.max_flagged is not None:
            return f"≤ {100 * self.max_flagged:g} %"
        if self.min_flagged is not None:
            return "100 %" if self.min_flagged >= 1.0 else f"≥ {100 * self.min_flagged:g} %"
        return ""


# Every source in the shared data folder, with the detection targets of the
# product: clean retina images are rarely flagged, everything else almost always.
SOURCES = (
    Source("RetinaMNIST test", RETINA, "medmnist/retinamnist.npz", "test_images", 0.01),
    Source("DRIVE fundus", RETINA, "fundus/drive", max_flagged=0.05),
    Source("HRF fundus", RETINA, "fundus/hrf_resized", max_flagged=0.05),
    Source("Wikimedia fundus", RETINA, "fundus/wikimedia_retina", max_flagged=0.05),
    Source("PBC blood cells 28 px", NOT_RETINA, "blood/pbc_bloodmnist_style_28.npz",
           "images", min_flagged=0.999),
    Source("PBC blood cells full size", NOT_RETINA, "blood/pbc", min_flagged=0.999),
    Source("BCCD blood smears", NOT_RETINA, "blood/bccd", min_flagged=0.99),
    Source("BreastMNIST test", NOT_RETINA, "medmnist/breastmnist.npz", "test_images",
           min_flagged=0.99),
    Source("PneumoniaMNIST test", NOT_RETINA, "medmnist/pneumoniamnist.npz", "test_images",
           min_flagged=0.99),
    Source("Skin (ISIC)", NOT_RETINA, "other/skin_dermoscopy_isic", min_flagged=0.99),
    Source("Chest X-ray (NIH)", NOT_RETINA, "other/chest_xray_nih", min_flagged=0.99),
    Source("Other photos", NOT_RETINA, "other/photos_skimage", min_flagged=0.99),
)
REFERENCE = SOURCES[0]

# Generated images come in these sizes, framed like files of the same size.
_GENERATED_SIZES = ((28, 28), (64, 64), (300, 200), (512, 512), (701, 1051))


def _uniform(levels: np.ndarray) -> list[np.ndarray]:
    """Return one frame per (r, g, b) level, in each of the generated sizes."""
    return [np.broadcast_to(np.asarray(level, dtype=np.uint8), (*size, 3)).copy()
            for level in levels for size in _GENERATED_SIZES]


def _grey_levels(low: int, high: int) -> Callable[[np.ndarray], list[np.ndarray]]:
    def make(_: np.ndarray) -> list[np.ndarray]:
        return _uniform(np.repeat(np.linspace(low, high, 6).round()[:, np.newaxis], 3, axis=1))
    return make


def _single_colours(_: np.ndarray) -> list[np.ndarray]:
    return _uniform(np.random.default_rng(1).integers(0, 256, (20, 3)))


def _noise(_: np.ndarray) -> list[np.ndarray]:
    rng = np.random.default_rng(2)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            for _ in range(10) for size in _GENERATED_SIZES]


def _checkerboards(_: np.ndarray) -> list[np.ndarray]:
    boards = []
    for size in _GENERATED_SIZES:
        for cells in (2, 4, 7, 14):
            rows, columns = np.indices(size)
            cell = max(1, min(size) // cells)
            board = ((rows // cell + columns // cell) % 2 * 255).astype(np.uint8)
            boards.append(np.repeat(board[..., np.newaxis], 3, axis=2))
    return boards


def _grey_copies(retina: np.ndarray) -> list[np.ndarray]:
    grey = retina.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return list(np.repeat(grey.round().astype(np.uint8)[..., np.newaxis], 3, axis=3))


GENERATED = "generated"
# Inputs a curator meets and a reconstruction error alone lets through: blank
# frames, flat colours, and retina photos that lost their colour.
HARD_CASES = (
    Source("Black frames", GENERATED, "", min_flagged=1.0, make=_grey_levels(0, 10)),
    Source("White frames", GENERATED, "", min_flagged=1.0, make=_grey_levels(245, 255)),
    Source("Mid-grey frames", GENERATED, "", min_flagged=1.0, make=_grey_levels(100, 156)),
    Source("Random single colours", GENERATED, "", min_flagged=1.0, make=_single_colours),
    Source("Random noise", GENERATED, "", min_flagged=1.0, make=_noise),
    Source("Checkerboards", GENERATED, "", min_flagged=1.0, make=_checkerboards),
    Source("Grey copies of RetinaMNIST test", GENERATED, "", min_flagged=1.0,
           make=_grey_copies),
)
ALL_SOURCES = SOURCES + HARD_CASES


@dataclass(frozen=True)
class SourceResult:
    """Scores of one source against the calibrated threshold.

    `scores` are combined scores and `signals` the value of each signal, by name;
    `signal_thresholds` are the model's calibrated threshold of each. `auroc` is
    the probability that an image of this source scores higher than a
    RetinaMNIST test image (ties count half), NaN for RetinaMNIST test itself. For
    a non-retina source 1.0 is best; for a retina source 0.5 is best, because the
    model should not tell it apart from RetinaMNIST. `skipped` counts files that
    could not be read.
    """

    source: Source
    scores: np.ndarray
    signals: dict[str, np.ndarray]
    threshold: float
    signal_thresholds: dict[str, float]
    auroc: float
    skipped: int

    @property
    def flagged(self) -> int:
        return int((self.scores > self.threshold).sum())

    @property
    def flagged_fraction(self) -> float:
        return self.flagged / max(1, self.scores.size)

    def flagged_by(self, signal: str) -> int:
        """Return how many images `signal` alone would flag at its calibrated threshold."""
        return int((self.signals[signal] > self.signal_thresholds[signal]).sum())

    @property
    def interval(self) -> tuple[float, float]:
        """Return the 95 % Wilson interval of the flagged fraction."""
        return wilson_interval(self.flagged, int(self.scores.size))

    @property
    def meets_target(self) -> bool:
        fraction = self.flagged_fraction
        if self.source.max_flagged is not None and fraction > self.source.max_flagged:
            return False
        return self.source.min_flagged is None or fraction >= self.source.min_flagged

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.name,
            "role": self.source.role,
            "n": int(self.scores.size),
            "flagged": self.flagged,
            "flagged_fraction": round(self.flagged_fraction, 6),
            "flagged_interval_95": [round(bound, 6) for bound in self.interval],
            "flagged_by": {name: self.flagged_by(name) for name in SIGNALS},
            "auroc": None if math.isnan(self.auroc) else round(self.auroc, 6),
            "target": self.source.target,
            "meets_target": self.meets_target,
            "skipped": self.skipped,
        }


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Return the Wilson score interval of a binomial proportion, (0, 1) for no trials."""
    if trials == 0:
        return 0.0, 1.0
    fraction = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (fraction + z * z / (2 * trials)) / denominator
    spread = z * math.sqrt(fraction * (1 - fraction) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - spread / denominator), min(1.0, centre + spread / denominator)


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Return the area under the ROC curve of `positives` scoring above `negatives`."""
    if negatives.size == 0 or positives.size == 0:
        return float("nan")
    combined = np.concatenate([negatives, positives])
    order = combined.argsort(kind="mergesort")
    ranks = np.empty(combined.size, dtype=np.float64)
    ranks[order] = np.arange(1, combined.size + 1)
    # Tied scores share the mean of their ranks.
    _, inverse, counts = np.unique(combined, return_inverse=True, return_counts=True)
    rank_sums = np.bincount(inverse, weights=ranks)
    ranks = (rank_sums / counts)[inverse]
    positive_ranks = ranks[negatives.size :].sum()
    n_pos, n_neg = positives.size, negatives.size
    return float((positive_ranks - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def evaluate(
    model: ReferenceModel,
    data_root: Path,
    sources: tuple[Source, ...] = ALL_SOURCES,
    progress: Callable[[str], None] | None = None,
) -> Iterator[SourceResult]:
    """Score every source present under `data_root` and yield its result.

    Sources whose files are absent are left out with an INFO log line. Raises
    what check_data_root raises, and FileNotFoundError when the RetinaMNIST test
    split, the reference of every AUROC and the source of the generated grey
    copies, is missing.
    """
    check_data_root(data_root)
    retina = _read_array(data_root, REFERENCE)
    if retina is None:
        raise FileNotFoundError(f"RetinaMNIST not found: expected {data_root / REFERENCE.location}")
    reference, _ = score_arrays(model, frame_arrays(retina, model.framing))
    for source in sources:
        if progress:
            progress(source.name)
        inputs, skipped = _source_inputs(model.framing, data_root, source, retina)
        if inputs is None:
            logger.info("source %s not present under %s; left out", source.name, data_root)
            continue
        scores, signals = score_arrays(model, inputs)
        # The reference against itself would read 0.5, which means nothing.
        separation = float("nan") if source is REFERENCE else auroc(reference, scores)
        yield SourceResult(source, scores, signals, model.threshold, model.signal_thresholds,
                           separation, skipped)


def check_data_root(data_root: Path) -> None:
    """Raise FileNotFoundError if `data_root` does not exist, NotADirectoryError if it
    is not a folder. The message is a lower-case sentence without a full stop.
    """
    if not data_root.exists():
        raise FileNotFoundError(f"the data root {data_root} does not exist. Pass the folder "
                                "that contains medmnist/, blood/, fundus/ and other/")
    if not data_root.is_dir():
        raise NotADirectoryError(f"the data root {data_root} is not a folder. Pass the folder "
                                 "that contains medmnist/, blood/, fundus/ and other/")


def _read_array(data_root: Path, source: Source) -> np.ndarray | None:
    """Return the (n, h, w, 3) uint8 images of an .npz source, None when it is absent."""
    location = data_root / source.location
    if not location.is_file():
        return None
    with np.load(location) as arrays:
        images: np.ndarray = arrays[source.key]
    if images.ndim == 3:
        images = np.repeat(images[..., np.newaxis], 3, axis=3)
    return images


def _source_inputs(
    framing: Framing, data_root: Path, source: Source, retina: np.ndarray
) -> tuple[np.ndarray | None, int]:
    """Return the framed model inputs of a source and how many of its files were skipped."""
    if source.make is not None:
        generated = source.make(retina)
        return np.stack([framing.apply(Image.fromarray(image, "RGB")) for image in generated]), 0
    if source.key:
        images = _read_array(data_root, source)
        return (None, 0) if images is None else (frame_arrays(images, framing), 0)
    location = data_root / source.location
    if not location.is_dir():
        return None, 0
    inputs, skipped = [], 0
    for path in list_images(location):
        loaded = load_image(path, framing, thumbnail_size=None)
        if loaded.status is Status.OK and loaded.model_input is not None:
            inputs.append(loaded.model_input)
        else:
            logger.warning("skipped %s: %s", path, loaded.detail or loaded.status)
            skipped += 1
    if not inputs:
        return None, skipped
    return np.stack(inputs), skipped


def format_table(results: list[SourceResult]) -> str:
    """Return the results as a Markdown table, one row per source.

    The "by" columns count the images each signal alone flags at its calibrated
    threshold; an image is flagged when any of them flags it.
    """
    by_signal = " | ".join(f"by {name}" for name in SIGNALS)
    lines = [
        f"| source | role | n | flagged | % flagged (95 % CI) | {by_signal} | target | "
        "AUROC vs RetinaMNIST test |",
        "|---|---|---:|---:|---:|" + "---:|" * len(SIGNALS) + "---|---:|",
    ]
    for result in results:
        mark = ""
        if result.source.target:
            mark = " ✓" if result.meets_target else " ✗"
        separation = "–" if math.isnan(result.auroc) else f"{result.auroc:.4f}"
        low, high = result.interval
        counts = " | ".join(str(result.flagged_by(name)) for name in SIGNALS)
        lines.append(
            f"| {result.source.name} | {result.source.role} | {result.scores.size} | "
            f"{result.flagged} | {100 * result.flagged_fraction:.1f} % "
            f"({100 * low:.1f}–{100 * high:.1f}) | {counts} | "
            f"{result.source.target}{mark} | {separation} |"
        )
    return "\n".join(lines)
