"""Finding, loading and calling the CheapConv C ABI (native/include/cheapconv.h) with ctypes.

Two libraries export the same ABI: libcheapconv_emu.so runs the kernels on the CPU in the CUDA emulator
(host pointers), libcheapconv.so on an NVIDIA GPU through the CUDA driver (device pointers). Each is
loaded on first use, once per process, and keeps its handles (one for the emulator, one per CUDA device).
"""

import atexit
import contextlib
import ctypes
import os
import pathlib
import threading

from ._errors import CheapConvError, InvalidValueError, LibraryLoadError

# The cheapconv.h this binding mirrors: a library with another major version has another ABI.
BINDING_VERSION_MAJOR = 3

# cc_status
CC_SUCCESS = 0
CC_ERROR_INVALID_VALUE = 1

# cc_backend
CC_BACKEND_CUDA = 0
CC_BACKEND_EMULATOR = 1

CC_CURRENT_CONTEXT = -1

# cc_conv_pass
CC_CONV_FORWARD = 0
CC_CONV_BACKWARD_DATA = 1
CC_CONV_BACKWARD_WEIGHT = 2
CONV_PASS_NAMES = {CC_CONV_FORWARD: "forward", CC_CONV_BACKWARD_DATA: "backward_data",
                   CC_CONV_BACKWARD_WEIGHT: "backward_weight"}


class ConvProblem(ctypes.Structure):
    """cc_conv_problem (native/include/cheapconv/problem.h): every field a 32-bit int, in this order."""
    _fields_ = [(name, ctypes.c_int) for name in
                ("n", "c", "h", "w", "k", "r", "s", "pad_h", "pad_w", "stride_h", "stride_w", "groups",
                 "p", "q", "layout", "dtype")]

    def __str__(self):
        return (f"x {self.n}x{self.c}x{self.h}x{self.w}, {self.k} filters {self.r}x{self.s}, pad {self.pad_h},{self.pad_w}, "
                f"stride {self.stride_h},{self.stride_w}, groups {self.groups}")


class Options(ctypes.Structure):
    """cc_options; all zero means the launcher's defaults."""
    _fields_ = [("algo", ctypes.c_int), ("split_chunk", ctypes.c_int), ("precision", ctypes.c_int), ("accumulate", ctypes.c_int)]


class ConvEpilogue(ctypes.Structure):
    """cc_conv_epilogue (native/include/cheapconv/problem.h): what cc_conv_forward_fused adds in the convolution's store."""
    _fields_ = [("residual", ctypes.c_void_p), ("bn_gamma", ctypes.c_void_p), ("bn_beta", ctypes.c_void_p),
                ("bn_mean", ctypes.c_void_p), ("bn_var", ctypes.c_void_p), ("activated", ctypes.c_void_p),
                ("bn_eps", ctypes.c_float)]


# cc_precision values, by the names set_precision takes.
PRECISIONS = {"tf32": 0, "fp32": 1}
# What the binding's convolutions may use (cheapconv.set_precision): tf32, the library's default (as PyTorch's
# cuDNN convolutions), or fp32.
_precision = "tf32"


def set_precision(name):
    global _precision
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {name!r}")
    _precision = name


def precision():
    return _precision


def _options():
    options = Options()
    options.precision = PRECISIONS[_precision]
    return ctypes.byref(options)


_status = ctypes.c_int
_handle = ctypes.c_void_p
_problem_p = ctypes.POINTER(ConvProblem)
_options_p = ctypes.POINTER(Options)
_float_p = ctypes.c_void_p  # raw addresses from NumPy / torch; ctypes passes ints as pointers

# name: (restype, argtypes) of every call the binding makes. Declaring them is what makes ctypes pass
# size_t and pointers at full width instead of as C ints.
_PROTOTYPES = {
    "cc_version": (ctypes.c_int, []),
    "cc_status_string": (ctypes.c_char_p, [_status]),
    "cc_last_error": (ctypes.c_char_p, []),
    "cc_backend_kind": (ctypes.c_int, []),
    "cc_create": (_status, [ctypes.POINTER(_handle), ctypes.c_int]),
    "cc_destroy": (_status, [_handle]),
    "cc_describe": (_status, [_handle, ctypes.c_char_p, ctypes.c_size_t]),
    "cc_conv_init": (_status, [_problem_p] + [ctypes.c_int] * 12),
    "cc_conv_validate": (_status, [_problem_p]),
    "cc_conv_workspace_size": (_status, [_problem_p, ctypes.c_int, _options_p, ctypes.POINTER(ctypes.c_size_t)]),
    "cc_conv_kernel_names": (_status, [_problem_p, ctypes.c_int, _options_p, ctypes.c_char_p, ctypes.c_size_t]),
}
# The three passes share one signature: (handle, problem, options, in_a, in_b, out, workspace, bytes, stream).
_CONV_CALLS = {CC_CONV_FORWARD: "cc_conv_forward", CC_CONV_BACKWARD_DATA: "cc_conv_backward_data",
               CC_CONV_BACKWARD_WEIGHT: "cc_conv_backward_weight"}
