"""Training and calibration of a reference model from known-good images."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from engine.autoencoder import AutoencoderConfig, ConvAutoencoder
from engine.calibration import DEFAULT_TARGET_FRR, Calibration, calibrate, too_few_for
from engine.framing import Framing
from engine.images import LoadedImage, load_images
from engine.listing import list_images
from engine.modelfile import ReferenceModel
from engine.scoring import reconstruction_errors, signal_scores, to_tensor
from engine.signals import COLOUR, MIN_COLOUR_THRESHOLD, SIGNALS, SignalReference, combined_scores

logger = logging.getLogger(__name__)


# Minimum number of images in the training part and in the held-out calibration
# part. Below this the autoencoder has too little to learn from and the threshold
# is set by one or two images.
MIN_SPLIT_IMAGES = 20

# Augmented copies of the training images added to the latent and colour references,
# so that they cover the camera differences the autoencoder was trained to ignore.
REFERENCE_COPIES = 4

# The largest seed that both torch.manual_seed and numpy's default_rng accept. Above
# it torch 2.13 raises "Overflow when unpacking long long", and below 0 numpy 2.4
# raises "expected non-negative integer".
MAX_SEED = 2**64 - 1


@dataclass(frozen=True)
class TrainingOptions:
    """Settings of one training run; all of them are recorded in the model file."""

    epochs: int = 80
    latent_size: int = 64
    batch_size: int = 64
    learning_rate: float = 2e-3
    seed: int = 0
    target_frr: float = DEFAULT_TARGET_FRR
    # Share of the good images held out, never trained on, to set the threshold.
    calibration_fraction: float = 0.3
    input_size: int = 28


@dataclass(frozen=True)
class EpochReport:
    """Progress after one epoch; losses are mean squared errors per pixel."""

    epoch: int
    epochs: int
    train_loss: float
    validation_loss: float


@dataclass(frozen=True)
class TrainingData:
    """Framed (n, size, size, 3) uint8 images and a description of their origin."""

    images: np.ndarray
    description: str

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(np.ascontiguousarray(self.images).tobytes()).hexdigest()


class TrainingCancelled(Exception):
    """Raised by `train_model` when its cancel event is set between batches."""


def load_retinamnist(root: Path, framing: Framing) -> TrainingData:
    """Read the RetinaMNIST train and val splits from a local medmnist root folder.

    `root` must contain `retinamnist.npz` (the 28 px release); nothing is downloaded.
    Raises FileNotFoundError with the expected path when it is missing.
    """
    from medmnist import RetinaMNIST  # deferred: the import takes seconds

    expected = Path(root) / "retinamnist.npz"
    if not expected.is_file():
        raise FileNotFoundError(f"RetinaMNIST not found: expected {expected}")
    splits = [RetinaMNIST(split=s, root=str(root), download=False, size=28).imgs
              for s in ("train", "val")]
    images = np.concatenate(splits)
    description = f"RetinaMNIST 28 px train+val ({len(images)} images) from {expected.name}"
    return TrainingData(frame_arrays(images, framing), description)


def load_folder(folder: Path, framing: Framing) -> tuple[TrainingData, list[LoadedImage]]:
    """Read every image under `folder` as training data, recursively.

    Returns the usable images and the files that were skipped, each with its
    status. Raises OSError when `folder` cannot be listed.
    """
    paths = list_images(folder)
    loaded = load_images(paths, framing)
    usable = [item.model_input for item in loaded if item.model_input is not None]
    skipped = [item for item in loaded if item.model_input is None]
    for item in skipped:
        logger.warning("skipped %s: %s", item.path, item.detail or item.status)
    shape = (0, framing.size, framing.size, 3)
    images = np.stack(usable) if usable else np.zeros(shape, dtype=np.uint8)
    description = f"{len(usable)} images from the folder {folder.name}"
    return TrainingData(images, description), skipped


def minimum_images(calibration_fraction: float) -> int:
    """Return the minimum number of images that leaves both splits MIN_SPLIT_IMAGES."""
    total = MIN_SPLIT_IMAGES
    while (round(total * calibration_fraction) < MIN_SPLIT_IMAGES
           or total - round(total * calibration_fraction) < MIN_SPLIT_IMAGES):
        total += 1
    return total


def frame_arrays(images: np.ndarray, framing: Framing) -> np.ndarray:
    """Apply `framing` to (n, h, w, 3) uint8 arrays, as scoring does to files."""
    return np.stack([framing.apply(Image.fromarray(image, "RGB")) for image in images])


def train_model(
    data: TrainingData,
    framing: Framing,
    options: TrainingOptions = TrainingOptions(),
    progress: Callable[[EpochReport], None] | None = None,
    cancel: threading.Event | None = None,
) -> ReferenceModel:
    """Train an autoencoder on `data`, then calibrate it on a held-out split.

    The same seed, data and options give the same weights. `progress` is called
    after every epoch; setting `cancel` stops the run between batches with
    TrainingCancelled. Raises ValueError when too few images remain for either split,
    and when the held-out images are so alike that a signal's threshold is 0.
    """
    started = time.perf_counter()
    torch.manual_seed(options.seed)
    order = np.random.default_rng(options.seed).permutation(len(data.images))
    n_calibration = round(len(order) * options.calibration_fraction)
    if len(order) < minimum_images(options.calibration_fraction):
        raise ValueError(
            f"{len(order)} usable images are too few: training needs at least "
            f"{minimum_images(options.calibration_fraction)}, because "
            f"{100 * options.calibration_fraction:g} % are held out to set the threshold "
            f"and both parts need {MIN_SPLIT_IMAGES} images or more"
        )
    calibration_images = data.images[order[:n_calibration]]
    train_images = to_tensor(data.images[order[n_calibration:]])

    config = AutoencoderConfig(options.input_size, options.latent_size)
    autoencoder = ConvAutoencoder(config)
    # Calibrated for real once training has finished.
    placeholder = Calibration(options.target_frr, float("inf"), np.zeros(0))
    model = ReferenceModel(autoencoder, framing, placeholder)
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=options.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, options.epochs)
    generator = torch.Generator().manual_seed(options.seed)

    for epoch in range(1, options.epochs + 1):
        train_loss = _train_epoch(autoencoder, optimizer, train_images, options, generator, cancel)
        schedule.step()
        validation_loss = float(reconstruction_errors(model, calibration_images).mean())
        logger.debug("epoch %d: train %.5f, validation %.5f", epoch, train_loss, validation_loss)
        if progress:
            progress(EpochReport(epoch, options.epochs, train_loss, validation_loss))

    model.reference = _fit_reference(model, train_images, options.batch_size, generator)
    model.signals, model.calibration = _calibrate(model, calibration_images, options.target_frr)
    elapsed = time.perf_counter() - started
    model.training = {
        "data": data.description,
        "fingerprint": data.fingerprint,
        "n_train": len(train_images),
        "n_calibration": int(n_calibration),
        "seed": options.seed,
        "epochs": options.epochs,
        "batch_size": options.batch_size,
        "learning_rate": options.learning_rate,
        "seconds": round(elapsed, 1),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    logger.info("trained model in %.1f s, thresholds %s", elapsed, model.signal_thresholds)
    return model


def _fit_reference(
    model: ReferenceModel, train_images: torch.Tensor, batch_size: int,
    generator: torch.Generator,
) -> SignalReference:
    """Encode the training images and augmented copies of them as the signal reference.

    The copies are augmented one training batch at a time, as in training, and
    also recoloured, so that a photo from a camera with another white balance
    lands near them.
    """
    codes, images = [], []
    model.autoencoder.eval()
    with torch.inference_mode():
        for copy in range(REFERENCE_COPIES + 1):
            for start in range(0, len(train_images), batch_size):
                batch = train_images[start : start + batch_size]
                if copy:
                    batch = _recolour(_augment(batch, generator), generator)
                codes.append(model.autoencoder.encode(batch).numpy())
                images.append(
                    (batch.permute(0, 2, 3, 1).numpy() * 255.0).round().astype(np.uint8))
    return SignalReference.fit(np.concatenate(codes), np.concatenate(images))


def _calibrate(
    model: ReferenceModel, images: np.ndarray, target_frr: float
) -> tuple[dict[str, Calibration], Calibration]:
    """Calibrate each signal at target_frr / 3 and the combined score at 1.

    By the union bound, a clean image then exceeds any of the three thresholds with
    probability at most target_frr.
    """
    scores = signal_scores(model, images)
    share = target_frr / len(SIGNALS)
    if too_few_for(len(images), share):
        logger.warning(
            "%d held-out images are too few for the %.2f %% false-reject rate of each of "
            "the %d signals (%g %% in all): each threshold is the signal's largest "
            "held-out value, and the rate of flagged clean images can exceed %g %%",
            len(images), 100 * share, len(SIGNALS), 100 * target_frr, 100 * target_frr,
        )
    signals = {name: calibrate(scores[name], share) for name in SIGNALS}
    if signals[COLOUR].threshold < MIN_COLOUR_THRESHOLD:
        signals[COLOUR] = replace(signals[COLOUR], threshold=MIN_COLOUR_THRESHOLD)
    zero = [name for name, calibration in signals.items() if calibration.threshold <= 0.0]
    if zero:
        raise ValueError(
            f"the {len(images)} held-out images are all alike, so the {' and '.join(zero)} "
            "threshold is 0 and every other image would score without bound. Train on "
            "varied images of the kind to keep, not copies of one image"
        )
    thresholds = {name: calibration.threshold for name, calibration in signals.items()}
    combined = np.sort(combined_scores(scores, thresholds))
    return signals, Calibration(target_frr, 1.0, combined)


def _train_epoch(
    autoencoder: ConvAutoencoder,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    options: TrainingOptions,
    generator: torch.Generator,
    cancel: threading.Event | None,
) -> float:
    autoencoder.train()
    loss_function = nn.MSELoss()
    total = 0.0
    order = torch.randperm(len(images), generator=generator)
    for start in range(0, len(images), options.batch_size):
        if cancel is not None and cancel.is_set():
            raise TrainingCancelled("training was cancelled")
        batch = _augment(images[order[start : start + options.batch_size]], generator)
        optimizer.zero_grad()
        loss = loss_function(autoencoder(batch), batch)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
    autoencoder.eval()
    return total / len(images)


def _augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror, rotate, zoom, re-expose and band a batch of images.

    Left and right eyes are mirror images, cameras frame the fundus at any rotation
    and field of view, exposure differs between them (brightness ±15 %), and wide
    sensors cut the top and bottom of the fundus disc, which framing pads back as
    black bands. None of these changes what a good image is.
    """
    count = len(batch)
    flip = torch.rand(count, generator=generator) < 0.5
    batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
    quarter_turns = int(torch.randint(0, 4, (1,), generator=generator))
    batch = _zoom(torch.rot90(batch, quarter_turns, dims=(2, 3)), generator)
    gain = 1.0 + 0.3 * (torch.rand(count, 1, 1, 1, generator=generator) - 0.5)
    batch = (batch * gain).clamp(0.0, 1.0)
    band = int(torch.randint(0, batch.shape[2] // 5 + 1, (1,), generator=generator))
    if band:
        batch = batch.clone()
        batch[:, :, :band] = 0.0
        batch[:, :, -band:] = 0.0
    return batch


# Log gain of red, green and blue per unit of colour temperature: warmer light
# makes a photo redder and less green and blue.
_WARM_SHIFT = torch.tensor([1.0, -0.5, -0.5]).view(1, 3, 1, 1)


def _recolour(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Change the white balance of each image: warmth ±0.5, then each channel ±15 %.

    Only the latent reference contains these copies, because training the
    autoencoder on them too makes it rebuild grey and pale images as well.
    """
    count = len(batch)
    warmth = torch.rand(count, 1, 1, 1, generator=generator) - 0.5
    tint = 1.0 + 0.3 * (torch.rand(count, 3, 1, 1, generator=generator) - 0.5)
    return (batch * tint * torch.exp(warmth * _WARM_SHIFT)).clamp(0.0, 1.0)


def _zoom(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Scale a batch about its centre by 0.85–1.15, cropping or padding with black."""
    side = batch.shape[2]
    scale = 0.85 + 0.3 * float(torch.rand(1, generator=generator))
    scaled = max(1, round(side * scale))
    if scaled == side:
        return batch
    resized = F.interpolate(batch, size=(scaled, scaled), mode="bilinear",
                            align_corners=False, antialias=True)
    if scaled > side:
        start = (scaled - side) // 2
        return resized[:, :, start : start + side, start : start + side]
    before = (side - scaled) // 2
    after = side - scaled - before
    return F.pad(resized, (before, after, before, after))
