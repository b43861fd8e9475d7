"""Detection quality of a model on the retina and non-retina sources of a data folder."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.images import Status, list_images, load_image
from engine.modelfile import ReferenceModel
from engine.scoring import reconstruction_errors
from engine.training import frame_arrays

logger = logging.getLogger(__name__)

RETINA = "retina"
NOT_RETINA = "not retina"


@dataclass(frozen=True)
class Source:
    """One evaluation source: a folder of image files or an array in an .npz file.

    `location` is relative to the data root. For an .npz source, `key` names the
    array; grey (n, h, w) arrays are repeated to three channels. `max_flagged` or
    `min_flagged` is the target fraction flagged at the calibrated threshold.
    """

    name: str
    role: str
    location: str
    key: str = ""
    max_flagged: float | None = None
    min_flagged: float | None = None

    @property
    def target(self) -> str:
        if self.max_flagged is not None:
            return f"≤ {100 * self.max_flagged:g} %"
        if self.min_flagged is not None:
            return f"≥ {100 * self.min_flagged:g} %"
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


@dataclass(frozen=True)
class SourceResult:
    """Scores of one source against the calibrated threshold.

    `auroc` is the probability that an image of this source scores higher than a
    RetinaMNIST test image (ties count half), NaN for RetinaMNIST test itself. For
    a non-retina source 1.0 is best; for a retina source 0.5 is best, because the
    model should not tell it apart from RetinaMNIST. `skipped` counts files that
    could not be read.
    """

    source: Source
    scores: np.ndarray
    threshold: float
    auroc: float
    skipped: int

    @property
    def flagged(self) -> int:
        return int((self.scores > self.threshold).sum())

    @property
    def flagged_fraction(self) -> float:
        return self.flagged / max(1, self.scores.size)

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
            "auroc": None if math.isnan(self.auroc) else round(self.auroc, 6),
            "target": self.source.target,
            "meets_target": self.meets_target,
            "skipped": self.skipped,
        }


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
    sources: tuple[Source, ...] = SOURCES,
    progress: Callable[[str], None] | None = None,
) -> Iterator[SourceResult]:
    """Score every source present under `data_root` and yield its result.

    Sources whose files are absent are left out with an INFO log line. Raises
    FileNotFoundError when the RetinaMNIST test split, the reference of every
    AUROC, is missing.
    """
    reference, _ = _source_scores(model, data_root, REFERENCE)
    if reference is None:
        raise FileNotFoundError(f"RetinaMNIST not found: expected {data_root / REFERENCE.location}")
    for source in sources:
        if progress:
            progress(source.name)
        scores, skipped = _source_scores(model, data_root, source)
        if scores is None:
            logger.info("source %s not present under %s; left out", source.name, data_root)
            continue
        # The reference against itself would read 0.5, which means nothing.
        separation = float("nan") if source is REFERENCE else auroc(reference, scores)
        yield SourceResult(source, scores, model.threshold, separation, skipped)


def _source_scores(
    model: ReferenceModel, data_root: Path, source: Source
) -> tuple[np.ndarray | None, int]:
    location = data_root / source.location
    if source.key:
        if not location.is_file():
            return None, 0
        with np.load(location) as arrays:
            images = arrays[source.key]
        if images.ndim == 3:
            images = np.repeat(images[..., np.newaxis], 3, axis=3)
        return reconstruction_errors(model, frame_arrays(images, model.framing)), 0
    if not location.is_dir():
        return None, 0
    inputs, skipped = [], 0
    for path in list_images(location):
        loaded = load_image(path, model.framing, thumbnail_size=None)
        if loaded.status is Status.OK and loaded.model_input is not None:
            inputs.append(loaded.model_input)
        else:
            logger.warning("skipped %s: %s", path, loaded.detail or loaded.status)
            skipped += 1
    if not inputs:
        return None, skipped
    return reconstruction_errors(model, np.stack(inputs)), skipped


def format_table(results: list[SourceResult]) -> str:
    """Return the results as a Markdown table, one row per source."""
    lines = [
        "| source | role | n | flagged | % flagged | target | AUROC vs RetinaMNIST test |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for result in results:
        mark = ""
        if result.source.target:
            mark = " ✓" if result.meets_target else " ✗"
        separation = "–" if math.isnan(result.auroc) else f"{result.auroc:.4f}"
        lines.append(
            f"| {result.source.name} | {result.source.role} | {result.scores.size} | "
            f"{result.flagged} | {100 * result.flagged_fraction:.1f} % | "
            f"{result.source.target}{mark} | {separation} |"
        )
    return "\n".join(lines)
