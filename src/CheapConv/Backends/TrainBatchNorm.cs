namespace CheapConv.Backends;

/// <summary>
/// The training-mode batch norm that follows a convolution (<see cref="IBackend.Conv2dForwardBatchNormTrain"/>): what
/// <see cref="IBackend.BatchNormTrainForward"/> (or, with <see cref="Relu"/>, <see cref="IBackend.BatchNormReluTrainForward"/>)
/// takes besides its input, which is the convolution's output.
/// </summary>
/// <param name="Gamma">γ, one per output channel.</param>
/// <param name="Beta">β, one per output channel.</param>
/// <param name="RunningMean">The running mean, updated in place.</param>
/// <param name="RunningVar">The running (unbiased) variance, updated in place.</param>
/// <param name="Momentum">Weight of the batch statistics in the running-statistics update.</param>
/// <param name="Eps">Added to the variance.</param>
/// <param name="Relu">Whether the ReLU follows (the fused relu(bn(·))).</param>
/// <param name="Output">The normalised activations, shaped like the convolution's output.</param>
/// <param name="SaveMean">The batch mean, for the backward pass.</param>
/// <param name="SaveInvStd">1/√(var + eps) of the batch, for the backward pass.</param>
public readonly record struct TrainBatchNorm(Storage Gamma, Storage Beta, Storage RunningMean, Storage RunningVar, float Momentum, float Eps,
    bool Relu, Storage Output, Storage SaveMean, Storage SaveInvStd)
{
    /// <summary>The batch norm on its own over <paramref name="x"/> (N×C×H×W): the op <see cref="IBackend.Conv2dForwardBatchNormTrain"/>
    /// fuses, and what it does where it cannot.</summary>
    public void RunOn(IBackend backend, int n, int c, int h, int w, Storage x)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (Relu)
        {
            backend.BatchNormReluTrainForward(n, c, h, w, x, Gamma, Beta, RunningMean, RunningVar, Momentum, Eps, Output, SaveMean, SaveInvStd);
        }
        else
        {
            backend.BatchNormTrainForward(n, c, h, w, x, Gamma, Beta, RunningMean, RunningVar, Momentum, Eps, Output, SaveMean, SaveInvStd);
        }
    }
}
