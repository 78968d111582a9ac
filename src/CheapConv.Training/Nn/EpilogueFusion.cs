using CheapConv.Autograd;

namespace CheapConv.Nn;

/// <summary>
/// Whether models do the work that follows a convolution in that convolution's store (<see cref="CheapConv.Backends.IBackend.Conv2dForwardFused"/>,
/// one launch where the tensor-core kernels run it): a block's residual add, always; the next batch norm + ReLU in
/// eval-mode inference (no gradient recorded); and in training, the next batch norm's statistics
/// (<see cref="ComputesStatistics"/>). On unless a <see cref="Disabled"/> scope is open on this thread — the
/// unfused path the fused one must match, which tests compare — or a <see cref="LayerTrace"/> is: the per-layer table
/// lists each layer where and as the unfused forward meets it.
/// </summary>
internal static class EpilogueFusion
{
    // The switch's identity: ThreadSwitch<Tag> is this class's own.
    private readonly struct Tag;

    /// <summary>Whether the residual add goes into the convolution before it.</summary>
    public static bool IsEnabled => ThreadSwitch<Tag>.IsEnabled && LayerTrace.Current is null;

    /// <summary>Whether <paramref name="bn"/>'s relu(bn(·)) goes into the convolution before it: fusion on, eval mode, and
    /// nothing recorded (the fused output has no gradient).</summary>
    public static bool Normalizes(BatchNorm2d bn) => IsEnabled && !bn.Training && !GradientMode.IsEnabled;

    /// <summary>Whether the training-mode <paramref name="bn"/>'s batch statistics are computed in the store of the convolution
    /// before it (<see cref="CheapConv.Backends.IBackend.Conv2dForwardBatchNormTrain"/>), so that it reads its input once:
    /// fusion on and training mode.</summary>
    public static bool ComputesStatistics(BatchNorm2d bn) => IsEnabled && bn.Training;

    /// <summary>Opens a scope in which models run every op on its own; dispose it to restore fusion.</summary>
    public static IDisposable Disabled() => ThreadSwitch<Tag>.Disabled();
}
