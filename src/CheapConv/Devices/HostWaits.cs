namespace CheapConv.Devices;

/// <summary>
/// Every time the host waits for a device — a stream synchronisation, a copy to or from pageable host memory, a free
/// while work is queued — counted with its reason, by the device layer itself (<see cref="Device"/>), so the count is
/// the same whoever asked for the wait. The emulator counts the waits a CUDA device would make for the same calls,
/// although it never has anything to wait for: that is what lets tests on the emulator hold a training step to zero.
/// </summary>
/// <remarks>
/// Two views: <see cref="Watch"/> collects the reasons of the waits made while it is open (the step profile), and
/// <see cref="Forbid"/> opens a strict scope in which any wait fails — at once with <see cref="HostWaitException"/>
/// when the waiting call can throw, else (a free run by a finalizer) when the scope closes. Thread-safe: frees may
/// come from the finalizer thread.
/// </remarks>
internal sealed class HostWaits
{
    private readonly object _lock = new();
    private readonly List<List<string>> _watches = [];
    private readonly List<string> _violations = [];
    private string? _strictScope;
    private long _count;

    /// <summary>Host waits since the device was opened.</summary>
    public long Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>Collects the reason of every wait until the returned watch is disposed.</summary>
    public HostWaitWatch Watch()
    {
        var reasons = new List<string>();
        lock (_lock)
        {
            _watches.Add(reasons);
        }

        return new HostWaitWatch(this, reasons);
    }

    /// <summary>
    /// Makes any host wait fail until the returned scope is disposed; <paramref name="scope"/> names what must not wait
    /// (e.g. "a training step"), for the message. Scopes do not nest: a second one while one is open is a programming error.
    /// </summary>
    public IDisposable Forbid(string scope)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(scope);
        lock (_lock)
        {
            if (_strictScope is not null)
            {
                throw new InvalidOperationException($"host waits are already forbidden for {_strictScope}");
            }

            _strictScope = scope;
            _violations.Clear();
        }

        return new StrictScope(this);
    }

    /// <summary>
    /// Records one wait. Inside a strict scope it throws, unless <paramref name="canThrow"/> is false (a free, which may
    /// run on the finalizer thread and must never throw): then the scope's end reports it.
    /// </summary>
    internal void Waited(string reason, bool canThrow = true)
    {
        string? scope;
        lock (_lock)
        {
            _count++;
            foreach (var watch in _watches)
            {
                watch.Add(reason);
            }

            // A finalizer's free stalls the finalizer thread, not the one the scope guards (HostWaitReason.FreeByFinalizer).
            scope = reason == HostWaitReason.FreeByFinalizer ? null : _strictScope;
            if (scope is not null && !canThrow)
            {
                _violations.Add(reason); // reported when the scope ends; the others throw now
            }
        }

        if (scope is not null && canThrow)
        {
            throw new HostWaitException(scope, [reason]);
        }
    }

    private void EndWatch(List<string> reasons)
    {
        lock (_lock)
        {
            _watches.Remove(reasons);
        }
    }

    private void EndStrict()
    {
        string scope;
        string[] violations;
        lock (_lock)
        {
            scope = _strictScope ?? "";
            violations = [.. _violations];
            _strictScope = null;
            _violations.Clear();
        }

        if (violations.Length > 0)
        {
            throw new HostWaitException(scope, violations);
        }
    }

    private sealed class StrictScope(HostWaits owner) : IDisposable
    {
        private bool _ended;

        public void Dispose()
        {
            if (!_ended)
            {
                _ended = true;
                owner.EndStrict();
            }
        }
    }

    /// <summary>The reasons of the waits made while a <see cref="Watch"/> is open.</summary>
    internal sealed class HostWaitWatch(HostWaits owner, List<string> reasons) : IDisposable
    {
        /// <summary>The reasons so far, in order.</summary>
        public IReadOnlyList<string> Reasons
        {
            get
            {
                lock (owner._lock)
                {
                    return [.. reasons];
                }
            }
        }

        public void Dispose() => owner.EndWatch(reasons);
    }
}

/// <summary>The host waited for the device inside a scope where <see cref="HostWaits.Forbid"/> said it must not.</summary>
internal sealed class HostWaitException : DeviceException
{
    internal HostWaitException(string scope, IReadOnlyList<string> reasons)
        : base($"the host waited for the device inside {scope}, where waits are forbidden: {string.Join("; ", reasons)}")
    {
        Reasons = reasons;
    }

    /// <summary>What made the waits (e.g. "copy to the host").</summary>
    public IReadOnlyList<string> Reasons { get; }
}

/// <summary>The reasons devices give for a host wait: one per kind of call, so a profile can group them.</summary>
internal static class HostWaitReason
{
    public const string Synchronize = "synchronize";
    public const string CopyFromHost = "copy from pageable host memory";
    public const string CopyToHost = "copy to host memory";
    public const string FreeWithWorkQueued = "free while work is queued";

    /// <summary>
    /// A free with work queued made by the finalizer, of a buffer dropped without <c>Dispose</c>. It waits on the
    /// finalizer thread, not on the thread that queues the work, and when it runs depends on the garbage collector: it is
    /// counted and watched under this reason, but it does not break a strict scope (<see cref="HostWaits.Forbid"/>) nor
    /// count as a wait of a profiled step.
    /// </summary>
    public const string FreeByFinalizer = "free by the finalizer (a buffer dropped without Dispose) while work is queued";
    public const string StagingBufferBusy = "staged upload: both staging buffers still in flight";
    public const string ReadBackNotArrived = "read-back: the copy to the host had not arrived";
}
