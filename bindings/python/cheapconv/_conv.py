"""The three passes of a 2D convolution (cross-correlation, as torch.nn.functional.conv2d), fp32 NCHW."""

import collections
import math
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


class EvalBatchNorm(collections.namedtuple("EvalBatchNorm", "gamma beta running_mean running_var eps")):
    """An eval-mode batch norm over the K output channels (as torch.nn.BatchNorm2d in eval mode): gamma, beta and the
    running statistics, each of K float32 values of x's kind, and eps."""


def conv2d_forward_fused(x, w, residual=None, batch_norm=None, keep_output=True, stride=1, padding=0, groups=1):
    """v = conv2d(x, w) + residual (when given), and relu(batch_norm(v)) (when an EvalBatchNorm is given) in the same
    launch where the library runs the tensor-core kernels (else the same results from its separate calls): what a
    pre-activation residual network does after most of its convolutions in inference.

    residual has y's shape (N×K×P×Q). Returns v without batch_norm; with it, (v, relu(batch_norm(v))), or only the
    second when keep_output is False (v is then never written). Tensors as conv2d_forward takes them."""
    if batch_norm is not None and not isinstance(batch_norm, EvalBatchNorm):
        raise InvalidValueError(f"batch_norm must be a cheapconv.EvalBatchNorm, not {type(batch_norm).__name__}")
    kind = kind_of("x", x, ("w", w), *((("residual", residual),) if residual is not None else ()),
                   *((name, value) for name, value in zip(("gamma", "beta", "running_mean", "running_var"),
                                                           batch_norm[:4] if batch_norm is not None else ())))
    x, w = _float32(kind, "x", x), _float32(kind, "w", w)
    n, c, h, width = _shape("x", x.shape)
    k, _, r, s = _shape("w", w.shape)
    problem = _problem(kind, n, c, h, width, k, r, s, stride, padding, groups)
    _expect("w", w.shape, (k, c // groups, r, s), "K × C/groups × R × S")
    y_shape = (n, k, problem.p, problem.q)
    epilogue = _library.ConvEpilogue()
    if residual is not None:
        residual = _float32(kind, "residual", residual)
        _expect("residual", residual.shape, y_shape, "N × K × P × Q, the convolution's output")
        epilogue.residual = kind.pointer(residual)
    activated = None
    if batch_norm is not None:
        parameters = {}
        for name in ("gamma", "beta", "running_mean", "running_var"):
            parameters[name] = _float32(kind, name, getattr(batch_norm, name))
            _expect(name, parameters[name].shape, (k,), "one value per output channel")
        epilogue.bn_gamma, epilogue.bn_beta = kind.pointer(parameters["gamma"]), kind.pointer(parameters["beta"])
        epilogue.bn_mean, epilogue.bn_var = kind.pointer(parameters["running_mean"]), kind.pointer(parameters["running_var"])
        epilogue.bn_eps = _eps(batch_norm.eps)
        activated = kind.empty(y_shape)
        epilogue.activated = kind.pointer(activated)
    elif not keep_output:
        raise InvalidValueError("keep_output=False leaves nothing to return without a batch_norm")
    y = kind.empty(y_shape) if keep_output else None
    size = kind.library.conv_workspace_size(problem, _library.CC_CONV_FORWARD)
    workspace = kind.workspace(size) if size else None
    kind.library.conv_forward_fused(kind.handle(), problem, epilogue, kind.pointer(x), kind.pointer(w),
                                    kind.pointer(y) if keep_output else None, kind.pointer(workspace) if size else None,
                                    size, kind.stream())
    if activated is None:
        return y
    return (y, activated) if keep_output else activated


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


def _eps(value):
    try:
        eps = float(value)
    except (TypeError, ValueError):
        raise InvalidValueError(f"batch_norm.eps must be a number, not {type(value).__name__}") from None
    if not math.isfinite(eps) or eps < 0:
        raise InvalidValueError(f"batch_norm.eps must be finite and >= 0, got {value!r}")
    return eps


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
