namespace CheapConv.Devices;

/// <summary>
/// A copy from the device to the host that the host does not wait for: <see cref="Start"/> queues the copy into a buffer
/// the device owns (page-locked on a GPU) and returns; <see cref="IsDone"/> says, without waiting, whether the device has
/// made it; <see cref="Wait"/> waits for it (a counted host wait). The buffer is reused by the next start, which waits for
/// the previous copy first if it is still running.
/// </summary>
internal abstract unsafe class HostReadback(Device device, long bytes) : IDisposable
{
    /// <summary>Capacity of the buffer.</summary>
    public long Bytes { get; } = bytes;

    /// <summary>Bytes the last <see cref="Start"/> asked for.</summary>
    public long Length { get; private set; }

    /// <summary>Queues the copy of <paramref name="length"/> bytes from the device address <paramref name="source"/>.</summary>
    public void Start(nint source, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Bytes);
        if (device.Capturing)
        {
            throw new InvalidOperationException($"{device.Name}: a read-back while a capture is under way: a graph cannot replay it");
        }

        StartCopy(source, length);
        Length = length;
    }

    /// <summary>Whether the last started copy has arrived; never waits.</summary>
    public abstract bool IsDone { get; }

    /// <summary>Waits until the last started copy has arrived (counted as a host wait when it had not).</summary>
    public abstract void Wait();

    /// <summary>The bytes of the last copy; read them only when <see cref="IsDone"/> (or after <see cref="Wait"/>).</summary>
    public ReadOnlySpan<byte> Data => new((void*)Buffer, checked((int)Length));

    /// <summary>The host buffer.</summary>
    private protected abstract nint Buffer { get; }

    private protected abstract void StartCopy(nint source, long length);

    public abstract void Dispose();
}
