"""The three passes on the CPU (the emulator library) against PyTorch's conv2d and autograd in float64."""

import os
import pathlib
import subprocess
import sys
import unittest

import numpy as np
import torch

from conv_reference import (CASES_BY_NAME, Case, add_case_tests, check_passes, failures, reference,
                            relative_tolerance_tf32, run_passes)

import cheapconv
from cheapconv import _library


class TorchCpuPassesTests(unittest.TestCase):
    """torch CPU tensors in, torch CPU tensors out; one test per shape of conv_reference.CASES."""

    def check(self, case):
        x, w, dy = case.inputs(seed=1)
        results = run_passes(case, x, w, dy)
        for name, value in results.items():
            self.assertIsInstance(value, torch.Tensor, name)
        check_passes(self, case, results, x, w, dy)


add_case_tests(TorchCpuPassesTests, TorchCpuPassesTests.check)


class NumpyTests(unittest.TestCase):
    """NumPy arrays in, NumPy arrays out, the same bits as the torch path (same kernels, deterministic)."""

    case = CASES_BY_NAME["grouped_3x3_stride2_odd"]

    def test_numpy_in_numpy_out_matches_the_torch_path(self):
        x, w, dy = self.case.inputs(seed=2)
        from_numpy = run_passes(self.case, x.numpy(), w.numpy(), dy.numpy())
        from_torch = run_passes(self.case, x, w, dy)
        for name, value in from_numpy.items():
            self.assertIsInstance(value, np.ndarray, name)
            self.assertEqual(value.dtype, np.float32, name)
            np.testing.assert_array_equal(value, from_torch[name].numpy(), err_msg=name)
        check_passes(self, self.case, {k: torch.from_numpy(v) for k, v in from_numpy.items()}, x, w, dy)

    def test_non_contiguous_and_unaligned_inputs_are_copied(self):
        x, w, dy = self.case.inputs(seed=3)
        expected = run_passes(self.case, x.numpy(), w.numpy(), dy.numpy())
        # NHWC memory seen as NCHW (strided), and float32s 2 bytes into a byte buffer (not 4-byte aligned,
        # which cheapconv.h requires).
        x_strided = np.ascontiguousarray(x.numpy().transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        self.assertFalse(x_strided.flags.c_contiguous)
        w_bytes = np.zeros(w.numel() * 4 + 2, np.uint8)
        w_unaligned = np.frombuffer(w_bytes.data, np.float32, w.numel(), offset=2).reshape(w.shape)
        w_bytes[2:] = np.frombuffer(w.numpy().tobytes(), np.uint8)
        self.assertNotEqual(w_unaligned.ctypes.data % 4, 0)
        actual = run_passes(self.case, x_strided, w_unaligned, dy.numpy())
        for name in expected:
            np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)

    def test_numpy_use_does_not_import_torch(self):
        # A NumPy user needs no torch: the binding imports it only for torch tensors and cheapconv.torch.
        script = ("import sys, numpy as np, cheapconv; "
                  "cheapconv.conv2d_forward(np.ones((1, 2, 4, 4), np.float32), np.ones((3, 2, 3, 3), np.float32)); "
                  "print('torch' in sys.modules)")
        package_root = str(pathlib.Path(cheapconv.__file__).resolve().parents[1])
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": package_root})
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout.strip(), "False")

    def test_channels_last_torch_tensor_gives_the_same_result(self):
        x, w, dy = self.case.inputs(seed=4)
        expected = cheapconv.conv2d_forward(x, w, **self.case.geometry)
        actual = cheapconv.conv2d_forward(x.contiguous(memory_format=torch.channels_last), w, **self.case.geometry)
        self.assertTrue(torch.equal(actual, expected))

    def test_stride_and_padding_accept_pairs(self):
        x, w, _ = self.case.inputs(seed=5)
        self.assertTrue(torch.equal(cheapconv.conv2d_forward(x, w, stride=2, padding=1, groups=3),
                                    cheapconv.conv2d_forward(x, w, stride=(2, 2), padding=[1, 1], groups=3)))


