namespace CheapConv.Backends;

/// <summary>
/// The second output of <see cref="IBackend.Conv2dForwardFused"/>: <see cref="Output"/> = relu(eval-mode batch norm) of the
/// convolution's result, per output channel, with the running statistics — what
/// <see cref="IBackend.BatchNormReluEvalForward"/> computes, carried with the tensor it writes so that one is never given
/// without the other.
/// </summary>
/// <param name="Gamma">γ, one per output channel.</param>
/// <param name="Beta">β, one per output channel.</param>
/// <param name="RunningMean">The running mean.</param>
/// <param name="RunningVar">The running (unbiased) variance.</param>
/// <param name="Eps">Added to the variance (finite, ≥ 0).</param>
/// <param name="Output">The normalised activations, shaped like the convolution's output.</param>
public readonly record struct EvalBatchNormRelu(Storage Gamma, Storage Beta, Storage RunningMean, Storage RunningVar, float Eps, Storage Output);
