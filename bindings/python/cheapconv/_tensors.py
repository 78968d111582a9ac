"""What the convolution calls need to know about the arrays they are given: NumPy arrays and CPU tensors
go to the emulator with host pointers, CUDA tensors to the GPU library with device pointers, the
caller's current stream and torch's allocator. Neither NumPy nor torch is imported unless the caller
already uses it, so each works without the other."""

import contextlib
import sys

from . import _library
from ._errors import InvalidValueError

# cheapconv.h wants 4-byte aligned tensor pointers. float32 arrays always are, except NumPy views of
# byte buffers at odd offsets; those are copied.
_ALIGNMENT = 4


def _torch():
    return sys.modules.get("torch")


def _numpy():
    return sys.modules.get("numpy")


def is_torch_tensor(value):
    torch = _torch()
    return torch is not None and isinstance(value, torch.Tensor)


class NumpyKind:
    """NumPy float32 arrays on the emulator."""

    def __init__(self):
        self.library = _library.load(_library.EMULATOR)
        self.name = "NumPy array"

    def matches(self, value):
        numpy = _numpy()
        return numpy is not None and isinstance(value, numpy.ndarray)

    def dtype_name(self, value):
        return str(value.dtype)

    def is_float32(self, value):
        return value.dtype == _numpy().float32

    def contiguous(self, value):
        numpy = _numpy()
        value = numpy.ascontiguousarray(value)
        if value.ctypes.data % _ALIGNMENT:
            value = value.copy()
        return value

    def pointer(self, value):
        return value.ctypes.data

    def empty(self, shape):
        return _numpy().empty(shape, dtype=_numpy().float32)

    def workspace(self, size):
        # Zeroed: a split weight gradient counts its blocks' arrivals in the workspace's first bytes (cheapconv.h).
        return _numpy().zeros(size, dtype=_numpy().uint8)

    def handle(self):
        return self.library.handle("emulator", 0)

    def stream(self):
        return None  # the emulator ignores streams: every call has finished when it returns


class TorchKind:
    """torch float32 tensors of one device: CPU tensors on the emulator, CUDA tensors on the GPU library."""

    def __init__(self, device):
        torch = _torch()
        self.device = device
        self.cuda = device.type == "cuda"
        if device.type not in ("cpu", "cuda"):
            raise InvalidValueError(f"cheapconv runs on CPU and CUDA tensors, not on {device.type} ones")
        if self.cuda:
            # Every later call needs the index: current_stream(device) and the handle cache key.
            self.device = torch.device("cuda", device.index if device.index is not None else torch.cuda.current_device())
        self.library = _library.load(_library.CUDA if self.cuda else _library.EMULATOR)
        self.name = f"torch tensor on {self.device}"

    def matches(self, value):
        return is_torch_tensor(value) and value.device == self.device

    def dtype_name(self, value):
        return str(value.dtype).replace("torch.", "")

    def is_float32(self, value):
        return value.dtype == _torch().float32

    def contiguous(self, value):
        # detach: the binding computes values; autograd goes through cheapconv.torch.Conv2dFunction.
        value = value.detach().contiguous()
        if value.data_ptr() % _ALIGNMENT:
            value = value.clone()
        return value

    def pointer(self, value):
        return value.data_ptr()

    def empty(self, shape):
        return _torch().empty(shape, dtype=_torch().float32, device=self.device)

    def workspace(self, size):
        # Zeroed (on the launch's stream): a split weight gradient counts its blocks' arrivals in the workspace's
        # first bytes (cheapconv.h).
        return _torch().zeros(size, dtype=_torch().uint8, device=self.device)

    def handle(self):
        if not self.cuda:
            return self.library.handle("emulator", 0)
        index = self.device.index
        return self.library.handle(("cuda", index), _library.CC_CURRENT_CONTEXT, lambda: _torch_context(index))

    def stream(self):
        # The caller's current stream: the launch is ordered after the work that produced the inputs and
        # before whatever torch queues next, without any host wait.
        return _torch().cuda.current_stream(self.device).cuda_stream if self.cuda else None


@contextlib.contextmanager
def _torch_context(index):
    """PyTorch's own context of CUDA device `index` (its primary context) current on this thread: the one
    a handle created with CC_CURRENT_CONTEXT binds to. torch keeps it alive, not the handle. Synchronising
    once initialises the device if torch has not yet and binds its context to this thread."""
    torch = _torch()
    with torch.cuda.device(index):
        torch.cuda.synchronize(index)
        yield


def kind_of(first_name, first, *others):
    """The kind of `first`, checked to be shared by every (name, value) in `others`."""
    if is_torch_tensor(first):
        kind = TorchKind(first.device)
    else:
        numpy = _numpy()
        if numpy is None or not isinstance(first, numpy.ndarray):
            raise InvalidValueError(f"{first_name} must be a NumPy array or a torch tensor, not {type(first).__name__}")
        kind = NumpyKind()
    for name, value in others:
        if not kind.matches(value):
            what = f"torch tensor on {value.device}" if is_torch_tensor(value) else type(value).__name__
            raise InvalidValueError(f"{name} is a {what} but {first_name} is a {kind.name}: pass the same kind, "
                                    f"on the same device, for every tensor of a call")
    return kind
