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
        if (_disposed)
        {
            return;
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

        foreach (var (cache, storage) in _rented)
        {
            cache.Return(storage);
        }

        _tensors.Clear();
        _rented.Clear();
        _spareLists = (_rented, _tensors);
        _current = _outer;
    }
}
