using CheapConv.Problems;

namespace CheapConv.Backends;

/// <summary>
/// A convolution that applies its input's training batch norm (+ ReLU) while reading the input (a prologue), so the normalised
/// activation is never stored: the G(g) unit's grouped 3×3 → BN → ReLU → 1×1, whose 1×1 reads the 3×3's output z directly.
/// Only a backend whose kernels do it offers it (<see cref="SupportsInputBatchNorm"/>); the others keep the separate batch norm,
/// and models ask first. The batch norm's statistics then come on their own (<see cref="BatchNormTrainStatistics"/>, or in the
/// producing convolution's store: <see cref="Conv2dForwardBatchNormStatistics"/>), and the backward pass differentiates both
/// layers in one op (<see cref="Conv2dBackwardInputBatchNorm"/>).
/// </summary>
public partial interface IBackend
{
    /// <summary>Whether <see cref="Conv2dForwardInputBatchNorm"/> and <see cref="Conv2dBackwardInputBatchNorm"/> run
    /// <paramref name="problem"/> (its x being the batch norm's output). False unless a backend's kernels apply the batch norm.</summary>
    bool SupportsInputBatchNorm(ConvProblem problem) => false;

    /// <summary>
    /// The training-mode batch norm's statistics over <paramref name="x"/> (N×C×H×W) without applying it: what
    /// <see cref="BatchNormTrainForward"/> saves and updates, for a convolution that applies them itself.
    /// </summary>
    void BatchNormTrainStatistics(int n, int c, int h, int w, Storage x, BatchNormStatistics statistics) =>
        throw new NotSupportedException($"the {Name} backend does not apply a batch norm inside a convolution (SupportsInputBatchNorm is false): run BatchNormTrainForward");

    /// <summary>
    /// y = conv(x, w) and the training-mode batch norm's statistics of y (<see cref="BatchNormTrainStatistics"/>), for a convolution
    /// that applies them: this default makes the two calls; <see cref="GpuBackend"/> computes the statistics in the convolution's
    /// store where its kernels allow, so that y is not read again.
    /// </summary>
    void Conv2dForwardBatchNormStatistics(ConvProblem problem, Storage x, Storage w, Storage y, BatchNormStatistics statistics)
    {
        Conv2dForward(problem, x, w, y);
        BatchNormTrainStatistics(problem.N, problem.K, problem.P, problem.Q, y, statistics);
    }

    /// <summary>
    /// v = conv(a, w) [+ <paramref name="residual"/>] where a = <paramref name="bn"/>(<paramref name="z"/>) is computed as the
    /// kernel reads z and never stored; v into <paramref name="y"/>, and with <paramref name="next"/> the training batch norm of v
    /// after it (as <see cref="Conv2dForwardBatchNormTrain"/>). The bits of y are those of the convolution on a stored a.
    /// </summary>
    void Conv2dForwardInputBatchNorm(ConvProblem problem, InputBatchNorm bn, Storage z, Storage w, Storage y, Storage? residual,
        TrainBatchNorm? next) =>
        throw new NotSupportedException($"the {Name} backend does not apply a batch norm inside a convolution (SupportsInputBatchNorm is false)");

    /// <summary>
    /// The backward pass of y = conv(<paramref name="bn"/>(z), w) given dy: the batch norm's input gradient into
    /// <paramref name="dz"/> (added into with <paramref name="accumulateDz"/>), its γ and β gradients, and the convolution's
    /// weight gradient into <paramref name="dw"/> when given — the gradients <see cref="Conv2dBackward"/> and
    /// <see cref="BatchNormReluBackward"/> (or <see cref="BatchNormBackward"/>) compute in turn. <paramref name="da"/> (z's shape)
    /// receives the gradient of bn(z) on the way, the one intermediate of the two layers' backward. <paramref name="da"/>,
    /// <paramref name="dz"/>, <paramref name="dgamma"/> and <paramref name="dbeta"/> are given together or not at all (then
    /// only dw: the batch norm's input and parameters need no gradient); at least dw or they.
    /// </summary>
    void Conv2dBackwardInputBatchNorm(ConvProblem problem, InputBatchNorm bn, Storage z, Storage dy, Storage w, Storage? da, Storage? dz,
        bool accumulateDz, Storage? dgamma, Storage? dbeta, Storage? dw) =>
        throw new NotSupportedException($"the {Name} backend does not apply a batch norm inside a convolution (SupportsInputBatchNorm is false)");
}
