using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Problems;

namespace CheapConv.Nn;

/// <summary>
/// Whether a training-mode batch norm (+ ReLU) between two convolutions is applied by the second as it reads the first's output
/// (<see cref="IBackend.Conv2dForwardInputBatchNorm"/>), so the normalised activation is never stored: the first then computes
/// only the batch statistics (<see cref="IBackend.Conv2dForwardBatchNormStatistics"/>). On where <see cref="EpilogueFusion"/> is,
/// the batch norm is in training mode, the backend's kernels run the second convolution that way
/// (<see cref="IBackend.SupportsInputBatchNorm"/>), and no <see cref="Disabled"/> scope is open on this thread — the path with
/// the batch norm on its own, which tests compare it with.
/// </summary>
internal static class PrologueFusion
{
    // The switch's identity: ThreadSwitch<Tag> is this class's own.
    private readonly struct Tag;

    /// <summary>Whether <paramref name="bn"/> goes into the convolution <paramref name="problem"/> that reads its output.</summary>
    public static bool Applies(BatchNorm2d bn, IBackend backend, ConvProblem problem) =>
        ThreadSwitch<Tag>.IsEnabled && EpilogueFusion.IsEnabled && bn.Training && backend.SupportsInputBatchNorm(problem);

    /// <summary>Opens a scope in which models run such a batch norm on its own; dispose it to restore the fusion.</summary>
    public static IDisposable Disabled() => ThreadSwitch<Tag>.Disabled();
}
