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

    /// <summary>
    /// Storages of <paramref name="lengths"/> elements back to back in one zero-filled allocation (see
    /// <see cref="StorageArena"/>), or null where one allocation gains nothing — the CPU, whose ops are loops with no
    /// launch to save.
    /// </summary>
    StorageArena? AllocateArena(IReadOnlyList<long> lengths);

    /// <summary>A copy of <paramref name="source"/> to the host that the host does not wait for (see <see cref="StorageReadback"/>).</summary>
    StorageReadback CreateReadback(Storage source);
}

/// <summary>
/// A reusable copy of one storage to the host, made by <see cref="IBackend.CreateReadback"/>: <see cref="Start"/> queues
/// it (after the work already queued) and returns at once; <see cref="TryFinish"/> hands out the values once they have
/// arrived and otherwise returns false without waiting. A GPU copies into page-locked memory behind the host's back; the
/// CPU has the values at once.
/// </summary>
public abstract class StorageReadback : IDisposable
{
    /// <summary>Queues the copy of the storage's contents as the work queued so far leaves them. A copy still in flight
    /// from the previous start is waited for first (its buffer is reused).</summary>
    public abstract void Start();

    /// <summary>Copies the values of the last <see cref="Start"/> into <paramref name="destination"/> (the storage's
    /// length) and returns true once they have arrived; returns false, without waiting, before.</summary>
    public abstract bool TryFinish(Span<float> destination);

    public abstract void Dispose();
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

/// <summary>
/// Storages laid out back to back in one allocation (<see cref="IBackend.AllocateArena"/>), so that one launch over
/// <see cref="Whole"/> covers every part: the optimiser's parameters, gradients and momentum, updated by one SGD launch.
/// Each part starts on a 256-byte boundary (as an allocation of its own would), and the padding between parts is zero.
/// </summary>
/// <remarks>
/// The parts do not own memory: the arena's one allocation lives as long as any part is reachable (each part keeps it
/// alive), or until <see cref="Dispose"/> frees it — after which no part may be used.
/// </remarks>
public sealed class StorageArena : IDisposable
{
    /// <summary>An arena over <paramref name="whole"/> cut into <paramref name="parts"/> (made by a backend).</summary>
    public StorageArena(Storage whole, IReadOnlyList<Storage> parts)
    {
        ArgumentNullException.ThrowIfNull(whole);
        ArgumentNullException.ThrowIfNull(parts);
        Whole = whole;
        Parts = [.. parts];
    }

    /// <summary>Every part and the zero padding between them, as one storage.</summary>
    public Storage Whole { get; }

    /// <summary>The parts, in the order of the lengths asked for.</summary>
    public IReadOnlyList<Storage> Parts { get; }

    /// <summary>Frees the allocation; every part becomes invalid.</summary>
    public void Dispose() => Whole.Dispose();
}
