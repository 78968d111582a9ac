"""cheapconv.torch: the autograd Function against PyTorch's gradients, and the nn.Module in training."""

import math
import unittest
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from conv_reference import ABSOLUTE_TOLERANCE, CASES_BY_NAME, EPSILON, add_case_tests, check_passes, relative_tolerance

import cheapconv
from cheapconv.torch import Conv2d, Conv2dFunction

AUTOGRAD_CASES = [CASES_BY_NAME[name] for name in
                  ("depthwise_3x3_stride2_odd", "grouped_3x3_pad0", "dense_5x3_stride2_pad2x1", "pointwise_1x1")]


def dyadic(shape, generator, bits=5):
    """float32 values k / 2^bits with |k| ≤ 2^bits: every product and every sum of a small convolution of
    them is exact in fp32 (and tf32), so results can be compared for equality, not within a bound."""
    scale = 2 ** bits
    return torch.randint(-scale, scale + 1, shape, generator=generator).float() / scale


class FunctionTests(unittest.TestCase):
    """Conv2dFunction's gradients reach x and w and match PyTorch's autograd of F.conv2d."""

    def check(self, case):
        x, w, dy = case.inputs(seed=7)
        x_leaf, w_leaf = x.clone().requires_grad_(), w.clone().requires_grad_()
        y = Conv2dFunction.apply(x_leaf, w_leaf, case.stride, case.padding, case.groups)
        self.assertTrue(y.requires_grad)
        y.backward(dy)
        check_passes(self, case, {"forward": y, "backward_data": x_leaf.grad, "backward_weight": w_leaf.grad}, x, w, dy)

    def test_only_the_gradients_asked_for_are_computed(self):
        case = CASES_BY_NAME["grouped_3x3_pad0"]
        x, w, dy = case.inputs(seed=8)
        w.requires_grad_()
        y = Conv2dFunction.apply(x, w, case.stride, case.padding, case.groups)
        (dw,) = torch.autograd.grad(y, (w,), dy)
        self.assertIsNone(x.grad)
        check_passes(self, case, {"backward_weight": dw}, x, w.detach(), dy)

    def test_gradcheck(self):
        # torch.autograd.gradcheck in float32: finite differences of our forward against our backward.
        # With dyadic inputs and a dyadic step every value involved is exact in fp32, so the check can ask
        # for equality (atol = rtol = 0) instead of the loose tolerances float32 gradchecks usually need
        # (which is also why its warning about float32 inputs is silenced).
        generator = torch.Generator().manual_seed(9)
        problems = [((2, 4, 5, 5), (4, 2, 3, 3), 2, 1, 2),   # grouped, stride 2, padded: the direct kernels
                    ((2, 6, 5, 3), (5, 6, 1, 1), 2, 0, 1)]   # 1×1: the GEMM kernels
        for x_shape, w_shape, stride, padding, groups in problems:
            with self.subTest(x=x_shape, w=w_shape):
                x = dyadic(x_shape, generator).requires_grad_()
                w = dyadic(w_shape, generator).requires_grad_()
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "Input #", UserWarning)
                    self.assertTrue(torch.autograd.gradcheck(
                        lambda x, w: Conv2dFunction.apply(x, w, stride, padding, groups), (x, w),
                        eps=2.0 ** -5, atol=0, rtol=0))

    def test_jacobian_equals_pytorch(self):
        # The whole Jacobian with respect to x and w, one backward per output element, against PyTorch's.
        generator = torch.Generator().manual_seed(10)
        x, w = dyadic((1, 3, 5, 4), generator), dyadic((6, 1, 3, 2), generator)
        ours = torch.autograd.functional.jacobian(lambda x, w: Conv2dFunction.apply(x, w, (2, 1), 1, 3), (x, w))
        theirs = torch.autograd.functional.jacobian(lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=1, groups=3),
                                                    (x, w))
        for name, a, b in zip(("dy/dx", "dy/dw"), ours, theirs):
            self.assertTrue(torch.equal(a, b), f"{name}: max difference {(a - b).abs().max()}")

    def test_functional_form_adds_the_bias(self):
        case = CASES_BY_NAME["dense_3x3_pad1"]
        x, w, _ = case.inputs(seed=11)
        bias = torch.linspace(-1, 1, w.shape[0])
        y = cheapconv.torch.conv2d(x, w, bias, **case.geometry)
        self.assertTrue(torch.equal(y, Conv2dFunction.apply(x, w, 1, 1, 1) + bias.view(1, -1, 1, 1)))


add_case_tests(FunctionTests, FunctionTests.check, AUTOGRAD_CASES)


