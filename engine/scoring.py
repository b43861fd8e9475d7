"""Scoring of arrays, single images and whole folders by the signals of engine.signals."""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.images import LoadedImage, Status, decoding_parts, load_image
from engine.listing import list_images, relative_posix
from engine.modelfile import ReferenceModel
from engine.signals import COLOUR, LATENT, RECONSTRUCTION, combined_scores

logger = logging.getLogger(__name__)

# Folder batches start small, so that the first results show at once, and double up
# to DEFAULT_BATCH_SIZE. Batches of 256 scored 8000 small PNGs 13 % faster than 64.
# A first batch of 32 photos of 16 Mpx took 7 s to decode; 8 take under 2 s.
FIRST_BATCH_SIZE = 8
DEFAULT_BATCH_SIZE = 256

# Torch threads used for a folder's batches while files decode on other threads.
# Idle torch worker threads spin for a while before they sleep, so on a two-core
# machine they took the cores from the decode threads. Scoring 2000 small PNGs on
# a busy two-core machine took 5–12 s with torch's default two threads and 1.6 s
# with one thread. scripts/benchmark.py measures whole folders.
FOLDER_INFERENCE_THREADS = 1


@dataclass(frozen=True)
class ScoredFile:
    """One file of a scored folder.

    The file is `relative_path`, with forward slashes, under the scored folder
    `root`. `score` is the combined score of engine.signals, 1 at the calibrated
    threshold, and `signals` the value of each signal by name. Both are None, and
    so is `flagged`, unless `status` is OK. `thumbnail` is an (h, w, 3) uint8
    array when one was requested. `size` and `mtime_ns` identify the version of
    the file that was scored; they too are None unless `status` is OK.
    """

    root: Path
    relative_path: str
    status: Status
    detail: str
    score: float | None
    flagged: bool | None
    thumbnail: np.ndarray | None
    width: int
    height: int
    format: str
    signals: dict[str, float] | None = None
    size: int | None = None
    mtime_ns: int | None = None

    @functools.cached_property
    def path(self) -> Path:
        """The file's path: `root` / `relative_path`.

        Made when first asked for, because a re-opened folder of 20 000 cached
        files showed few of them, and building a Path took about 2 µs a file.
        """
        return self.root / self.relative_path


