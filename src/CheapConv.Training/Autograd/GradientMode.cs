namespace CheapConv.Autograd;

/// <summary>
/// Whether primitives record themselves for <see cref="Tensor.Backward()"/>. A <see cref="NoGrad"/> scope
/// (per thread, nestable) turns recording off — the teacher's forward pass runs in one, so it saves nothing
/// for a backward pass and its outputs are constants to the losses.
/// </summary>
public static class GradientMode
{
    [ThreadStatic]
    private static int _noGradDepth;

    [ThreadStatic]
    private static int _separateAccumulationDepth;

    /// <summary>True unless a <see cref="NoGrad"/> scope is open on this thread.</summary>
    public static bool IsEnabled => _noGradDepth == 0;

    /// <summary>Opens a no-grad scope; dispose it to restore recording.</summary>
    public static IDisposable NoGrad()
    {
        _noGradDepth++;
        return new Scope(() => _noGradDepth--);
    }

    /// <summary>
    /// Whether <see cref="Tensor.Backward()"/> lets a primitive add a gradient into the one its input already holds, in
    /// the kernel that computes it (true unless a <see cref="SeparateAccumulation"/> scope is open on this thread).
    /// </summary>
    internal static bool FusesAccumulation => _separateAccumulationDepth == 0;

    /// <summary>
    /// Opens a scope in which every later gradient of a tensor is computed on its own and added with
    /// <see cref="CheapConv.Backends.IBackend.Axpy"/>: the path the fused one must match bit for bit (tests compare the two).
    /// </summary>
    internal static IDisposable SeparateAccumulation()
    {
        _separateAccumulationDepth++;
        return new Scope(() => _separateAccumulationDepth--);
    }

    // Undoes its scope's increment once, however often it is disposed.
    private sealed class Scope(Action leave) : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (!_disposed)
            {
                _disposed = true;
                leave();
            }
        }
    }
}
