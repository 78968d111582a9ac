namespace CheapConv.Backends;

/// <summary>
/// What a training step needs so that it never waits for the device: uploads that return at once, copies into slices of
/// a storage (a log of per-step results kept on the device), and the checks and counts written there instead of being
/// returned to the host.
/// </summary>
public partial interface IBackend
{
    /// <summary>
    /// destination[0 .. source.Length) = source, without making the host wait for the device (a GPU stages the data in
    /// page-locked memory and copies asynchronously; see Device.CopyHostToDeviceStaged). The caller may reuse
    /// <paramref name="source"/> as soon as this returns.
    /// </summary>
    void CopyFromHost(ReadOnlySpan<float> source, Storage destination);

    /// <summary>destination[destinationOffset + i] = source[sourceOffset + i] for i &lt; count, on the device.</summary>
    void CopyElements(Storage source, long sourceOffset, Storage destination, long destinationOffset, long count);

    /// <summary>
    /// A fixed list of storages that one op can walk (<see cref="FirstNonFinite"/>): on a GPU the list of pointers is
    /// uploaded here, once, so checking every gradient of a model is one launch per step.
    /// </summary>
    StorageList CreateList(IReadOnlyList<Storage> storages);

    /// <summary>
    /// result[resultOffset + i] = the NaN or infinite element of list[i] with the lowest index, or 0 when list[i] holds
    /// none (0 is finite, so the two never mix).
    /// </summary>
    void FirstNonFinite(StorageList list, Storage result, long resultOffset);

    /// <summary>
    /// result[resultOffset] = how many rows of logits (N×classes) have their largest value (first on ties, NaN largest) at
    /// the label, as a float (exact: N is below 2^24) — the count that stays on the device.
    /// </summary>
    void CountCorrect(int n, int classes, Storage logits, ReadOnlySpan<int> labels, Storage result, long resultOffset);
}

/// <summary>A list of storages made by <see cref="IBackend.CreateList"/>, for that backend only.</summary>
public abstract class StorageList : IDisposable
{
    private protected StorageList(IReadOnlyList<Storage> storages)
    {
        ArgumentNullException.ThrowIfNull(storages);
        if (storages.Count == 0)
        {
            throw new ArgumentException("a storage list needs at least one storage", nameof(storages));
        }

        Storages = [.. storages];
    }

    /// <summary>The storages, in order.</summary>
    public IReadOnlyList<Storage> Storages { get; }

    public abstract void Dispose();
}
