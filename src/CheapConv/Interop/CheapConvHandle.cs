using System.Runtime.InteropServices;

namespace CheapConv.Interop;

/// <summary>
/// A <c>cc_handle</c>: the library bound to one CUDA context (or to the emulator) with its kernels loaded.
/// Expensive to create, cheap to call with; <c>cc_destroy</c> runs when it is disposed (or finalized). Made by
/// <see cref="CheapConvNative.Create"/>; every call of that library takes it.
/// </summary>
public sealed class CheapConvHandle : SafeHandle
{
    internal CheapConvHandle(CheapConvNative library, nint handle)
        : base(0, ownsHandle: true)
    {
        Library = library;
        SetHandle(handle);
    }

    /// <summary>The library that made the handle; only its calls may take it.</summary>
    public CheapConvNative Library { get; }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => Library.Destroy(handle);
}
