"""CUDA tensors through libcheapconv.so: the same checks as on the CPU, plus what only a GPU has (streams,
PyTorch's context, autograd's device threads). Skipped, with the reason, where torch sees no GPU; where it
does, a missing or failing libcheapconv.so fails these tests."""

import unittest

import torch

from conv_reference import CASES, CASES_BY_NAME, add_case_tests, check_passes, run_passes

import cheapconv
from cheapconv import _library
from cheapconv.torch import Conv2d, Conv2dFunction

CUDA = torch.cuda.is_available()
REASON = "torch.cuda.is_available() is False: no CUDA GPU or driver here"


@unittest.skipUnless(CUDA, REASON)
class CudaPassesTests(unittest.TestCase):
    """The three passes on cuda tensors, every shape of conv_reference.CASES."""

    def check(self, case):
        x, w, dy = case.inputs(seed=21, device="cuda")
        results = run_passes(case, x, w, dy)
        for name, value in results.items():
            self.assertEqual(value.device, x.device, name)
        check_passes(self, case, results, x, w, dy)


add_case_tests(CudaPassesTests, CudaPassesTests.check, CASES)


@unittest.skipUnless(CUDA, REASON)
class CudaIntegrationTests(unittest.TestCase):

    case = CASES_BY_NAME["grouped_3x3_stride2_odd"]

    def test_runs_on_the_current_stream(self):
        # Inputs produced on a side stream and used at once on it: a launch on any other stream would race
        # with the producing kernels (made slow on purpose by a large matmul chain before them).
        x, w, dy = self.case.inputs(seed=22, device="cuda")
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            big = torch.randn(4096, 4096, device="cuda")
            for _ in range(8):
                big = big @ big / 64
            x_late = x + big[0, 0] * 0  # ready only after the matmuls
            y = cheapconv.conv2d_forward(x_late, w, **self.case.geometry)
            y_host = y.to("cpu", non_blocking=False)
        torch.cuda.synchronize()
        check_passes(self, self.case, {"forward": y_host}, x, w, dy)

    def test_autograd_backward_on_autograds_device_thread(self):
        # PyTorch runs CUDA backward passes on its own per-device thread: the handle must work there too.
        x, w, dy = self.case.inputs(seed=23, device="cuda")
        x_leaf, w_leaf = x.clone().requires_grad_(), w.clone().requires_grad_()
        y = Conv2dFunction.apply(x_leaf, w_leaf, self.case.stride, self.case.padding, self.case.groups)
        y.backward(dy)
        check_passes(self, self.case, {"forward": y, "backward_data": x_leaf.grad, "backward_weight": w_leaf.grad},
                     x, w, dy)

    def test_one_handle_per_device_created_once(self):
        x, w, _ = self.case.inputs(seed=24, device="cuda")
        cheapconv.conv2d_forward(x, w, **self.case.geometry)
        library = _library.load(_library.CUDA)
        key = ("cuda", x.device.index)
        first = library._handles[key].value
        cheapconv.conv2d_forward(x, w, **self.case.geometry)
        self.assertEqual(library._handles[key].value, first)
        self.assertTrue(library.describe(library._handles[key]).startswith("cuda:"))

    def test_tensors_on_different_devices_are_refused(self):
        x, w, _ = self.case.inputs(seed=25, device="cuda")
        with self.assertRaises(cheapconv.InvalidValueError) as raised:
            cheapconv.conv2d_forward(x, w.cpu(), **self.case.geometry)
        self.assertIn("same device", str(raised.exception))

    @unittest.skipUnless(CUDA and torch.cuda.device_count() > 1, "one GPU only")
    def test_second_device(self):
        x, w, dy = self.case.inputs(seed=26, device="cuda:1")
        results = run_passes(self.case, x, w, dy)
        self.assertEqual(results["forward"].device, torch.device("cuda:1"))
        check_passes(self, self.case, results, x, w, dy)

    def test_module_on_the_gpu(self):
        # The nn.Module with its parameters moved by .cuda(): forward and both gradients on the GPU.
        case = CASES_BY_NAME["depthwise_3x3_stride2_odd"]
        x, w, dy = case.inputs(seed=27, device="cuda")
        layer = Conv2d(6, 6, 3, stride=2, padding=1, groups=6).cuda()
        with torch.no_grad():
            layer.weight.copy_(w)
        x_leaf = x.clone().requires_grad_()
        y = layer(x_leaf)
        y.backward(dy)
        check_passes(self, case, {"forward": y, "backward_data": x_leaf.grad, "backward_weight": layer.weight.grad},
                     x, w, dy)


if __name__ == "__main__":
    unittest.main()
