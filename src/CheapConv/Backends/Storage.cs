using CheapConv.Devices;

namespace CheapConv.Backends;

/// <summary>
/// A flat fp32 array owned by one backend: host memory for <see cref="CpuBackend"/>, device memory for
/// <see cref="GpuBackend"/>. Tensors (shape, gradient) are built on top of it; backends only see storages,
/// so every op takes its sizes explicitly.
/// </summary>
public abstract class Storage : IDisposable
{
    /// <summary>Number of fp32 elements.</summary>
    public abstract long Length { get; }

    public abstract void Dispose();
}

/// <summary>Host memory for the CPU backend: a managed array, read and written directly by the C# ops.</summary>
internal sealed class HostStorage(float[] data) : Storage
{
    public float[] Data { get; } = data;

    public override long Length => Data.Length;

    public override void Dispose()
    {
    }
}

/// <summary>
/// Device memory for the GPU backend (a CUDA device or the emulator). A part of a <see cref="StorageArena"/> wraps memory
/// of the arena's allocation and holds that allocation in <paramref name="arena"/>, so the arena lives while a part does.
/// </summary>
internal sealed class DeviceStorage(DeviceBuffer<float> buffer, DeviceBuffer<float>? arena = null) : Storage
{
    public DeviceBuffer<float> Buffer { get; } = buffer;

    /// <summary>The arena allocation this storage is a part of (kept alive by this reference), or null.</summary>
    public DeviceBuffer<float>? Arena { get; } = arena;

    public override long Length => Buffer.Length;

    public override void Dispose() => Buffer.Dispose();
}
