namespace CheapConv.Autograd;

/// <summary>
/// A switch that is on unless a <see cref="Disabled"/> scope is open on the calling thread (scopes nest): how the fusions
/// of the models and the autograd (<see cref="CheapConv.Nn.EpilogueFusion"/>, <see cref="BackwardFusion"/>) are turned off
/// for the unfused path that tests compare them with. One switch per <typeparamref name="TTag"/> (a type private to its
/// owner): static fields of a generic class are per type argument.
/// </summary>
internal static class ThreadSwitch<TTag>
{
    [ThreadStatic]
    private static int _disabledDepth;

    /// <summary>Whether no <see cref="Disabled"/> scope is open on this thread.</summary>
    public static bool IsEnabled => _disabledDepth == 0;

    /// <summary>Opens a scope in which the switch is off on this thread; dispose it to restore it.</summary>
    public static IDisposable Disabled()
    {
        _disabledDepth++;
        return new Scope();
    }

    private sealed class Scope : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (!_disposed)
            {
                _disposed = true;
                _disabledDepth--;
            }
        }
    }
}