class BoundTests(unittest.TestCase):
    """The bound the pass tests use is neither too tight for fp32 nor too loose to see a wrong result."""

    case = CASES_BY_NAME["dense_3x3_pad1"]

    def test_pytorch_float32_meets_the_bound(self):
        x, w, dy = self.case.inputs(seed=6)
        x32, w32 = x.clone().requires_grad_(), w.clone().requires_grad_()
        y = torch.nn.functional.conv2d(x32, w32, **self.case.geometry)
        dx, dw = torch.autograd.grad(y, (x32, w32), dy)
        check_passes(self, self.case, {"forward": y, "backward_data": dx, "backward_weight": dw}, x, w, dy)

    def test_one_missing_term_misses_the_bound(self):
        x, w, dy = self.case.inputs(seed=6)
        exact, scale = reference(self.case, x, w, dy)["forward"]
        # y[0, 0, 1, 1] without its product x[0, 0, 0, 0]·w[0, 0, 0, 0] (the filter's top-left tap there).
        wrong = exact.clone()
        wrong[0, 0, 1, 1] -= float(x[0, 0, 0, 0]) * float(w[0, 0, 0, 0])
        self.assertEqual(failures(self.case, "forward", exact.float(), exact, scale), "")
        self.assertIn("1 of", failures(self.case, "forward", wrong.float(), exact, scale))

    def test_nan_misses_the_bound(self):
        x, w, dy = self.case.inputs(seed=6)
        exact, scale = reference(self.case, x, w, dy)["forward"]
        poisoned = exact.float()
        poisoned[1, 2, 3, 4] = float("nan")
        self.assertIn("1 of", failures(self.case, "forward", poisoned, exact, scale))


class Tf32Tests(unittest.TestCase):
    """With precision "tf32" (the library's default) 1x1 and many-channel 3x3 passes run on the tensor-core kernels,
    within tf32's bound of the float64 reference."""

    def setUp(self):
        cheapconv.set_precision("tf32")
        self.addCleanup(cheapconv.set_precision, "fp32")

    def test_tensor_core_passes_meet_the_tf32_bound(self):
        for case in (CASES_BY_NAME["pointwise_1x1"], Case("dense_3x3_8_channels", 2, 8, 6, 5, 8, 3, 3, stride=2, padding=1)):
            name = case.name
            names = cheapconv.conv2d_kernel_names(case.x_shape, case.w_shape, **case.geometry)
            self.assertIn("implicit_gemm", names["forward"], name)
            x, w, dy = case.inputs(seed=1)
            results = run_passes(case, x, w, dy)
            for pass_name, (exact, scale) in reference(case, x, w, dy).items():
                self.assertEqual("", failures(case, pass_name, results[pass_name], exact, scale, relative_tolerance_tf32))

    def test_unknown_precision_is_refused(self):
        with self.assertRaises(ValueError):
            cheapconv.set_precision("fp16")


class KernelChoiceTests(unittest.TestCase):
    """1×1 convolutions without groups or padding go through the GEMM kernels, 3×3 ones do not."""

    def test_pointwise_uses_the_gemm_kernels(self):
        for name in ("pointwise_1x1", "pointwise_1x1_stride2_odd"):
            case = CASES_BY_NAME[name]
            names = cheapconv.conv2d_kernel_names(case.x_shape, case.w_shape, **case.geometry)
            for conv_pass, kernels in names.items():
                self.assertRegex(kernels, "pointwise|gemm", f"{name} {conv_pass}")

    def test_long_pointwise_weight_gradient_is_split_with_a_workspace(self):
        # So the pass tests exercise the binding's workspace allocation (pointwise_1x1_long_reduction), whose first
        # CC_SPLIT_COUNTER_BYTES (65536) must be zero: the split reduces itself in one launch, so its kernel names do
        # not show it; the workspace size does.
        case = CASES_BY_NAME["pointwise_1x1_long_reduction"]
        library = _library.load(_library.EMULATOR)
        (n, c, h, width), (k, _, r, s) = case.x_shape, case.w_shape
        problem = library.conv_problem(n, c, h, width, k, r, s, (case.padding, case.padding), (case.stride, case.stride),
                                       case.groups)
        self.assertGreater(library.conv_workspace_size(problem, _library.CC_CONV_BACKWARD_WEIGHT), 65536)

    def test_grouped_and_3x3_do_not(self):
        for name in ("grouped_1x1", "dense_3x3_pad1", "depthwise_3x3_pad1"):
            case = CASES_BY_NAME[name]
            names = cheapconv.conv2d_kernel_names(case.x_shape, case.w_shape, **case.geometry)
            for conv_pass, kernels in names.items():
                self.assertNotRegex(kernels, "pointwise|gemm", f"{name} {conv_pass}")


if __name__ == "__main__":
    unittest.main()
