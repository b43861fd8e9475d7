"""Tests of the autoencoder's two ways through the output layer."""

from __future__ import annotations

import pytest
import torch

from engine.autoencoder import AutoencoderConfig, ConvAutoencoder


@pytest.mark.parametrize("size", [28, 27, 64, 9])
def test_folded_output_matches_layer(size: int) -> None:
    # Inference folds the last transposed convolution by hand, which must give the
    # layer's own result for even and odd sides alike.
    torch.manual_seed(size)
    autoencoder = ConvAutoencoder(AutoencoderConfig(size, 8, (4, 8, 16)))
    images = torch.rand(5, 3, size, size)

    trained_path = autoencoder(images)
    with torch.inference_mode():
        folded_path = autoencoder(images)

    assert folded_path.shape == (5, 3, size, size)
    torch.testing.assert_close(folded_path, trained_path.detach(), rtol=0, atol=1e-6)
