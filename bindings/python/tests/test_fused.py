"""cheapconv.conv2d_forward_fused on the CPU (the emulator library): the residual add bit for bit that of a separate
float32 add after conv2d_forward, the eval batch norm + ReLU within fp32's bound of float64, on the tensor-core path
(tf32) and on the fallback path (fp32: the library's separate calls), and its refusals."""

import unittest

import numpy as np
import torch

from conv_reference import Case, CASES_BY_NAME, EPSILON

import cheapconv
from cheapconv import EvalBatchNorm

DENSE_3X3 = Case("dense_3x3_8_channels", 2, 8, 6, 5, 8, 3, 3, stride=2, padding=1)


def _batch_norm(k, seed, eps=1e-5):
    generator = np.random.default_rng(seed)
    return EvalBatchNorm(gamma=generator.uniform(0.5, 1.5, k).astype(np.float32),
                         beta=generator.uniform(-0.2, 0.2, k).astype(np.float32),
                         running_mean=generator.uniform(-0.3, 0.3, k).astype(np.float32),
                         running_var=generator.uniform(0.5, 1.5, k).astype(np.float32), eps=eps)


def _expected_activated(v, bn):
    """relu(gamma (v - mean) / sqrt(var + eps) + beta) in float64 per channel, and the magnitude of its terms."""
    shape = (1, -1, 1, 1)
    gamma, beta, mean, var = (np.asarray(t, np.float64).reshape(shape)
                              for t in (bn.gamma, bn.beta, bn.running_mean, bn.running_var))
    normalised = gamma * (v.astype(np.float64) - mean) / np.sqrt(var + bn.eps)
    return np.maximum(normalised + beta, 0.0), np.abs(normalised) + np.abs(beta) + np.abs(gamma * mean)


class FusedForwardTests(unittest.TestCase):

    def run_case(self, case, precision, seed):
        cheapconv.set_precision(precision)
        self.addCleanup(cheapconv.set_precision, "fp32")
        x, w, _ = (t.numpy() for t in case.inputs(seed=seed))
        residual = np.random.default_rng(seed).uniform(-1, 1, case.y_shape()).astype(np.float32)
        bn = _batch_norm(case.w_shape[0], seed)
        y, activated = cheapconv.conv2d_forward_fused(x, w, residual=residual, batch_norm=bn, **case.geometry)
        plain = cheapconv.conv2d_forward(x, w, **case.geometry)
        # The epilogue's add is cc_add's: one float32 addition, rounded to nearest, as NumPy's.
        np.testing.assert_array_equal(y, plain + residual)
        exact, scale = _expected_activated(y, bn)
        # A handful of roundings (subtract, divide by the rounded deviation, multiply, add), each at most ε of its term.
        bound = 16 * EPSILON * scale + 1e-30
        self.assertTrue(np.all(np.abs(activated - exact) <= bound), f"{case.name} {precision}: "
                        f"worst {np.max(np.abs(activated - exact) / bound):.2f} of the bound")
        only = cheapconv.conv2d_forward_fused(x, w, residual=residual, batch_norm=bn, keep_output=False, **case.geometry)
        np.testing.assert_array_equal(only, activated)
        return cheapconv.conv2d_kernel_names(case.x_shape, case.w_shape, **case.geometry)["forward"]

    def test_tensor_core_path(self):
        for case in (CASES_BY_NAME["pointwise_1x1"], DENSE_3X3):
            self.assertIn("implicit_gemm", self.run_case(case, "tf32", seed=1), case.name)

    def test_separate_calls_path(self):
        for case in (DENSE_3X3, CASES_BY_NAME["depthwise_3x3_pad1"], CASES_BY_NAME["grouped_3x3_stride2_odd"]):
            self.assertNotIn("implicit_gemm", self.run_case(case, "fp32", seed=2), case.name)

    def test_residual_only_and_plain(self):
        case = CASES_BY_NAME["pointwise_1x1"]
        x, w, _ = (t.numpy() for t in case.inputs(seed=3))
        residual = np.ones(case.y_shape(), np.float32)
        plain = cheapconv.conv2d_forward(x, w, **case.geometry)
        np.testing.assert_array_equal(cheapconv.conv2d_forward_fused(x, w, residual=residual, **case.geometry), plain + 1)
        np.testing.assert_array_equal(cheapconv.conv2d_forward_fused(x, w, **case.geometry), plain)

    def test_torch_tensors_in_torch_tensors_out(self):
        case = DENSE_3X3
        x, w, _ = case.inputs(seed=4)
        bn = EvalBatchNorm(*(torch.from_numpy(t) for t in _batch_norm(case.w_shape[0], 4)[:4]), eps=1e-3)
        y, activated = cheapconv.conv2d_forward_fused(x, w, batch_norm=bn, **case.geometry)
        self.assertIsInstance(activated, torch.Tensor)
        np.testing.assert_array_equal(y.numpy(), cheapconv.conv2d_forward(x, w, **case.geometry).numpy())


class FusedForwardRefusalTests(unittest.TestCase):
    case = CASES_BY_NAME["pointwise_1x1"]

    def setUp(self):
        x, w, _ = self.case.inputs(seed=5)
        self.x, self.w = x.numpy(), w.numpy()
        self.k = self.case.w_shape[0]

    def refusal(self, **arguments):
        with self.assertRaises(cheapconv.InvalidValueError) as caught:
            cheapconv.conv2d_forward_fused(self.x, self.w, **arguments, **self.case.geometry)
        return str(caught.exception)

    def test_batch_norm_of_another_type(self):
        self.assertIn("EvalBatchNorm", self.refusal(batch_norm={"gamma": 1}))

    def test_parameters_not_one_per_output_channel(self):
        bn = _batch_norm(self.k + 1, 6)
        self.assertIn("gamma has shape", self.refusal(batch_norm=bn))

    def test_residual_of_another_shape(self):
        shape = list(self.case.y_shape())
        shape[1] += 1
        self.assertIn("residual has shape", self.refusal(residual=np.zeros(shape, np.float32)))

    def test_residual_of_another_kind(self):
        self.assertIn("residual is a", self.refusal(residual=torch.zeros(self.case.y_shape())))

    def test_nothing_to_return(self):
        self.assertIn("keep_output=False", self.refusal(keep_output=False))

    def test_eps_impossible(self):
        for eps in (-1.0, float("nan"), "small"):
            self.assertIn("eps", self.refusal(batch_norm=_batch_norm(self.k, 7)._replace(eps=eps)))


if __name__ == "__main__":
    unittest.main()