for _name in _CONV_CALLS.values():
    _PROTOTYPES[_name] = (_status, [_handle, _problem_p, _options_p, _float_p, _float_p, _float_p,
                                    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p])
_PROTOTYPES["cc_conv_forward_fused"] = (_status, [_handle, _problem_p, _options_p, ctypes.POINTER(ConvEpilogue),
                                                  _float_p, _float_p, _float_p, ctypes.c_void_p, ctypes.c_size_t,
                                                  ctypes.c_void_p])

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
# bindings/python/cheapconv -> the repository root, for a checkout used without installing anything.
_REPOSITORY_LIB_DIR = _PACKAGE_DIR.parents[2] / "native" / "build" / "lib"


def candidate_paths(env_var, file_name, environ=None):
    """Where to look for a library, in order. A path named by the environment variable is the only
    candidate: someone who points at a library means that one, and silently loading another would hide
    their mistake."""
    environ = os.environ if environ is None else environ
    explicit = environ.get(env_var)
    if explicit:
        return [pathlib.Path(explicit)]
    return [_PACKAGE_DIR / file_name, _PACKAGE_DIR.parent / file_name, _REPOSITORY_LIB_DIR / file_name]


class Library:
    """One loaded libcheapconv*.so with its prototypes declared and its version and backend checked."""

    def __init__(self, path, expected_backend):
        """Raises OSError (LibraryLoadError included) for a file that is not a usable library of the
        expected kind, so the search can say why and go on to the next candidate."""
        self.path = pathlib.Path(path)
        self._dll = ctypes.CDLL(str(self.path))
        for name, (restype, argtypes) in _PROTOTYPES.items():
            try:
                function = getattr(self._dll, name)
            except AttributeError:
                raise LibraryLoadError(f"does not export {name}: not a CheapConv {BINDING_VERSION_MAJOR}.x library "
                                       f"(a build from before the C ABI?)") from None
            function.restype = restype
            function.argtypes = argtypes
        self._lock = threading.Lock()
        self._handles = {}

        version = self._dll.cc_version()
        if version // 10000 != BINDING_VERSION_MAJOR:
            raise LibraryLoadError(f"ABI version {version // 10000}.{version // 100 % 100}.{version % 100}, this "
                                   f"binding speaks {BINDING_VERSION_MAJOR}.x: rebuild the library from the same "
                                   f"checkout as the binding")
        self.version = version
        backend = self._dll.cc_backend_kind()
        if backend != expected_backend:
            # E.g. CHEAPCONV_LIBRARY and CHEAPCONV_EMU_LIBRARY swapped: host pointers would reach the GPU.
            kinds = {CC_BACKEND_CUDA: "CUDA", CC_BACKEND_EMULATOR: "emulator"}
            raise LibraryLoadError(f"the {kinds.get(backend, backend)} library where the {kinds[expected_backend]} "
                                   f"one was expected")

    def check(self, status, call, problem=None):
        """Raises the exception for a failed call, with the library's own explanation (which names the
        call itself, usually) and the problem it was given."""
        if status == CC_SUCCESS:
            return
        name = self._dll.cc_status_string(status).decode()
        message = self._dll.cc_last_error().decode(errors="replace") or "(the library gave no message)"
        if not message.startswith(call):
            message = f"{call}: {message}"
        if problem is not None:
            message += f" [{problem}]"
        error = InvalidValueError if status == CC_ERROR_INVALID_VALUE else CheapConvError
        raise error(message, status=status, status_name=name)

    # ---- handles ----------------------------------------------------------------------------------------

    def handle(self, key, device, around=contextlib.nullcontext):
        """The handle cached under `key`, created on first use by cc_create(device) inside `around()` (for
        CC_CURRENT_CONTEXT: whatever makes the wanted context current on this thread)."""
        with self._lock:
            handle = self._handles.get(key)
            if handle is None:
                handle = _handle()
                with around():
                    self.check(self._dll.cc_create(ctypes.byref(handle), device), "cc_create", key)
                self._handles[key] = handle
            return handle

    def close(self):
        """Destroys every handle (at interpreter exit). Failures are ignored: the process is ending and a
        CUDA context may already be going away."""
        with self._lock:
            for handle in self._handles.values():
                self._dll.cc_destroy(handle)
            self._handles.clear()

    def describe(self, handle):
        text = ctypes.create_string_buffer(512)
        self.check(self._dll.cc_describe(handle, text, len(text)), "cc_describe")
        return text.value.decode(errors="replace")

    # ---- convolution ------------------------------------------------------------------------------------

    def conv_problem(self, n, c, h, w, k, r, s, padding, stride, groups):
        """cc_conv_init: the descriptor with p and q derived, or the library's reason it is impossible."""
        problem = ConvProblem()
        status = self._dll.cc_conv_init(ctypes.byref(problem), n, c, h, w, k, r, s,
                                        padding[0], padding[1], stride[0], stride[1], groups)
        self.check(status, "cc_conv_init", problem)  # the descriptor holds the given fields even then
        # init rejects impossible problems; validate also asks whether this library implements the
        # problem (layout, dtype, tensor sizes), which the passes would otherwise report one by one.
        self.check(self._dll.cc_conv_validate(ctypes.byref(problem)), "cc_conv_validate", problem)
        return problem

    def conv_workspace_size(self, problem, conv_pass):
        size = ctypes.c_size_t()
        self.check(self._dll.cc_conv_workspace_size(ctypes.byref(problem), conv_pass, _options(), ctypes.byref(size)),
                   "cc_conv_workspace_size", f"{CONV_PASS_NAMES[conv_pass]}, {problem}")
        return size.value

    def conv_kernel_names(self, problem, conv_pass):
        text = ctypes.create_string_buffer(512)
        self.check(self._dll.cc_conv_kernel_names(ctypes.byref(problem), conv_pass, _options(), text, len(text)),
                   "cc_conv_kernel_names", f"{CONV_PASS_NAMES[conv_pass]}, {problem}")
        return text.value.decode()

    def conv(self, conv_pass, handle, problem, in_a, in_b, out, workspace, workspace_bytes, stream):
        """One pass: forward (x, w -> y), backward_data (dy, w -> dx), backward_weight (x, dy -> dw).
        Pointers are raw addresses; ctypes releases the GIL for the call."""
        name = _CONV_CALLS[conv_pass]
        status = getattr(self._dll, name)(handle, ctypes.byref(problem), _options(), in_a, in_b, out,
                                          workspace, workspace_bytes, stream)
        self.check(status, name, problem)


    def conv_forward_fused(self, handle, problem, epilogue, x, w, y, workspace, workspace_bytes, stream):
        """The forward pass with an epilogue (ConvEpilogue): x, w -> y (or None), and what the epilogue asks."""
        status = self._dll.cc_conv_forward_fused(handle, ctypes.byref(problem), _options(), ctypes.byref(epilogue), x, w, y,
                                                 workspace, workspace_bytes, stream)
        self.check(status, "cc_conv_forward_fused", problem)


