"""Tests of the decoding threads and the torch threads of folder scoring."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.framing import Framing
from engine.images import SPLIT_DECODING_BYTES, Status, decoding_parts, load_image, load_images
from engine.modelfile import ReferenceModel
from engine.scoring import FOLDER_INFERENCE_THREADS, score_arrays, score_files, torch_threads


@pytest.fixture
def restore_threads() -> Iterator[None]:
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


def test_torch_threads_restores_count(restore_threads: None) -> None:
    torch.set_num_threads(2)

    with torch_threads(1):
        inside = torch.get_num_threads()

    assert inside == 1
    assert torch.get_num_threads() == 2


def test_torch_threads_restores_after_error(restore_threads: None) -> None:
    torch.set_num_threads(2)

    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("stop")

    assert torch.get_num_threads() == 2


def test_score_files_keeps_thread_count(
    tmp_path: Path, data_root: Path, default_model: ReferenceModel, restore_threads: None
) -> None:
    with np.load(data_root / "medmnist" / "retinamnist.npz") as arrays:
        images = arrays["test_images"][:70]
    paths = []
    for index, image in enumerate(images):
        paths.append(tmp_path / f"r{index:02d}.png")
        Image.fromarray(image).save(paths[-1])
    torch.set_num_threads(FOLDER_INFERENCE_THREADS + 1)

    scored = list(score_files(default_model, tmp_path, paths))

    assert torch.get_num_threads() == FOLDER_INFERENCE_THREADS + 1
    assert [item.path for item in scored] == paths
    assert all(item.score is not None for item in scored)


def write_noise(folder: Path, count: int, side: int) -> list[Path]:
    """Write `count` PNGs of random noise, which do not compress: 3 bytes a pixel."""
    generator = np.random.default_rng(7)
    paths = []
    for index in range(count):
        paths.append(folder / f"noise{index:02d}.png")
        pixels = generator.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(paths[-1])
    return paths


def test_small_files_decode_on_one_thread(tmp_path: Path) -> None:
    paths = write_noise(tmp_path, 20, 28)

    assert decoding_parts(paths) == [paths]


def test_large_files_decode_on_two_threads(tmp_path: Path) -> None:
    paths = write_noise(tmp_path, 9, 200)
    assert paths[0].stat().st_size > SPLIT_DECODING_BYTES

    assert decoding_parts(paths) == [paths[:5], paths[5:]]


def test_load_images_keeps_order_on_two_threads(tmp_path: Path) -> None:
    paths = write_noise(tmp_path, 9, 200)
    (tmp_path / "empty.png").write_bytes(b"")
    paths.insert(4, tmp_path / "empty.png")

    loaded = load_images(paths, Framing())

    assert len(decoding_parts(paths)) == 2
    assert [item.path for item in loaded] == paths
    assert [item.status for item in loaded] == [Status.OK] * 4 + [Status.EMPTY] + [Status.OK] * 5
    assert all(item.width == 200 for item in loaded if item.status is Status.OK)


def test_split_batches_keep_order_and_scores(
    tmp_path: Path, default_model: ReferenceModel
) -> None:
    paths = write_noise(tmp_path, 41, 200)
    inputs = np.stack([load_image(path, default_model.framing, None).model_input
                       for path in paths])
    expected, _ = score_arrays(default_model, inputs)

    scored = list(score_files(default_model, tmp_path, paths))

    assert [item.path for item in scored] == paths
    assert [item.score for item in scored] == pytest.approx(expected.tolist(), rel=1e-5)


def test_cancel_event_stops_decoding(tmp_path: Path, default_model: ReferenceModel) -> None:
    paths = write_noise(tmp_path, 100, 28)
    cancel = threading.Event()
    scored = []

    for item in score_files(default_model, tmp_path, paths, cancel=cancel):
        scored.append(item)
        cancel.set()

    # The first batch was scored whole; the one read ahead stopped at a file.
    assert 0 < len(scored) < len(paths)
    assert [item.path for item in scored] == paths[: len(scored)]