@dataclass(frozen=True)
class Reconstruction:
    """The model's view of one image, for display.

    `reconstruction` is an (size, size, 3) uint8 array and `error_map` an
    (size, size) float32 array of squared errors averaged over channels.
    """

    model_input: np.ndarray
    reconstruction: np.ndarray
    error_map: np.ndarray
    score: float


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """Turn (n, size, size, 3) uint8 images into a (n, 3, size, size) float tensor."""
    return torch.from_numpy(np.array(images, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255.0


def reconstruction_errors(
    model: ReferenceModel, images: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Return the score of each of (n, size, size, 3) uint8 images as an (n,) array."""
    errors = []
    model.autoencoder.eval()
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = to_tensor(images[start : start + batch_size])
            output = model.autoencoder(batch)
            errors.append(((output - batch) ** 2).mean(dim=(1, 2, 3)).numpy())
    return np.concatenate(errors).astype(np.float64) if errors else np.zeros(0)


def signal_scores(
    model: ReferenceModel, images: np.ndarray, batch_size: int = 256
) -> dict[str, np.ndarray]:
    """Return each signal of (n, size, size, 3) uint8 images as an (n,) array, by name."""
    if model.reference is None:
        raise ValueError(f"model {model.name} has no signal reference; train it again")
    errors, codes = [], []
    model.autoencoder.eval()
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = to_tensor(images[start : start + batch_size])
            code = model.autoencoder.encode(batch)
            output = model.autoencoder.decode(code)
            errors.append(((output - batch) ** 2).mean(dim=(1, 2, 3)).numpy())
            codes.append(code.numpy())
    if not errors:
        return {RECONSTRUCTION: np.zeros(0), LATENT: np.zeros(0), COLOUR: np.zeros(0)}
    return {
        RECONSTRUCTION: np.concatenate(errors).astype(np.float64),
        LATENT: model.reference.latent_distances(np.concatenate(codes)),
        COLOUR: model.reference.colour_distances(images),
    }


def score_arrays(
    model: ReferenceModel, images: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Return the combined score of each image and the signals it was made from."""
    signals = signal_scores(model, images)
    return combined_scores(signals, model.signal_thresholds), signals


def reconstruct(model: ReferenceModel, model_input: np.ndarray) -> Reconstruction:
    """Return the reconstruction and per-pixel error map of one framed image."""
    model.autoencoder.eval()
    with torch.inference_mode():
        batch = to_tensor(model_input[np.newaxis])
        output = model.autoencoder(batch)
        squared = ((output - batch) ** 2)[0]
    image = (output[0].permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    error_map = squared.mean(dim=0).numpy().astype(np.float32)
    return Reconstruction(model_input, image, error_map, float(squared.mean()))


def score_files(
    model: ReferenceModel,
    root: Path,
    paths: list[Path],
    threshold: float | None = None,
    thumbnail_size: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cancel: threading.Event | None = None,
) -> Generator[ScoredFile, None, None]:
    """Score `paths` in batches and yield one ScoredFile per path, in order.

    The next batch is decoded on a thread while the current one runs through the
    model. Stop iterating to cancel: the decoding stops at the next file once the
    generator is closed. Setting `cancel` stops it at the next file too, without
    waiting for the batch in progress, and the files not decoded then get no
    result. `threshold` defaults to the model's calibrated threshold.
    """
    threshold = model.threshold if threshold is None else threshold
    started = time.perf_counter()
    stop = threading.Event()

    def load(batch: list[Path]) -> list[LoadedImage]:
        loaded = []
        for path in batch:
            if stop.is_set() or (cancel is not None and cancel.is_set()):
                break
            loaded.append(load_image(path, model.framing, thumbnail_size))
        return loaded

    # A batch decodes on the first thread, or on both when decoding_parts splits it.
    # Each thread takes one task at a time, so the batch read ahead waits for the
    # one before it instead of decoding beside it.
    with (ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as first,
          ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as second):
        def submit(batch: list[Path]) -> list[Future[list[LoadedImage]]]:
            parts = decoding_parts(batch)
            return [thread.submit(load, part)
                    for thread, part in zip((first, second), parts, strict=False)]

        try:
            for loaded in _read_ahead(submit, _growing_batches(paths, batch_size)):
                with torch_threads(FOLDER_INFERENCE_THREADS):
                    scored = list(_score_batch(model, root, loaded, threshold))
                yield from scored
        finally:
            stop.set()
    elapsed = time.perf_counter() - started
    logger.info("scored %d files under %s in %.1f s", len(paths), root, elapsed)


def _read_ahead(
    submit: Callable[[list[Path]], list[Future[list[LoadedImage]]]],
    batches: list[list[Path]],
) -> Iterator[list[LoadedImage]]:
    """Yield each batch loaded, with the next one already submitted for decoding."""
    pending: list[Future[list[LoadedImage]]] | None = None
    for batch in batches:
        following = submit(batch)
        if pending is not None:
            yield [item for part in pending for item in part.result()]
        pending = following
    if pending is not None:
        yield [item for part in pending for item in part.result()]


def _growing_batches(paths: list[Path], largest: int) -> list[list[Path]]:
    """Split `paths` into batches of FIRST_BATCH_SIZE files, doubling up to `largest`."""
    batches, start, size = [], 0, min(FIRST_BATCH_SIZE, largest)
    while start < len(paths):
        batches.append(paths[start : start + size])
        start += size
        size = min(2 * size, largest)
    return batches


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with `count` torch intra-op threads, then restore the previous number.

    The setting is process-wide, so torch work in other threads runs with `count`
    threads meanwhile.
    """
    previous = torch.get_num_threads()
    if previous == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def score_folder(
    model: ReferenceModel,
    folder: Path,
    threshold: float | None = None,
    thumbnail_size: int | None = None,
) -> Generator[ScoredFile, None, None]:
    """Score every image file under `folder`, recursively; see `score_files`."""
    return score_files(model, folder, list_images(folder), threshold, thumbnail_size)


def _score_batch(
    model: ReferenceModel, root: Path, loaded: list[LoadedImage], threshold: float
) -> Iterator[ScoredFile]:
    inputs = [item.model_input for item in loaded if item.model_input is not None]
    combined, signals = score_arrays(model, np.stack(inputs)) if inputs else (np.zeros(0), {})
    index = 0
    for item in loaded:
        score, values = None, None
        if item.model_input is not None:
            score = float(combined[index])
            values = {name: float(column[index]) for name, column in signals.items()}
            index += 1
        if item.status is not Status.OK:
            logger.warning("skipped %s: %s", item.path, item.detail or item.status)
        yield ScoredFile(
            root=root,
            relative_path=relative_posix(item.path, root),
            status=item.status,
            detail=item.detail,
            score=score,
            flagged=None if score is None else score > threshold,
            thumbnail=item.thumbnail,
            width=item.width,
            height=item.height,
            format=item.format,
            signals=values,
            size=item.size,
            mtime_ns=item.mtime_ns,
        )