# ---- the two libraries, loaded on first use -------------------------------------------------------------

EMULATOR = ("CHEAPCONV_EMU_LIBRARY", "libcheapconv_emu.so", CC_BACKEND_EMULATOR)
CUDA = ("CHEAPCONV_LIBRARY", "libcheapconv.so", CC_BACKEND_CUDA)

_loaded = {}
_load_lock = threading.Lock()


def load(which, environ=None):
    """Loads EMULATOR or CUDA from the first candidate path that holds it (cached unless `environ` is
    given, which tests use to look elsewhere)."""
    env_var, file_name, backend = which
    if environ is None:
        with _load_lock:
            if which not in _loaded:
                _loaded[which] = _load_first(env_var, file_name, backend, os.environ)
            return _loaded[which]
    return _load_first(env_var, file_name, backend, environ)


def _load_first(env_var, file_name, backend, environ):
    tried = []
    for path in candidate_paths(env_var, file_name, environ):
        if not path.is_file():
            tried.append(f"  {path}: not found")
            continue
        try:
            return Library(path, backend)
        except OSError as error:  # present but unusable: see Library.__init__, or the loader's reason
            tried.append(f"  {path}: {error}")
    raise LibraryLoadError(
        f"cannot load {file_name}; tried:\n" + "\n".join(tried) +
        f"\nBuild it from the repository root with `make -C native`, or set {env_var} to its path.")


@atexit.register
def _close_all():
    for library in _loaded.values():
        library.close()