class ModuleTests(unittest.TestCase):
    """cheapconv.torch.Conv2d beside torch.nn.Conv2d."""

    def test_default_initialisation_is_pytorchs(self):
        for bias in (False, True):
            torch.manual_seed(12)
            theirs = nn.Conv2d(8, 16, 3, padding=1, groups=4, bias=bias)
            torch.manual_seed(12)
            ours = Conv2d(8, 16, 3, padding=1, groups=4, bias=bias)
            self.assertEqual(ours.state_dict().keys(), theirs.state_dict().keys())
            for name, value in theirs.state_dict().items():
                self.assertTrue(torch.equal(ours.state_dict()[name], value), name)

    def test_groups_must_divide_the_channels(self):
        with self.assertRaises(cheapconv.InvalidValueError):
            Conv2d(6, 8, 3, groups=4)

    def test_one_sgd_step_in_a_model_matches_torch(self):
        # A small model in which every layer is ours: depthwise 3×3 stride 2 with bias, then a pointwise
        # 1×1 with bias, and a loss linear in the output (so the first-order error analysis below is exact
        # enough to be a bound). The reference is the same model of torch.nn.Conv2d with copied weights in
        # float64; torch.nn.Conv2d in float32 must meet the same bound (it is fair, not tuned to us).
        torch.manual_seed(13)
        ours = nn.Sequential(Conv2d(6, 6, 3, stride=2, padding=1, groups=6, bias=True), Conv2d(6, 10, 1, bias=True))
        reference = nn.Sequential(nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=6), nn.Conv2d(6, 10, 1))
        reference.load_state_dict(ours.state_dict())
        reference32 = nn.Sequential(nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=6), nn.Conv2d(6, 10, 1))
        reference32.load_state_dict(ours.state_dict())
        x = torch.rand(4, 6, 9, 11) * 2 - 1
        target = torch.rand(4, 10, 5, 6) * 2 - 1

        def step(model, dtype):
            model = model.to(dtype)
            optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
            loss = (model(x.to(dtype)) * target.to(dtype)).sum() / x.shape[0]
            loss.backward()
            grads = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
            optimiser.step()
            return grads, {name: p.detach().clone() for name, p in model.named_parameters()}

        exact_grads, exact_params = step(reference, torch.float64)
        # The scale of every gradient: the same backward on absolute values (|x|, |w|, |b|, |target|).
        absolute = nn.Sequential(nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=6), nn.Conv2d(6, 10, 1)).double()
        absolute.load_state_dict({k: v.abs() for k, v in ours.state_dict().items()})
        (absolute(x.double().abs()) * target.double().abs()).sum().div(x.shape[0]).backward()
        grad_scale = {name: p.grad for name, p in absolute.named_parameters()}

        # First order, relative errors of the stages a gradient goes through add up: forward of both layers,
        # backward-data of the 1×1, backward-weight of both (sums over N·P·Q), the loss's own sum and the
        # bias additions. One sum of all of them bounds every gradient. (A model that did not step at all
        # misses the parameter bound by the whole step, 0.1·g.)
        n_out = x.shape[0] * 5 * 6
        tolerance = (relative_tolerance(9) + relative_tolerance(6) + relative_tolerance(10)
                     + 2 * relative_tolerance(n_out) + relative_tolerance(target.numel()) + 4 * EPSILON)
        for name_of_run, model in (("cheapconv", ours), ("torch float32", reference32)):
            grads, params = step(model, torch.float32)
            for name, exact in exact_params.items():
                grad_bound = ABSOLUTE_TOLERANCE + tolerance * grad_scale[name]
                grad_error = (grads[name].double() - exact_grads[name]).abs()
                self.assertTrue(bool((grad_error <= grad_bound).all()),
                                f"{name_of_run} grad {name}: max error {grad_error.max():.3e}, "
                                f"worst error/bound {(grad_error / grad_bound).max():.2f}")
                # The update p − 0.1·(g + 5e-4·p) adds one rounding of |p| and of the step on top.
                step_scale = 0.1 * (grad_scale[name] + 5e-4 * exact.abs())
                param_bound = 0.1 * grad_bound + 2 * EPSILON * (exact.abs() + step_scale)
                param_error = (params[name].double() - exact).abs()
                self.assertTrue(bool((param_error <= param_bound).all()),
                                f"{name_of_run} {name} after the step: max error {param_error.max():.3e}")

    def test_trains_in_a_model_with_batch_norm_and_relu(self):
        # A model as a user writes it: loss goes down over a few steps on a fixed batch.
        torch.manual_seed(14)
        model = nn.Sequential(Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                              Conv2d(8, 8, 3, stride=2, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU(),
                              Conv2d(8, 16, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))
        x, labels = torch.randn(8, 3, 12, 12), torch.randint(0, 4, (8,))
        optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        losses = []
        for _ in range(5):
            optimiser.zero_grad()
            loss = F.cross_entropy(model(x), labels)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        self.assertTrue(all(math.isfinite(v) for v in losses), losses)
        self.assertLess(losses[-1], losses[0], losses)


if __name__ == "__main__":
    unittest.main()
