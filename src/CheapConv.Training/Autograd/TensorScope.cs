using CheapConv.Backends;

namespace CheapConv.Autograd;

/// <summary>
/// The lifetime of a step's temporaries, like TorchSharp's dispose scope: while a scope is open (per thread,
/// innermost wins), every temporary storage — activations, saved statistics, gradients of non-parameters —
/// is rented from the backend's <see cref="StorageCache"/>; disposing the scope releases those tensors (using
/// one afterwards throws) and returns their storages to the cache for the next step. Outside any scope,
/// temporaries are plain allocations owned by their tensor (dispose it to free device memory).
/// <para>
/// A storage can go back before the scope ends, as PyTorch frees a tensor its last reference drops: the backward pass
/// returns each intermediate gradient once its primitive has used it, and a no-grad forward pass runs each block in a
/// nested scope that hands only the block's outputs to the enclosing one (<see cref="PassToOuter"/>). A scope that keeps
/// its storages for a captured graph (<see cref="BeginKeepingStorages"/>), and every scope nested in it, returns nothing
/// early: the graph's kernels keep using every address it recorded, so none may be rented to anyone else.
/// </para>
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic]
    private static TensorScope? _current;

    // The lists of the scopes this thread disposed, empty, with their capacity: a training loop opens one scope per step
    // (and a no-grad forward pass one per block), and each would otherwise grow new lists to a thousand entries or so.
    [ThreadStatic]
    private static Stack<Lists>? _spareLists;

    private readonly TensorScope? _outer;
    private readonly Lists _lists;
    private readonly List<(StorageCache Cache, Storage Storage)> _rented;
    private readonly List<Tensor> _tensors;

    // How many times each storage of _rented went back to its cache before the scope ended (a storage returned early may
    // be rented again by the same scope, so it can be listed more than once): the end returns only the rest.
    private readonly Dictionary<Storage, int> _returnedEarly;
    private readonly bool _keepsStorages;
    private bool _disposed;

    private TensorScope(bool keepsStorages)
    {
        _outer = _current;
        _keepsStorages = keepsStorages || (_outer?._keepsStorages ?? false);
        _current = this;
        _lists = _spareLists is { Count: > 0 } spare ? spare.Pop() : new Lists();
        (_rented, _tensors, _returnedEarly) = (_lists.Rented, _lists.Tensors, _lists.ReturnedEarly);
    }

    /// <summary>The innermost open scope of this thread, or null.</summary>
    public static TensorScope? Current => _current;

    /// <summary>Opens a scope; dispose it (a <c>using</c>) at the end of the step.</summary>
    public static TensorScope Begin() => new(keepsStorages: false);

    /// <summary>Opens the scope of a step being captured as a graph: end it with <see cref="EndKeepingStorages"/>; neither it
    /// nor a scope nested in it returns a storage to its cache early.</summary>
    internal static TensorScope BeginKeepingStorages() => new(keepsStorages: true);

    /// <summary>A temporary storage: rented within a scope (<paramref name="scope"/>), freshly allocated outside one (null).</summary>
    internal static Storage Temporary(IBackend backend, long length, out TensorScope? scope)
    {
        scope = _current;
        if (scope is null)
        {
            return backend.Allocate(length);
        }

        var cache = StorageCache.For(backend);
        var storage = cache.Rent(length);
        scope._rented.Add((cache, storage));
        return storage;
    }

    /// <summary>
    /// Gives <paramref name="storage"/>, rented by this scope, back to its cache now, because nothing will read it again;
    /// false (and nothing happens) when this scope keeps its storages for a captured graph.
    /// </summary>
    internal bool ReturnEarly(IBackend backend, Storage storage)
    {
        if (_keepsStorages || _disposed)
        {
            return false;
        }

        StorageCache.For(backend).Return(storage);
        _returnedEarly[storage] = _returnedEarly.GetValueOrDefault(storage) + 1;
        return true;
    }

    /// <summary>
    /// Moves <paramref name="tensor"/>, made in this nested scope, to the enclosing scope, so that it outlives this one (the
    /// output of a block run in its own scope).
    /// </summary>
    internal void PassToOuter(Tensor tensor)
    {
        var outer = _outer ?? throw new InvalidOperationException("only a nested tensor scope can pass a tensor to an enclosing one");
        if (_current != this || !tensor.IsRentedBy(this))
        {
            throw new InvalidOperationException($"{tensor} was not made in this tensor scope, or the scope is not the innermost");
        }

        var storage = tensor.Storage;
        var entry = _rented.FindLastIndex(rented => ReferenceEquals(rented.Storage, storage));
        outer._rented.Add(_rented[entry]);
        _rented.RemoveAt(entry);
        _tensors.RemoveAt(_tensors.FindLastIndex(made => ReferenceEquals(made, tensor)));
        outer._tensors.Add(tensor);
        tensor.MoveToScope(outer);
    }

    internal static void Track(Tensor tensor) => _current?._tensors.Add(tensor);

    /// <summary>Releases the scope's tensors and returns its storages to their caches (a nested scope in one that keeps its
    /// storages hands them to the enclosing scope instead).</summary>
    public void Dispose()
    {
        if (!End())
        {
            return;
        }

        foreach (var rented in StillRented())
        {
            if (_keepsStorages && _outer is not null)
            {
                _outer._rented.Add(rented);
            }
            else
            {
                rented.Cache.Return(rented.Storage);
            }
        }

        Recycle();
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

        List<(StorageCache, Storage)> kept = [.. StillRented()];
        Recycle();
        return kept;
    }

    /// <summary>The storages rented and not returned early.</summary>
    private IEnumerable<(StorageCache Cache, Storage Storage)> StillRented()
    {
        foreach (var rented in _rented)
        {
            if (_returnedEarly.TryGetValue(rented.Storage, out var early) && early > 0)
            {
                _returnedEarly[rented.Storage] = early - 1;
                continue;
            }

            yield return rented;
        }
    }

    /// <summary>Empties the lists and keeps them, with their capacity, for the thread's next scope.</summary>
    private void Recycle()
    {
        _rented.Clear();
        _returnedEarly.Clear();
        (_spareLists ??= new()).Push(_lists);
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

    /// <summary>A scope's bookkeeping, kept for the thread's next scope once it ends.</summary>
    private sealed class Lists
    {
        public List<(StorageCache Cache, Storage Storage)> Rented { get; } = [];

        public List<Tensor> Tensors { get; } = [];

        public Dictionary<Storage, int> ReturnedEarly { get; } = new(ReferenceEqualityComparer.Instance);
    }
}
