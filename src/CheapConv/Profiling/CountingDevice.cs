using CheapConv.Devices;

namespace CheapConv.Profiling;

/// <summary>
/// A <see cref="Device"/> that forwards everything to another and counts the kernel launches made through it, in order:
/// the launch counter a <see cref="RecordingBackend"/> reads to know which launches each op made. Launches are
/// synchronous on the emulator, so the count after an op is exact.
/// </summary>
public sealed unsafe class CountingDevice(Device inner) : Device
{
    private readonly List<(string Kernel, LaunchConfig Config)> _launches = [];

    /// <summary>Launches made so far.</summary>
    public int LaunchCount => _launches.Count;

    /// <summary>The kernel and configuration of every launch so far.</summary>
    public IReadOnlyList<(string Kernel, LaunchConfig Config)> Launches => _launches;

    public override DeviceKind Kind => inner.Kind;

    public override string Name => inner.Name;

    public override IReadOnlyList<string> KernelNames => inner.KernelNames;

    public override void Launch(string kernel, LaunchConfig config, void** args, string problem)
    {
        _launches.Add((kernel, config));
        inner.Launch(kernel, config, args, problem);
    }

    public override void Synchronize() => inner.Synchronize();

    protected internal override nint AllocateBytes(long bytes) => inner.AllocateBytes(bytes);

    protected internal override void Free(nint pointer) => inner.Free(pointer);

    protected internal override void CopyHostToDevice(nint destination, void* source, long bytes) => inner.CopyHostToDevice(destination, source, bytes);

    protected internal override void CopyDeviceToHost(void* destination, nint source, long bytes) => inner.CopyDeviceToHost(destination, source, bytes);

    protected internal override void CopyDeviceToDevice(nint destination, nint source, long bytes) => inner.CopyDeviceToDevice(destination, source, bytes);

    protected internal override void FillBytes(nint destination, byte value, long bytes) => inner.FillBytes(destination, value, bytes);

    // The inner device belongs to whoever made it.
    protected override void Dispose(bool disposing)
    {
    }
}
