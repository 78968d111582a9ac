namespace CheapConv.Backends.Cpu;

/// <summary>
/// Scratch arrays of one kind (column matrices, padded planes, packed GEMM panels, …) for the CPU ops: a parallel body
/// rents one for its duration (<c>using var lease = Kind.Rent(length)</c>) and the lease gives it back. The arrays are
/// kept for good, so a steady-state training step allocates none:
/// <list type="bullet">
/// <item>unlike [ThreadStatic] buffers, their number is the most bodies that ever ran at once, not the number of pool
/// threads that ever ran one (the pool starts and retires threads, and each new one would allocate its own);</item>
/// <item>unlike ArrayPool, nothing is trimmed at a gen-2 collection, to be allocated again by the next step.</item>
/// </list>
/// Each array grows to the largest length asked of its kind, so after the first step every idle array fits every request.
/// </summary>
internal sealed class ScratchArrays(bool pinned)
{
    private readonly Stack<float[]> _idle = new();
    private long _largest;

    /// <summary>An array of at least <paramref name="length"/> floats, with unspecified contents, until the lease is disposed.</summary>
    public Lease Rent(long length)
    {
        float[]? array = null;
        lock (_idle)
        {
            _largest = Math.Max(_largest, length);
            length = _largest;
            if (_idle.Count > 0)
            {
                array = _idle.Pop();
            }
        }

        if (array is null || array.LongLength < length)
        {
            // A too-short idle array is dropped: replaced at the largest length yet, it will not be outgrown again.
            array = GC.AllocateUninitializedArray<float>(checked((int)length), pinned);
        }

        return new Lease(this, array);
    }

    private void Return(float[] array)
    {
        lock (_idle)
        {
            _idle.Push(array);
        }
    }

    /// <summary>A rented array (or none: <c>default</c>), returned to its owner on <see cref="Dispose"/>.</summary>
    public readonly struct Lease(ScratchArrays? owner, float[]? array) : IDisposable
    {
        /// <summary>The array; null for the <c>default</c> lease of a body that needs none.</summary>
        public float[]? Array { get; } = array;

        public void Dispose() => owner?.Return(Array!);
    }
}
