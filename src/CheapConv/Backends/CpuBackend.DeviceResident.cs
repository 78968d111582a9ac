namespace CheapConv.Backends;

// The device-resident ops of IBackend.DeviceResident.cs on host memory: nothing to wait for, so each is the plain loop.
public sealed partial class CpuBackend
{
    public void CopyFromHost(ReadOnlySpan<float> source, Storage destination)
    {
        var target = Host(destination);
        CheckElements(nameof(source), source.Length, target.Length);
        source.CopyTo(target);
    }

    public void CopyElements(Storage source, long sourceOffset, Storage destination, long destinationOffset, long count)
    {
        CheckSlice(nameof(source), source, sourceOffset, count);
        CheckSlice(nameof(destination), destination, destinationOffset, count);
        Array.Copy(Host(source), sourceOffset, Host(destination), destinationOffset, count);
    }

    public StorageList CreateList(IReadOnlyList<Storage> storages) => new HostStorageList(storages, this);

    public void FirstNonFinite(StorageList list, Storage result, long resultOffset)
    {
        var storages = list is HostStorageList own && own.Backend == this
            ? own.Storages
            : throw new ArgumentException("a storage list made by another backend was given to the CPU backend", nameof(list));
        CheckSlice(nameof(result), result, resultOffset, storages.Count);
        var output = Host(result);
        for (var i = 0; i < storages.Count; i++)
        {
            output[resultOffset + i] = FirstNonFinite(Host(storages[i]));
        }
    }

    public void CountCorrect(int n, int classes, Storage logits, ReadOnlySpan<int> labels, Storage result, long resultOffset)
    {
        CheckSlice(nameof(result), result, resultOffset, 1);
        CheckCountBelowFloatLimit(n);
        Host(result)[resultOffset] = CountCorrect(n, classes, Host(logits), labels);
    }

    /// <summary>None: every CPU op is a loop over its own array, so one allocation would save nothing.</summary>
    public StorageArena? AllocateArena(IReadOnlyList<long> lengths) => null;

    public StorageReadback CreateReadback(Storage source) => new SnapshotReadback(Host(source));

    /// <summary>The NaN or infinity with the lowest index, or 0 when every value is finite.</summary>
    internal static float FirstNonFinite(ReadOnlySpan<float> values)
    {
        foreach (var value in values)
        {
            if (!float.IsFinite(value))
            {
                return value;
            }
        }

        return 0f;
    }

    /// <summary>Refuses a slice [offset, offset + count) that does not lie inside <paramref name="storage"/>.</summary>
    internal static void CheckSlice(string name, Storage storage, long offset, long count)
    {
        ArgumentNullException.ThrowIfNull(storage, name);
        if (offset < 0 || count < 0 || offset > storage.Length - count)
        {
            throw new ArgumentException($"{name}: elements [{offset}, {offset + count}) do not lie inside its {storage.Length}");
        }
    }

    /// <summary>A count kept as a float is exact only below 2^24.</summary>
    internal static void CheckCountBelowFloatLimit(int n)
    {
        if (n >= 1 << 24)
        {
            throw new ArgumentException($"a count of {n} rows cannot be kept exactly in a float (2^24 is the limit)");
        }
    }

    /// <summary>A snapshot taken at <see cref="Start"/>: host memory has nothing to wait for.</summary>
    private sealed class SnapshotReadback(float[] source) : StorageReadback
    {
        private readonly float[] _snapshot = new float[source.Length];
        private bool _started;

        public override void Start()
        {
            source.AsSpan().CopyTo(_snapshot);
            _started = true;
        }

        public override bool TryFinish(Span<float> destination)
        {
            if (!_started)
            {
                throw new InvalidOperationException("TryFinish before any Start");
            }

            _snapshot.AsSpan().CopyTo(destination);
            return true;
        }

        public override void Dispose()
        {
        }
    }

    private sealed class HostStorageList(IReadOnlyList<Storage> storages, CpuBackend backend) : StorageList(storages)
    {
        public CpuBackend Backend { get; } = backend;

        public override void Dispose()
        {
        }
    }
}
