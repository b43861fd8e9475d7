"""The convolutional autoencoder that learns what a good image looks like."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from engine.subpixel import SubPixelConvolution

logger = logging.getLogger(__name__)

# The widest bottleneck that a model file may have, which keeps a hand-edited file
# from making the loader allocate unbounded memory. `train --latent` rejects wider
# ones, so that every model it writes can be loaded.
MAX_LATENT_SIZE = 4096

_Layer = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class AutoencoderConfig:
    """Architecture of `ConvAutoencoder`, stored in every model file.

    `input_size` is the side of the square RGB input in pixels, `latent_size` the
    width of the bottleneck and `channels` the feature maps after each stride-2
    convolution of the encoder.
    """

    input_size: int = 28
    latent_size: int = 32
    channels: tuple[int, ...] = field(default=(16, 32, 64))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": "conv_autoencoder",
            "input_size": self.input_size,
            "latent_size": self.latent_size,
            "channels": list(self.channels),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AutoencoderConfig:
        name = values.get("name", "conv_autoencoder")
        if name != "conv_autoencoder":
            raise ValueError(f"unknown architecture {name!r}; expected 'conv_autoencoder'")
        config = cls(
            input_size=int(values["input_size"]),
            latent_size=int(values["latent_size"]),
            channels=tuple(int(c) for c in values["channels"]),
        )
        # Bounds that keep a hand-edited file from allocating unbounded memory.
        if not 8 <= config.input_size <= 512:
            raise ValueError(f"input size {config.input_size} is outside 8–512 pixels")
        if not 1 <= config.latent_size <= MAX_LATENT_SIZE:
            raise ValueError(f"latent size {config.latent_size} is outside 1–{MAX_LATENT_SIZE}")
        if not 1 <= len(config.channels) <= 6 or not all(1 <= c <= 1024 for c in config.channels):
            raise ValueError(f"channels {list(config.channels)} must be 1–6 layers of 1–1024")
        return config


class ConvAutoencoder(nn.Module):
    """Stride-2 convolutions down to a dense bottleneck and transposed ones back.

    Input and output are float tensors of shape (batch, 3, size, size) in [0, 1].
    """

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        sides = [config.input_size]
        for _ in config.channels:
            sides.append((sides[-1] + 1) // 2)
        self._bottom_side = sides[-1]
        widths = [3, *config.channels]

        encoder: list[nn.Module] = []
        for in_channels, out_channels in itertools.pairwise(widths):
            encoder += [nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1),
                        nn.LeakyReLU(0.1)]
        self.encoder = nn.Sequential(*encoder, nn.Flatten())
        flat = widths[-1] * self._bottom_side**2
        self.to_latent = nn.Linear(flat, config.latent_size)
        self.from_latent = nn.Sequential(nn.Linear(config.latent_size, flat), nn.LeakyReLU(0.1))

        decoder: list[nn.Module] = []
        steps = list(zip(widths[:0:-1], widths[-2::-1], sides[-2::-1], strict=True))
        for index, (in_channels, out_channels, target_side) in enumerate(steps):
            padding = target_side - (2 * sides[len(steps) - index] - 1)
            decoder.append(nn.ConvTranspose2d(
                in_channels, out_channels, 3, stride=2, padding=1, output_padding=padding,
            ))
            decoder.append(nn.LeakyReLU(0.1) if index < len(steps) - 1 else nn.Sigmoid())
        self.decoder = nn.Sequential(*decoder)
        self._inference_layers: tuple[tuple[int, ...], list[_Layer]] | None = None
        # Weights in channels-last layout, the layout of the image arrays too. The
        # transposed convolutions ran 1.2 to 2.7 times as fast in it on this CPU.
        # Outputs differ from the default layout's by rounding, at most 1e-6 a pixel.
        # Module.to documents memory_format, but torch's type stubs leave it out.
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Map (batch, 3, size, size) images to (batch, latent_size) codes."""
        codes: torch.Tensor = self.to_latent(self.encoder(images))
        return codes

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Map (batch, latent_size) codes to (batch, 3, size, size) images.

        Without gradients, the transposed convolutions run as sub-pixel ones, whose
        outputs differ from theirs by rounding, about 1e-7 a pixel.
        """
        side = self._bottom_side
        flat: torch.Tensor = self.from_latent(codes)
        hidden = flat.view(-1, self.config.channels[-1], side, side)
        if torch.is_grad_enabled():
            images: torch.Tensor = self.decoder(hidden)
            return images
        for layer in self._inference_decoder():
            hidden = layer(hidden)
        return hidden

    def _inference_decoder(self) -> list[_Layer]:
        """Return the decoder's layers with sub-pixel convolutions for the transposed ones.

        They are made again whenever a decoder weight has changed since, through
        training or loading.
        """
        versions = tuple(weight._version for weight in self.decoder.parameters())
        if self._inference_layers is None or self._inference_layers[0] != versions:
            layers: list[_Layer] = [SubPixelConvolution.from_transposed(layer)
                                    if isinstance(layer, nn.ConvTranspose2d) else layer
                                    for layer in self.decoder]
            self._inference_layers = (versions, layers)
        return self._inference_layers[1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(images))
