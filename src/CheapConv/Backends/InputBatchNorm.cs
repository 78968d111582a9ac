namespace CheapConv.Backends;

/// <summary>
/// The training-mode batch norm (+ ReLU) between a convolution's input z and what the convolution multiplies, applied as the
/// convolution reads z (<see cref="IBackend.Conv2dForwardInputBatchNorm"/>): per input channel c,
/// a = γ[c]·((z − mean[c])·invstd[c]) + β[c], then max(a, 0) with <see cref="Relu"/> — the arithmetic of the batch norm's own
/// apply, so the convolution multiplies the a a separate batch norm would have stored.
/// </summary>
/// <param name="Mean">The batch mean of z, one per channel (what the training forward saves).</param>
/// <param name="InvStd">1/√(var + eps) of the batch, one per channel.</param>
/// <param name="Gamma">γ, one per channel.</param>
/// <param name="Beta">β, one per channel.</param>
/// <param name="Relu">Whether the ReLU follows the batch norm.</param>
public readonly record struct InputBatchNorm(Storage Mean, Storage InvStd, Storage Gamma, Storage Beta, bool Relu);

/// <summary>
/// Where a training-mode batch norm's statistics go when nothing applies it on its own (<see cref="IBackend.BatchNormTrainStatistics"/>):
/// the running statistics, updated in place, and the batch's mean and 1/√(var + eps), saved for the convolution that applies them
/// and for the backward pass.
/// </summary>
/// <param name="RunningMean">The running mean, updated in place.</param>
/// <param name="RunningVar">The running (unbiased) variance, updated in place.</param>
/// <param name="Momentum">Weight of the batch statistics in the running-statistics update.</param>
/// <param name="Eps">Added to the variance.</param>
/// <param name="SaveMean">The batch mean.</param>
/// <param name="SaveInvStd">1/√(var + eps) of the batch.</param>
public readonly record struct BatchNormStatistics(Storage RunningMean, Storage RunningVar, float Momentum, float Eps, Storage SaveMean,
    Storage SaveInvStd);
