namespace CheapConv.Devices;

/// <summary>
/// A typed array in a device's memory. Owns the allocation: dispose it (or use <c>using</c>) to free it.
/// On the emulated device the pointer is host memory; on a CUDA device it is a device pointer that only
/// kernels and copies may dereference.
/// </summary>
public sealed unsafe class DeviceBuffer<T> : IDisposable where T : unmanaged
{
    private nint _pointer;

    internal DeviceBuffer(Device device, nint pointer, long length)
    {
        Device = device;
        _pointer = pointer;
        Length = length;
    }

    public Device Device { get; }

    /// <summary>Number of elements.</summary>
    public long Length { get; }

    public long Bytes => Length * sizeof(T);

    /// <summary>The device address, as passed to kernels.</summary>
    public nint Pointer => _pointer != 0 || Length == 0
        ? _pointer
        : throw new ObjectDisposedException(nameof(DeviceBuffer<T>));

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

    public void Dispose()
    {
        if (_pointer != 0)
        {
            Device.Free(_pointer);
            _pointer = 0;
        }
    }

    private void CheckLength(int hostLength)
    {
        if (hostLength != Length)
        {
            throw new ArgumentException($"host span has {hostLength} elements but the device buffer has {Length}");
        }
    }
}
