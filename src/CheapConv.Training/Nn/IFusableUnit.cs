using CheapConv.Autograd;

namespace CheapConv.Nn;

/// <summary>
/// A unit whose last op is a convolution (every unit: S, G(·), B(·), BG(·), and a plain <see cref="Conv2d"/>), so that what a
/// block does after it — add the residual, and in eval-mode inference normalise for the next layer — is handed to it and
/// done in that convolution's store (<see cref="EpilogueFusion"/>).
/// </summary>
internal interface IFusableUnit
{
    /// <summary>unit(x) + <paramref name="residual"/>, differentiable in all three (the residual's gradient is the output's).</summary>
    Tensor ForwardAdding(Tensor x, Tensor residual);

    /// <summary>
    /// Eval-mode inference (<see cref="EpilogueFusion.Normalizes"/> of <paramref name="next"/>): v = unit(x) [+
    /// <paramref name="residual"/>] and relu(<paramref name="next"/>(v)); v only when <paramref name="keepOutput"/>.
    /// </summary>
    (Tensor? Output, Tensor Activated) ForwardNormalized(Tensor x, Tensor? residual, BatchNorm2d next, bool keepOutput);

    /// <summary>
    /// Training (<see cref="EpilogueFusion.ComputesStatistics"/> of <paramref name="next"/>): v = unit(x) [+
    /// <paramref name="residual"/>] and relu(<paramref name="next"/>(v)) with the batch statistics, both differentiable; the
    /// statistics computed in the last convolution's store where the backend can.
    /// </summary>
    (Tensor Output, Tensor Activated) ForwardBatchNormTrain(Tensor x, Tensor? residual, BatchNorm2d next);
}
