namespace CheapConv.Devices;

/// <summary>What a device is, for messages and for choosing code paths in tests.</summary>
public enum DeviceKind
{
    /// <summary>The CUDA kernels compiled as host C++ and run by the emulator (native/emu).</summary>
    Emulated,

    /// <summary>A real NVIDIA GPU driven through the CUDA driver API.</summary>
    Cuda,
}

/// <summary>
/// The launch level of DESIGN.md: memory, copies and kernel launches by name. <see cref="CudaDevice"/>
/// hands launches to the CUDA driver, <see cref="EmulatedDevice"/> to the emulator; both take the same
/// kernel names and the same <c>void**</c> argument arrays, packed by the backends exactly as
/// <c>cuLaunchKernel</c> wants them.
/// </summary>
public abstract unsafe class Device : IDisposable
{
    public abstract DeviceKind Kind { get; }

    /// <summary>Human-readable name, e.g. "NVIDIA H100 80GB HBM3 (cuda:0)" or "emulator (2 threads)".</summary>
    public abstract string Name { get; }

    /// <summary>Allocates an uninitialised buffer of <paramref name="length"/> elements.</summary>
    public DeviceBuffer<T> Allocate<T>(long length) where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        var pointer = length == 0 ? 0 : AllocateBytes(length * sizeof(T));
        return new DeviceBuffer<T>(this, pointer, length);
    }

    /// <summary>Allocates a buffer holding a copy of <paramref name="data"/>.</summary>
    public DeviceBuffer<T> Upload<T>(ReadOnlySpan<T> data) where T : unmanaged
    {
        var buffer = Allocate<T>(data.Length);
        buffer.CopyFrom(data);
        return buffer;
    }

    /// <summary>
    /// Launches <paramref name="kernel"/> with <paramref name="args"/> (args[i] points at the i-th
    /// argument's value). <paramref name="problem"/> only serves error messages. Launches are ordered on
    /// the device's stream; copies to the host wait for them.
    /// </summary>
    public abstract void Launch(string kernel, LaunchConfig config, void** args, string problem);

    /// <summary>Waits for all launched work to finish and reports any asynchronous error.</summary>
    public abstract void Synchronize();

    /// <summary>Names of the kernels this device can launch.</summary>
    public abstract IReadOnlyList<string> KernelNames { get; }

    protected internal abstract nint AllocateBytes(long bytes);

    protected internal abstract void Free(nint pointer);

    protected internal abstract void CopyHostToDevice(nint destination, void* source, long bytes);

    protected internal abstract void CopyDeviceToHost(void* destination, nint source, long bytes);

    /// <summary>Copies between two buffers of this device, ordered with the launches.</summary>
    protected internal abstract void CopyDeviceToDevice(nint destination, nint source, long bytes);

    protected internal abstract void FillBytes(nint destination, byte value, long bytes);

    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    protected abstract void Dispose(bool disposing);

    public override string ToString() => Name;
}
