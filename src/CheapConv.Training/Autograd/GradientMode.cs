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

    /// <summary>True unless a <see cref="NoGrad"/> scope is open on this thread.</summary>
    public static bool IsEnabled => _noGradDepth == 0;

    /// <summary>Opens a no-grad scope; dispose it to restore recording.</summary>
    public static IDisposable NoGrad() => new NoGradScope();

    private sealed class NoGradScope : IDisposable
    {
        private bool _disposed;

        public NoGradScope() => _noGradDepth++;

        public void Dispose()
        {
            if (!_disposed)
            {
                _disposed = true;
                _noGradDepth--;
            }
        }
    }
}
