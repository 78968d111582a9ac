namespace CheapConv.Autograd;

/// <summary>
/// Whether a convolution's backward computes both gradients in one call (<see cref="CheapConv.Backends.IBackend.Conv2dBackward"/>:
/// one launch where the kernels of the two passes share a grid) or makes the data and weight calls apart. On unless a
/// <see cref="Disabled"/> scope is open on this thread: the unfused backward the fused one must match, which tests compare
/// (bits and launches).
/// </summary>
internal static class BackwardFusion
{
    // The switch's identity: ThreadSwitch<Tag> is this class's own.
    private readonly struct Tag;

    /// <summary>Whether <see cref="Functions.Conv2dFunction"/> asks for both gradients in one call.</summary>
    public static bool IsEnabled => ThreadSwitch<Tag>.IsEnabled;

    /// <summary>Opens a scope in which each gradient is its own call; dispose it to restore fusion.</summary>
    public static IDisposable Disabled() => ThreadSwitch<Tag>.Disabled();
}
