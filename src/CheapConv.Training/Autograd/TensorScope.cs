using CheapConv.Backends;

namespace CheapConv.Autograd;

/// <summary>
/// The lifetime of a step's temporaries, like TorchSharp's dispose scope: while a scope is open (per thread,
/// innermost wins), every temporary storage — activations, saved statistics, gradients of non-parameters —
/// is rented from the backend's <see cref="StorageCache"/>; disposing the scope releases those tensors (using
/// one afterwards throws) and returns their storages to the cache for the next step. Outside any scope,
/// temporaries are plain allocations owned by their tensor (dispose it to free device memory).
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic]
    private static TensorScope? _current;

    // The lists of the last scope this thread disposed, empty, with their capacity: a training loop opens one scope per
    // step, and each step would otherwise grow two new lists to a thousand entries or so.
    [ThreadStatic]
    private static (List<(StorageCache Cache, Storage Storage)> Rented, List<Tensor> Tensors)? _spareLists;

    private readonly TensorScope? _outer;
    private readonly List<(StorageCache Cache, Storage Storage)> _rented;
    private readonly List<Tensor> _tensors;
    private bool _disposed;

    private TensorScope()
    {
        _outer = _current;
        _current = this;
        (_rented, _tensors) = _spareLists ?? ([], []);
        _spareLists = null;
    }

    /// <summary>The innermost open scope of this thread, or null.</summary>
    public static TensorScope? Current => _current;

    /// <summary>Opens a scope; dispose it (a <c>using</c>) at the end of the step.</summary>
    public static TensorScope Begin() => new();

    /// <summary>A temporary storage: rented within a scope, freshly allocated outside one.</summary>
    internal static Storage Temporary(IBackend backend, long length, out bool scoped)
    {
        if (_current is { } scope)
        {
            var cache = StorageCache.For(backend);
            var storage = cache.Rent(length);
            scope._rented.Add((cache, storage));
            scoped = true;
            return storage;
        }

        scoped = false;
        return backend.Allocate(length);
    }

    internal static void Track(Tensor tensor) => _current?._tensors.Add(tensor);

    /// <summary>Releases the scope's tensors and returns its storages to their caches.</summary>
    public void Dispose()
    {
        if (End())
        {
            foreach (var (cache, storage) in _rented)
            {
                cache.Return(storage);
            }

            _rented.Clear();
            _spareLists = (_rented, _tensors);
        }
    }

    /// <summary>
    /// Ends the scope like <see cref="Dispose"/> but keeps its storages out of the caches: the caller holds them (a captured
    /// graph, whose recorded kernels keep using them) and gives them back with <see cref="StorageCache.Return"/>.
    /// </summary>
    internal IReadOnlyList<(StorageCache Cache, Storage Storage)> EndKeepingStorages()
    {
        if (!End())
        {
            return [];
        }

        List<(StorageCache, Storage)> kept = [.. _rented];
        _rented.Clear();
        _spareLists = (_rented, _tensors);
        return kept;
    }

    /// <summary>Releases the tensors and closes the scope; false when it was closed already.</summary>
    private bool End()
    {
        if (_disposed)
        {
            return false;
        }

        if (_current != this)
        {
            throw new InvalidOperationException("tensor scopes must be disposed innermost first");
        }

        _disposed = true;
        foreach (var tensor in _tensors)
        {
            tensor.Release();
        }

        _tensors.Clear();
        _current = _outer;
        return true;
    }
}
