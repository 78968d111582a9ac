namespace CheapConv.Devices;

/// <summary>
/// A typed array in a device's memory. On the emulated device the pointer is host memory; on a CUDA device it is
/// a device pointer that only kernels and copies may dereference.
/// </summary>
/// <remarks>
/// A buffer made by <see cref="Device.Allocate{T}"/> owns its memory: <see cref="Dispose"/> frees it (a buffer
/// that is never disposed is freed by the finalizer of its <see cref="System.Runtime.InteropServices.SafeHandle"/>).
/// A buffer made by <see cref="Wrap"/> only borrows memory someone else allocated (PyTorch, ILGPU, cudaMalloc):
/// disposing it frees nothing. Either way, keep the buffer alive until the work queued on it has finished.
/// </remarks>
public sealed unsafe class DeviceBuffer<T> : IDisposable where T : unmanaged
{
    private readonly DeviceMemoryHandle? _memory;
    private readonly nint _pointer;
    private bool _disposed;

    internal DeviceBuffer(Device device, nint pointer, long length, bool owns)
    {
        Device = device;
        _pointer = pointer;
        Length = length;
        _memory = owns && pointer != 0 ? new DeviceMemoryHandle(device, pointer) : null;
    }

    /// <summary>
    /// A non-owning buffer over <paramref name="length"/> elements at <paramref name="pointer"/>: device memory of
    /// <paramref name="device"/>'s context (host memory for the emulator) that someone else allocated and frees.
    /// Disposing the buffer leaves the memory alone.
    /// </summary>
    public static DeviceBuffer<T> Wrap(Device device, nint pointer, long length)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (pointer == 0 && length > 0)
        {
            throw new ArgumentException($"a null pointer cannot hold {length} elements", nameof(pointer));
        }

        if (pointer % sizeof(T) != 0)
        {
            throw new ArgumentException($"0x{pointer:x} is not aligned to {typeof(T).Name} ({sizeof(T)} bytes)", nameof(pointer));
        }

        return new DeviceBuffer<T>(device, pointer, length, owns: false);
    }

    public Device Device { get; }

    /// <summary>Number of elements.</summary>
    public long Length { get; }

    public long Bytes => Length * sizeof(T);

    /// <summary>False for a buffer made by <see cref="Wrap"/>: its memory belongs to someone else.</summary>
    public bool OwnsMemory => _memory is not null;

    /// <summary>The device address, as passed to kernels.</summary>
    public nint Pointer => _disposed ? throw new ObjectDisposedException(nameof(DeviceBuffer<T>)) : _pointer;

    /// <summary>Copies host data into the buffer; the source must have exactly <see cref="Length"/> elements.</summary>
    public void CopyFrom(ReadOnlySpan<T> source)
    {
        CheckLength(source.Length);
        fixed (T* pointer = source)
        {
            Device.CopyHostToDevice(Pointer, pointer, Bytes);
        }
    }

    /// <summary>Copies the buffer to host memory; the destination must have exactly <see cref="Length"/> elements.</summary>
    public void CopyTo(Span<T> destination)
    {
        CheckLength(destination.Length);
        fixed (T* pointer = destination)
        {
            Device.CopyDeviceToHost(pointer, Pointer, Bytes);
        }
    }

    /// <summary>Copies the buffer into a new host array.</summary>
    public T[] ToArray()
    {
        var result = new T[Length];
        CopyTo(result);
        return result;
    }

    /// <summary>Sets every byte of the buffer to <paramref name="value"/> (0xFF in float is a NaN: poison).</summary>
    public void FillBytes(byte value) => Device.FillBytes(Pointer, value, Bytes);

    /// <summary>Frees owned memory; for a wrapped buffer, only stops using the pointer.</summary>
    public void Dispose()
    {
        _disposed = true;
        _memory?.Dispose();
    }

    private void CheckLength(int hostLength)
    {
        if (hostLength != Length)
        {
            throw new ArgumentException($"host span has {hostLength} elements but the device buffer has {Length}");
        }
    }
}
