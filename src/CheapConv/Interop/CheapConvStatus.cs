using CheapConv.Devices;

namespace CheapConv.Interop;

/// <summary>cc_status: what every call of the C ABI returns.</summary>
public enum CheapConvStatus
{
    Success = 0,

    /// <summary>A descriptor, pointer, size or option is wrong (the message says which).</summary>
    InvalidValue = 1,

    /// <summary>A valid problem no kernel of this library implements (layout, dtype).</summary>
    NotSupported = 2,

    /// <summary>The workspace is missing or smaller than the *_workspace_size query said.</summary>
    Workspace = 3,

    /// <summary>No CUDA driver, no GPU, or no current context where one was asked for.</summary>
    NoDevice = 4,

    /// <summary>A CUDA driver call failed (the message names the call and the CUresult).</summary>
    Driver = 5,

    /// <summary>A kernel launch failed (the message names kernel, grid, block, problem).</summary>
    Launch = 6,

    /// <summary>The emulator found a kernel fault (divergent barrier, deadlock, ...).</summary>
    Emulator = 7,

    /// <summary>A bug in CheapConv.</summary>
    Internal = 8,
}

/// <summary>cc_backend: what a loaded library runs its kernels on.</summary>
public enum CheapConvBackend
{
    /// <summary>libcheapconv.so: an NVIDIA GPU through the CUDA driver; pointers are device pointers.</summary>
    Cuda = 0,

    /// <summary>libcheapconv_emu.so: the CUDA emulator on the CPU; pointers are host pointers, streams are ignored.</summary>
    Emulator = 1,
}

/// <summary>
/// A call of the C ABI returned an error. Carries the status, its name (cc_status_string) and the library's own
/// message (cc_last_error, read on the calling thread right after the call), which names what was wrong: the
/// descriptor field, the kernel and its launch geometry, the driver call.
/// </summary>
public sealed class CheapConvException(string library, string call, CheapConvStatus status, string statusName, string detail)
    : DeviceException($"{call} ({library}) failed with {statusName}" + (detail.Length > 0 ? $": {detail}" : ""))
{
    /// <summary>The C function that failed, e.g. "cc_conv_forward".</summary>
    public string Call { get; } = call;

    public CheapConvStatus Status { get; } = status;

    /// <summary>"CC_ERROR_INVALID_VALUE", ....</summary>
    public string StatusName { get; } = statusName;

    /// <summary>cc_last_error() after the call ("" when the library said nothing more).</summary>
    public string Detail { get; } = detail;
}
