"""CheapConv's convolution inside PyTorch models: an autograd Function and an nn.Module.

    from cheapconv.torch import Conv2d
    layer = Conv2d(32, 32, 3, padding=1, groups=32)   # a depthwise 3×3, initialised as nn.Conv2d would be

Gradients reach the input and the weight through the library's backward-data and backward-weight
kernels; the optional bias is added (and differentiated) by PyTorch.
"""

import math

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ._conv import conv2d_backward_data, conv2d_backward_weight, conv2d_forward
from ._errors import InvalidValueError


class Conv2dFunction(torch.autograd.Function):
    """y = conv2d(x, w) with CheapConv's kernels in both directions.

    Conv2dFunction.apply(x, w, stride, padding, groups); stride and padding are an int or a pair. The
    backward is not itself differentiable (no double backward)."""

    @staticmethod
    def forward(ctx, x, w, stride=1, padding=0, groups=1):
        ctx.save_for_backward(x, w)
        ctx.geometry = (stride, padding, groups)
        return conv2d_forward(x, w, stride, padding, groups)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        stride, padding, groups = ctx.geometry
        # Only the gradients autograd asks for: a frozen weight or an input that needs no gradient
        # (the first layer's images) costs no kernel.
        dx = conv2d_backward_data(dy, w, x.shape, stride, padding, groups) if ctx.needs_input_grad[0] else None
        dw = conv2d_backward_weight(x, dy, w.shape, stride, padding, groups) if ctx.needs_input_grad[1] else None
        return dx, dw, None, None, None


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    """torch.nn.functional.conv2d's signature (without dilation) on CheapConv's kernels."""
    y = Conv2dFunction.apply(x, weight, stride, padding, groups)
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class Conv2d(nn.Module):
    """A drop-in for torch.nn.Conv2d (zero padding, no dilation, float32) that runs CheapConv's kernels.

    Parameters are named and shaped as nn.Conv2d's (`weight`: out × in/groups × kh × kw, `bias`: out), so
    state dicts move between the two, and initialised the same way (same random draws for the same seed)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=False,
                 device=None):
        super().__init__()
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise InvalidValueError(f"groups={groups} must be positive and divide in_channels={in_channels} "
                                    f"and out_channels={out_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size,
                                               device=device, dtype=torch.float32))
        self.bias = nn.Parameter(torch.empty(out_channels, device=device, dtype=torch.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        # nn.Conv2d.reset_parameters (torch/nn/modules/conv.py): Kaiming-uniform with a = √5, which gives
        # U(−1/√fan_in, 1/√fan_in) for the weight, and the same bound for the bias.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text
