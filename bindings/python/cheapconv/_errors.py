"""The exceptions of the binding: every failure of the library, or of a call the binding refuses to make."""


class CheapConvError(RuntimeError):
    """A CheapConv call failed.

    status       the library's cc_status value, or None when the binding refused the call itself
                 (wrong dtype, mismatched shapes, a library that cannot be loaded)
    status_name  "CC_ERROR_INVALID_VALUE", ... as cc_status_string() says, or None
    message      what was wrong and what to do: cc_last_error() for library failures
    """

    def __init__(self, message, status=None, status_name=None):
        super().__init__(message if status_name is None else f"{status_name}: {message}")
        self.message = message
        self.status = status
        self.status_name = status_name


class InvalidValueError(CheapConvError, ValueError):
    """The caller's mistake: an impossible problem (CC_ERROR_INVALID_VALUE), a wrong dtype, shapes that do
    not fit together. A ValueError too, so code that handles bad arguments generically still catches it."""


class LibraryLoadError(CheapConvError, OSError):
    """No usable libcheapconv*.so: the message lists every path tried, why each was not used (missing, not
    loadable, not the CheapConv ABI, another ABI version, the other backend) and how to build the library."""
