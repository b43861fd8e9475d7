"""Tests of the sub-pixel form of the decoder's transposed convolutions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from engine.autoencoder import AutoencoderConfig, ConvAutoencoder
from engine.modelfile import ReferenceModel
from engine.scoring import to_tensor
from engine.subpixel import SubPixelConvolution


@pytest.mark.parametrize(("in_channels", "out_channels", "side", "output_padding"), [
    # The default model's three layers: 4 → 7, 7 → 14 and 14 → 28 pixels.
    (64, 32, 4, 0),
    (32, 16, 7, 1),
    (16, 3, 14, 1),
    # Odd sides both ways, one channel, and a rectangle.
    (1, 1, 5, 0),
    (5, 7, 9, 1),
    (3, 2, (6, 11), 1),
])
def test_matches_transposed_convolution(
    in_channels: int, out_channels: int, side: int | tuple[int, int], output_padding: int,
) -> None:
    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1,
                               output_padding=output_padding)
    height, width = side if isinstance(side, tuple) else (side, side)
    images = torch.rand(4, in_channels, height, width)
    with torch.inference_mode():
        expected = layer(images)
        found = SubPixelConvolution.from_transposed(layer)(images)
        found_last = SubPixelConvolution.from_transposed(layer)(
            images.contiguous(memory_format=torch.channels_last))
    assert found.shape == expected.shape
    assert torch.allclose(found, expected, atol=1e-5)
    assert torch.allclose(found_last, expected, atol=1e-5)


@pytest.mark.parametrize("layer", [
    nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1),
    nn.ConvTranspose2d(4, 4, 3, stride=1, padding=1),
    nn.ConvTranspose2d(4, 4, 3, stride=2, padding=0),
])
def test_other_geometry_rejected(layer: nn.ConvTranspose2d) -> None:
    with pytest.raises(ValueError, match="unsupported transposed convolution"):
        SubPixelConvolution.from_transposed(layer)


def test_scoring_decoder_matches_training(
    tiny_model: ReferenceModel, retina_arrays: np.ndarray,
) -> None:
    autoencoder = tiny_model.autoencoder.eval()
    images = to_tensor(retina_arrays[:64])
    codes = autoencoder.encode(images).detach()
    with torch.no_grad():
        scored = autoencoder.decode(codes)
    trained = autoencoder.decode(codes)
    assert trained.requires_grad and not scored.requires_grad
    assert torch.allclose(scored, trained.detach(), atol=1e-5)


def test_scoring_decoder_follows_new_weights() -> None:
    torch.manual_seed(1)
    config = AutoencoderConfig(latent_size=8, channels=(4, 8))
    first, second = ConvAutoencoder(config).eval(), ConvAutoencoder(config).eval()
    codes = torch.rand(3, 8)
    with torch.inference_mode():
        before = first.decode(codes)
    first.load_state_dict(second.state_dict())
    with torch.inference_mode():
        after = first.decode(codes)
        expected = second.decode(codes)
    assert not torch.allclose(before, after)
    assert torch.allclose(after, expected, atol=1e-6)
