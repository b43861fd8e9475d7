"""Tests of the torch thread setting that folder scoring uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.modelfile import ReferenceModel
from engine.scoring import FOLDER_INFERENCE_THREADS, score_files, torch_threads


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
