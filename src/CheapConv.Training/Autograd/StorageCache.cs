using System.Runtime.CompilerServices;
using CheapConv.Backends;

namespace CheapConv.Autograd;

/// <summary>
/// The caching allocator for temporaries: storages are rented by length from per-backend free lists and
/// returned when a <see cref="TensorScope"/> ends, so a training step that repeats the same shapes allocates
/// device memory on its first run only. Parameters, buffers and optimizer state never pass through it.
/// Not thread-safe: one training loop drives one backend.
/// </summary>
internal sealed class StorageCache
{
    private static readonly ConditionalWeakTable<IBackend, StorageCache> Caches = [];
    private readonly Dictionary<long, Stack<Storage>> _free = [];

    private StorageCache(IBackend backend) => Backend = backend;

    /// <summary>The backend whose storages this cache holds.</summary>
    public IBackend Backend { get; }

    /// <summary>Storages actually allocated from the backend (cache misses) since creation.</summary>
    public long Allocations { get; private set; }

    /// <summary>Rent requests served from the free lists (cache hits) since creation.</summary>
    public long Reuses { get; private set; }

    /// <summary>Storages currently idle in the free lists.</summary>
    public int Idle => _free.Values.Sum(stack => stack.Count);

    /// <summary>The one cache of <paramref name="backend"/>.</summary>
    public static StorageCache For(IBackend backend) => Caches.GetValue(backend, b => new StorageCache(b));

    /// <summary>A storage of exactly <paramref name="length"/> elements with unspecified contents.</summary>
    public Storage Rent(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        if (_free.TryGetValue(length, out var stack) && stack.Count > 0)
        {
            Reuses++;
            return stack.Pop();
        }

        Allocations++;
        return Backend.Allocate(length);
    }

    /// <summary>Puts a rented storage back on its free list.</summary>
    public void Return(Storage storage)
    {
        if (!_free.TryGetValue(storage.Length, out var stack))
        {
            stack = new Stack<Storage>();
            _free.Add(storage.Length, stack);
        }

        stack.Push(storage);
    }

    /// <summary>Frees every idle storage (device memory goes back to the device).</summary>
    public void Trim()
    {
        foreach (var storage in _free.Values.SelectMany(stack => stack))
        {
            storage.Dispose();
        }

        _free.Clear();
    }
}
