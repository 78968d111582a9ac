"""Mistakes are refused with a message that says what was wrong; a missing library says where it looked."""

import _ctypes
import os
import pathlib
import unittest

import numpy as np
import torch

import conv_reference  # noqa: F401  (puts this checkout's binding on sys.path)

import cheapconv
from cheapconv import _library

EMULATOR_ENV, _, _ = _library.EMULATOR
CUDA_ENV, _, _ = _library.CUDA


def zeros(*shape, dtype=torch.float32):
    return torch.zeros(shape, dtype=dtype)


class InvalidProblemTests(unittest.TestCase):
    """Impossible problems: the library's own explanation (cc_last_error), as an InvalidValueError."""

    def assert_library_refuses(self, call, *words):
        with self.assertRaises(cheapconv.CheapConvError) as raised:
            call()
        error = raised.exception
        self.assertIsInstance(error, ValueError)
        self.assertEqual(error.status, 1)
        self.assertEqual(error.status_name, "CC_ERROR_INVALID_VALUE")
        # The library, not the binding, refused it, and said why; the problem it was given follows.
        self.assertTrue(error.message.startswith("cc_conv_init: "), error.message)
        explanation = error.message[len("cc_conv_init: "):error.message.index(" [x ")]
        self.assertGreater(len(explanation), 10, error.message)
        for word in words:
            self.assertIn(word, str(error).lower())
        return error

    def test_groups_not_dividing_the_channels(self):
        self.assert_library_refuses(lambda: cheapconv.conv2d_forward(zeros(1, 6, 5, 5), zeros(4, 2, 3, 3), groups=4),
                                    "group")

    def test_filter_larger_than_the_padded_input(self):
        self.assert_library_refuses(lambda: cheapconv.conv2d_forward(zeros(1, 2, 4, 4), zeros(3, 2, 5, 5)))
        # The same filter fits once the padding makes the input 6×6: the boundary is where it should be.
        self.assertEqual(tuple(cheapconv.conv2d_forward(zeros(1, 2, 4, 4), zeros(3, 2, 5, 5), padding=1).shape),
                         (1, 3, 2, 2))

    def test_zero_stride_and_negative_padding(self):
        self.assert_library_refuses(lambda: cheapconv.conv2d_forward(zeros(1, 2, 5, 5), zeros(3, 2, 3, 3), stride=0))
        self.assert_library_refuses(lambda: cheapconv.conv2d_forward(zeros(1, 2, 5, 5), zeros(3, 2, 3, 3), padding=-1))

    def test_backward_passes_check_the_problem_too(self):
        self.assert_library_refuses(
            lambda: cheapconv.conv2d_backward_data(zeros(1, 4, 3, 3), zeros(4, 2, 3, 3), (1, 6, 5, 5), groups=4))
        self.assert_library_refuses(
            lambda: cheapconv.conv2d_backward_weight(zeros(1, 6, 5, 5), zeros(1, 4, 3, 3), (4, 2, 3, 3), groups=4))


class ArgumentTests(unittest.TestCase):
    """What the library cannot see (dtypes, the shapes of the arrays themselves) the binding checks."""

    def assert_refused(self, call, *fragments):
        with self.assertRaises(cheapconv.InvalidValueError) as raised:
            call()
        self.assertIsNone(raised.exception.status)
        for fragment in fragments:
            self.assertIn(fragment, str(raised.exception))

    def test_wrong_dtypes(self):
        self.assert_refused(lambda: cheapconv.conv2d_forward(zeros(1, 2, 5, 5, dtype=torch.float64), zeros(3, 2, 3, 3)),
                            "x has dtype float64", "float32")
        self.assert_refused(lambda: cheapconv.conv2d_forward(np.zeros((1, 2, 5, 5), np.float32),
                                                             np.zeros((3, 2, 3, 3), np.float16)),
                            "w has dtype float16")
        self.assert_refused(lambda: cheapconv.conv2d_backward_weight(zeros(1, 2, 5, 5), zeros(1, 3, 3, 3, dtype=torch.int32),
                                                                     (3, 2, 3, 3)),
                            "dy has dtype int32")

    def test_weight_channels_that_do_not_match_the_input(self):
        self.assert_refused(lambda: cheapconv.conv2d_forward(zeros(1, 4, 5, 5), zeros(3, 3, 3, 3)),
                            "w has shape (3, 3, 3, 3)", "(3, 4, 3, 3)")
        self.assert_refused(lambda: cheapconv.conv2d_backward_weight(zeros(1, 4, 5, 5), zeros(1, 4, 3, 3), (4, 4, 3, 3),
                                                                     groups=2),
                            "w_shape has shape (4, 4, 3, 3)", "(4, 2, 3, 3)")

    def test_gradient_of_the_wrong_shape(self):
        self.assert_refused(lambda: cheapconv.conv2d_backward_data(zeros(1, 3, 4, 4), zeros(3, 2, 3, 3), (1, 2, 5, 5)),
                            "dy has shape (1, 3, 4, 4)", "(1, 3, 3, 3)")
        self.assert_refused(lambda: cheapconv.conv2d_backward_weight(zeros(2, 2, 5, 5), zeros(1, 3, 3, 3), (3, 2, 3, 3)),
                            "dy has shape (1, 3, 3, 3)", "(2, 3, 3, 3)")

    def test_not_four_dimensional(self):
        self.assert_refused(lambda: cheapconv.conv2d_forward(zeros(2, 5, 5), zeros(3, 2, 3, 3)), "4 dimensions")

    def test_mixed_kinds(self):
        self.assert_refused(lambda: cheapconv.conv2d_forward(zeros(1, 2, 5, 5), np.zeros((3, 2, 3, 3), np.float32)),
                            "w is a ndarray", "torch tensor on cpu")
        self.assert_refused(lambda: cheapconv.conv2d_forward([[1.0]], zeros(3, 2, 3, 3)), "NumPy array or a torch tensor")

    def test_stride_that_is_not_an_int_or_pair(self):
        self.assert_refused(lambda: cheapconv.conv2d_forward(zeros(1, 2, 5, 5), zeros(3, 2, 3, 3), stride=1.5),
                            "stride must be an int")
        self.assert_refused(lambda: cheapconv.conv2d_forward(zeros(1, 2, 5, 5), zeros(3, 2, 3, 3), padding=(1, 1, 1)),
                            "padding must be an int or a pair")


