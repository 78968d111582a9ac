"""What the binding tests compare against: PyTorch's conv2d and its autograd in float64, with a bound
derived from fp32 arithmetic, as src/CheapConv/Verification/ConvCheck.cs does for the C# tests.

Imported by every test module; it also puts this checkout's bindings/python first on sys.path, so the
tests always exercise the sources beside them, not some other installed copy."""

import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import cheapconv  # noqa: E402

# These tests hold the kernels to fp32's bound, so they ask for fp32 (the library's default is tf32); the tf32
# tests of test_conv.py ask for tf32 themselves and use relative_tolerance_tf32.
cheapconv.set_precision("fp32")

# Rounding of a sum of n fp32 products grows like √n·ε whatever the order of additions (sequential, tree,
# shuffles), so each element may differ from the exact value by ε·(4 + 2√n) times the sum of the absolute
# values of its terms (ε = 2^-23), plus a tiny absolute slack for elements whose terms are all zero. Not
# tuned to pass: a kernel that drops or doubles a single term is off by orders of magnitude more.
EPSILON = 2.0 ** -23
ABSOLUTE_TOLERANCE = 1e-6


def relative_tolerance(terms):
    return EPSILON * (4 + 2 * math.sqrt(terms))


# tf32 (the tensor-core kernels): each factor is rounded to 10 mantissa bits first, a relative error of at most
# v = 2^-11 (round to nearest), so a product is off by at most (2v + v^2)|ab|; the fp32 sum of the rounded
# products, whose magnitudes add up to at most (1 + v)^2 times the scale, adds the fp32 bound of that.
TF32_ROUNDING = 2.0 ** -11


def relative_tolerance_tf32(terms):
    v = TF32_ROUNDING
    return 2 * v + v * v + relative_tolerance(terms) * (1 + v) ** 2


