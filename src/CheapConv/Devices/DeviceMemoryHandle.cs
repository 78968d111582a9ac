using System.Runtime.InteropServices;

namespace CheapConv.Devices;

/// <summary>
/// One allocation of a <see cref="Device"/>: freed by <see cref="Device.Release"/> when disposed, or by the
/// finalizer when a <see cref="DeviceBuffer{T}"/> was dropped without <c>Dispose</c>. A buffer that wraps foreign
/// memory has none: it never frees.
/// </summary>
internal sealed class DeviceMemoryHandle : SafeHandle
{
    private readonly Device _device;
    private bool _byFinalizer;

    public DeviceMemoryHandle(Device device, nint pointer)
        : base(0, ownsHandle: true)
    {
        _device = device;
        SetHandle(pointer);
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => _device.Release(handle, _byFinalizer);

    // SafeHandle's finalizer calls Dispose(false), which runs ReleaseHandle: remember which of the two it was, so a free
    // of a dropped buffer is told apart from one the program asked for.
    protected override void Dispose(bool disposing)
    {
        _byFinalizer = !disposing;
        base.Dispose(disposing);
    }
}