class LibraryLoadingTests(unittest.TestCase):

    def test_version_major_matches_the_binding(self):
        self.assertEqual(cheapconv.library_version().split(".")[0], str(_library.BINDING_VERSION_MAJOR))

    def test_the_gpu_library_loads_without_a_gpu(self):
        # libcheapconv.so loads the CUDA driver only when a handle is made: its version, backend and the
        # launcher's kernel choice (the same code as the emulator's) are there on any machine.
        self.assertEqual(cheapconv.library_version(cuda=True), cheapconv.library_version())
        shapes = ((2, 16, 6, 6), (24, 16, 1, 1))
        self.assertEqual(cheapconv.conv2d_kernel_names(*shapes, cuda=True), cheapconv.conv2d_kernel_names(*shapes))

    def test_missing_library_lists_every_path_tried_and_how_to_build(self):
        with self.assertRaises(cheapconv.LibraryLoadError) as raised:
            _library.load(_library.EMULATOR, environ={EMULATOR_ENV: "/nonexistent/libcheapconv_emu.so"})
        message = str(raised.exception)
        self.assertIn("/nonexistent/libcheapconv_emu.so: not found", message)
        self.assertIn("make -C native", message)
        self.assertIn(EMULATOR_ENV, message)
        self.assertIsInstance(raised.exception, OSError)

    def test_without_the_variable_it_looks_beside_the_package_then_in_the_repository(self):
        package = pathlib.Path(cheapconv.__file__).resolve().parent
        self.assertEqual(_library.candidate_paths(CUDA_ENV, "libcheapconv.so", environ={}),
                         [package / "libcheapconv.so", package.parent / "libcheapconv.so",
                          package.parents[2] / "native" / "build" / "lib" / "libcheapconv.so"])

    def test_a_file_that_is_not_a_library_is_reported_with_the_loader_error(self):
        with self.assertRaises(cheapconv.LibraryLoadError) as raised:
            _library.load(_library.EMULATOR, environ={EMULATOR_ENV: __file__})
        self.assertIn(__file__ + ": ", str(raised.exception))
        self.assertNotIn("not found", str(raised.exception).splitlines()[1])

    def test_a_library_without_the_abi_is_refused(self):
        other = _ctypes.__file__  # a shared library that loads, but exports no cc_* call
        with self.assertRaises(cheapconv.LibraryLoadError) as raised:
            _library.load(_library.EMULATOR, environ={EMULATOR_ENV: other})
        self.assertIn(f"{other}: does not export cc_version", str(raised.exception))

    def test_the_emulator_library_is_refused_where_the_cuda_one_is_expected(self):
        with self.assertRaises(cheapconv.LibraryLoadError) as raised:
            _library.load(_library.CUDA, environ={CUDA_ENV: cheapconv.library_path()})
        self.assertIn("the emulator library where the CUDA one was expected", str(raised.exception))

    @unittest.skipUnless(os.environ.get(EMULATOR_ENV), f"{EMULATOR_ENV} is not set")
    def test_the_variable_names_the_library_that_is_loaded(self):
        self.assertEqual(pathlib.Path(cheapconv.library_path()), pathlib.Path(os.environ[EMULATOR_ENV]))


if __name__ == "__main__":
    unittest.main()
