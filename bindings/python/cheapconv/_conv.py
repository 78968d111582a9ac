"""The three passes of a 2D convolution (cross-correlation, as torch.nn.functional.conv2d), fp32 NCHW."""

import operator

from . import _library
from ._errors import InvalidValueError
from ._tensors import kind_of


def conv2d_forward(x, w, stride=1, padding=0, groups=1):
    """y = conv2d(x, w): x is N×C×H×W, w is K×(C/groups)×R×S, y is N×K×P×Q, all float32.

    x and w are both NumPy arrays (run on the CPU in the emulator) or both torch tensors on one device
    (CPU: emulator; CUDA: the GPU, on the current stream). The result is of the same kind."""
    kind = kind_of("x", x, ("w", w))
    x, w = _float32(kind, "x", x), _float32(kind, "w", w)
    n, c, h, width = _shape("x", x.shape)
    k, _, r, s = _shape("w", w.shape)
    problem = _problem(kind, n, c, h, width, k, r, s, stride, padding, groups)
    _expect("w", w.shape, (k, c // groups, r, s), "K × C/groups × R × S")
    y = kind.empty((n, k, problem.p, problem.q))
    _run(kind, _library.CC_CONV_FORWARD, problem, x, w, y)
    return y


def conv2d_backward_data(dy, w, x_shape, stride=1, padding=0, groups=1):
    """dx = dL/dx of y = conv2d(x, w), given dy = dL/dy; x_shape is (N, C, H, W)."""
    kind = kind_of("dy", dy, ("w", w))
    dy, w = _float32(kind, "dy", dy), _float32(kind, "w", w)
    n, c, h, width = _shape("x_shape", x_shape)
    k, _, r, s = _shape("w", w.shape)
    problem = _problem(kind, n, c, h, width, k, r, s, stride, padding, groups)
    _expect("w", w.shape, (k, c // groups, r, s), "K × C/groups × R × S")
    _expect("dy", dy.shape, (n, k, problem.p, problem.q), "N × K × P × Q")
    dx = kind.empty((n, c, h, width))
    _run(kind, _library.CC_CONV_BACKWARD_DATA, problem, dy, w, dx)
    return dx


def conv2d_backward_weight(x, dy, w_shape, stride=1, padding=0, groups=1):
    """dw = dL/dw of y = conv2d(x, w), given x and dy = dL/dy; w_shape is (K, C/groups, R, S)."""
    kind = kind_of("x", x, ("dy", dy))
    x, dy = _float32(kind, "x", x), _float32(kind, "dy", dy)
    n, c, h, width = _shape("x", x.shape)
    k, _, r, s = _shape("w_shape", w_shape)
    problem = _problem(kind, n, c, h, width, k, r, s, stride, padding, groups)
    _expect("w_shape", w_shape, (k, c // groups, r, s), "K × C/groups × R × S")
    _expect("dy", dy.shape, (n, k, problem.p, problem.q), "N × K × P × Q")
    dw = kind.empty((k, c // groups, r, s))
    _run(kind, _library.CC_CONV_BACKWARD_WEIGHT, problem, x, dy, dw)
    return dw


def conv2d_kernel_names(x_shape, w_shape, stride=1, padding=0, groups=1, cuda=False):
    """The kernel(s) each pass runs for this problem, e.g. {"forward": "cc_pointwise_forward", ...}, as the
    emulator library (or, with cuda=True, the GPU library) chooses them. For logs and profiles."""
    library = _library.load(_library.CUDA if cuda else _library.EMULATOR)
    n, c, h, width = _shape("x_shape", x_shape)
    k, _, r, s = _shape("w_shape", w_shape)
    problem = library.conv_problem(n, c, h, width, k, r, s, _pair("padding", padding), _pair("stride", stride),
                                   _int("groups", groups))
    return {name: library.conv_kernel_names(problem, conv_pass) for conv_pass, name in _library.CONV_PASS_NAMES.items()}


# ---- argument checks -------------------------------------------------------------------------------------

def _float32(kind, name, value):
    """A dense, aligned float32 version of `value` (a copy only when needed); other dtypes are refused
    rather than converted, so a float64 model does not silently lose precision."""
    if not kind.is_float32(value):
        raise InvalidValueError(f"{name} has dtype {kind.dtype_name(value)}; cheapconv computes in float32 only: "
                                f"convert it first (NumPy: .astype(numpy.float32), torch: .float())")
    return kind.contiguous(value)


def _int(name, value):
    if isinstance(value, bool):  # bool is an int to Python, never a size to a user
        raise InvalidValueError(f"{name} must be an int, not bool")
    try:
        return operator.index(value)
    except TypeError:
        raise InvalidValueError(f"{name} must be an int, not {type(value).__name__}") from None


def _pair(name, value):
    """stride / padding: one int for both dimensions, or (height, width)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise InvalidValueError(f"{name} must be an int or a pair (height, width), got {value!r}")
        return _int(name, value[0]), _int(name, value[1])
    value = _int(name, value)
    return value, value


def _shape(name, shape):
    try:
        dims = tuple(_int(name, d) for d in shape)
    except TypeError:
        raise InvalidValueError(f"{name} must be a shape of 4 ints, got {shape!r}") from None
    if len(dims) != 4:
        raise InvalidValueError(f"{name} must have 4 dimensions (NCHW / KCRS), got shape {dims}")
    return dims


def _expect(name, actual, expected, layout):
    if tuple(actual) != tuple(expected):
        raise InvalidValueError(f"{name} has shape {tuple(actual)}, the convolution needs {tuple(expected)} ({layout})")


def _problem(kind, n, c, h, width, k, r, s, stride, padding, groups):
    # The library checks the problem first (groups dividing the channels, the filter fitting the padded
    # input, ...), so its message is the one the caller sees for those mistakes.
    return kind.library.conv_problem(n, c, h, width, k, r, s, _pair("padding", padding), _pair("stride", stride),
                                     _int("groups", groups))


def _run(kind, conv_pass, problem, in_a, in_b, out):
    size = kind.library.conv_workspace_size(problem, conv_pass)
    # Allocated like the tensors (NumPy, or torch's caching allocator on the stream of the launch), so
    # nothing is freed before the stream-ordered kernel that uses it has run.
    workspace = kind.workspace(size) if size else None
    kind.library.conv(conv_pass, kind.handle(), problem, kind.pointer(in_a), kind.pointer(in_b), kind.pointer(out),
                      kind.pointer(workspace) if size else None, size, kind.stream())