class Case:
    """One convolution problem: input N×C×H×W, K filters of R×S, stride, padding, groups."""

    def __init__(self, name, n, c, h, w, k, r, s, stride=1, padding=0, groups=1):
        self.name = name
        self.x_shape = (n, c, h, w)
        self.w_shape = (k, c // groups, r, s)
        self.stride, self.padding, self.groups = stride, padding, groups

    @property
    def geometry(self):
        return dict(stride=self.stride, padding=self.padding, groups=self.groups)

    def y_shape(self):
        n, _, h, w = self.x_shape
        k, _, r, s = self.w_shape
        (sh, sw), (ph, pw) = _pair(self.stride), _pair(self.padding)
        return (n, k, (h + 2 * ph - r) // sh + 1, (w + 2 * pw - s) // sw + 1)

    def inputs(self, seed, device="cpu"):
        """x, w, dy uniform in [-1, 1), float32, from a seeded generator (a failure reproduces exactly)."""
        generator = torch.Generator().manual_seed(seed)

        def uniform(shape):
            return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1).float().to(device)

        return uniform(self.x_shape), uniform(self.w_shape), uniform(self.y_shape())

    # The number of products each output element of a pass adds up: the n of the bound.
    def terms(self):
        k, cg, r, s = self.w_shape
        n, _, p, q = self.y_shape()
        return {"forward": cg * r * s, "backward_data": (k // self.groups) * r * s, "backward_weight": n * p * q}

    def __repr__(self):
        return f"{self.name}: x {self.x_shape}, w {self.w_shape}, {self.geometry}"


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def reference(case, x, w, dy):
    """{pass: (exact value, scale)} from PyTorch in float64: y = conv2d(x, w); dx, dw = autograd.grad of y
    with dy. The scale of an element is the same computation on |x|, |w|, |dy|: the sum of the absolute
    values of its terms."""

    def passes(x, w, dy):
        x = x.detach().double().cpu().requires_grad_()
        w = w.detach().double().cpu().requires_grad_()
        y = F.conv2d(x, w, **case.geometry)
        dx, dw = torch.autograd.grad(y, (x, w), dy.detach().double().cpu())
        return {"forward": y.detach(), "backward_data": dx, "backward_weight": dw}

    exact = passes(x, w, dy)
    scale = passes(x.abs(), w.abs(), dy.abs())
    return {name: (exact[name], scale[name]) for name in exact}


def failures(case, pass_name, actual, exact, scale, tolerance_of=relative_tolerance):
    """A description of every way `actual` misses the bound ("" when it meets it everywhere)."""
    actual = torch.as_tensor(actual).detach().cpu()
    if tuple(actual.shape) != tuple(exact.shape):
        return f"{pass_name}: shape {tuple(actual.shape)}, expected {tuple(exact.shape)}"
    if actual.dtype != torch.float32:
        return f"{pass_name}: dtype {actual.dtype}, expected float32"
    tolerance = tolerance_of(case.terms()[pass_name])
    error = (actual.double() - exact).abs()
    bad = ~(error <= ABSOLUTE_TOLERANCE + tolerance * scale)  # NaN fails: the comparison is False
    if not bad.any():
        return ""
    count = int(bad.sum())
    lines = [f"{pass_name} of {case}: {count} of {actual.numel()} elements beyond {tolerance:.2e} "
             f"of their scale; max abs error {error.max():.3e}"]
    for index in bad.nonzero()[:5].tolist():
        index = tuple(index)
        lines.append(f"  {index}: {actual[index]:.9g} vs {exact[index]:.9g} (scale {scale[index]:.3e})")
    return "\n".join(lines)


def run_passes(case, x, w, dy):
    """The three passes of `case` through the binding's functions, as {pass: result}."""
    return {
        "forward": cheapconv.conv2d_forward(x, w, **case.geometry),
        "backward_data": cheapconv.conv2d_backward_data(dy, w, case.x_shape, **case.geometry),
        "backward_weight": cheapconv.conv2d_backward_weight(x, dy, case.w_shape, **case.geometry),
    }


def check_passes(test, case, results, x, w, dy):
    """Fails `test` with every pass of `results` ({pass: array}) that misses the bound."""
    exact = reference(case, x, w, dy)
    problems = [failures(case, name, value, *exact[name]) for name, value in results.items()]
    problems = [p for p in problems if p]
    if problems:
        test.fail("\n".join(problems))


# The shapes every device and entry point is checked on: depthwise, grouped, dense, 1×1 (the GEMM path),
# stride 2 and mixed strides, padding 0/1/asymmetric, odd sizes, and reductions long enough for the weight
# gradient to be split. Small, because the emulator runs every CUDA thread as a fiber.
CASES = [
    Case("depthwise_3x3_pad1", 2, 8, 9, 9, 8, 3, 3, padding=1, groups=8),
    Case("depthwise_3x3_stride2_odd", 2, 6, 11, 7, 6, 3, 3, stride=2, padding=1, groups=6),
    Case("depthwise_multiplier2_pad0", 1, 4, 8, 8, 8, 3, 3, groups=4),
    Case("grouped_3x3_pad0", 2, 8, 8, 8, 12, 3, 3, groups=4),
    Case("grouped_3x3_stride2_odd", 3, 6, 9, 13, 9, 3, 3, stride=2, padding=1, groups=3),
    Case("dense_3x3_pad1", 2, 5, 10, 10, 7, 3, 3, padding=1),
    Case("dense_5x3_stride2_pad2x1", 2, 3, 11, 9, 4, 5, 3, stride=2, padding=(2, 1)),
    Case("dense_3x3_stride1x2_odd", 1, 3, 7, 12, 5, 3, 3, stride=(1, 2), padding=1),
    Case("dense_3x3_long_reduction", 8, 4, 12, 12, 4, 3, 3, padding=1),
    Case("pointwise_1x1", 2, 16, 6, 6, 24, 1, 1),
    Case("pointwise_1x1_stride2_odd", 3, 7, 9, 7, 5, 1, 1, stride=2),
    Case("pointwise_1x1_long_reduction", 4, 8, 16, 16, 8, 1, 1),
    Case("grouped_1x1", 2, 8, 5, 5, 8, 1, 1, groups=2),
]
CASES_BY_NAME = {case.name: case for case in CASES}


def add_case_tests(cls, check, cases=CASES):
    """One test method per case, test_<case name>, calling check(self, case): each shape passes or fails
    on its own line of the report."""
    for case in cases:
        def test(self, case=case):
            check(self, case)
        test.__name__ = f"test_{case.name}"
        test.__doc__ = repr(case)
        setattr(cls, test.__name__, test)
    return cls
