"""CheapConv from Python: the library's convolution kernels on NumPy arrays and torch tensors, through
ctypes (nothing to compile). CPU data runs in the CUDA emulator (libcheapconv_emu.so), CUDA tensors on
the GPU (libcheapconv.so). `cheapconv.torch` adds an autograd Function and an nn.Module.

Libraries are found through CHEAPCONV_EMU_LIBRARY / CHEAPCONV_LIBRARY, else beside this package, else in
the repository's native/build/lib (built by `make -C native`).
"""

from . import _library
from ._conv import (EvalBatchNorm, conv2d_backward_data, conv2d_backward_weight, conv2d_forward, conv2d_forward_fused,
                    conv2d_kernel_names)
from ._errors import CheapConvError, InvalidValueError, LibraryLoadError

__all__ = [
    "CheapConvError", "InvalidValueError", "LibraryLoadError",
    "conv2d_forward", "conv2d_forward_fused", "EvalBatchNorm", "conv2d_backward_data", "conv2d_backward_weight",
    "conv2d_kernel_names",
    "library_version", "library_path", "set_precision", "precision",
]

__version__ = "3.1.0"


def set_precision(name):
    """What the convolutions may use from now on: "tf32" (the default, as PyTorch's cuDNN convolutions: tensor-core
    kernels round x, w and dy to tf32, a relative error up to 2^-11 each, and accumulate in fp32) or "fp32"
    (every product exact in fp32)."""
    _library.set_precision(name)


def precision():
    """The precision set_precision last set: "tf32" or "fp32"."""
    return _library.precision()


def library_version(cuda=False):
    """cc_version() of the emulator library (or the GPU one), as "major.minor.patch"."""
    version = _library.load(_library.CUDA if cuda else _library.EMULATOR).version
    return f"{version // 10000}.{version // 100 % 100}.{version % 100}"


def library_path(cuda=False):
    """The file the emulator library (or the GPU one) was loaded from."""
    return str(_library.load(_library.CUDA if cuda else _library.EMULATOR).path)
