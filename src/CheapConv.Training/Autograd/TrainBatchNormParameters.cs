namespace CheapConv.Autograd;

/// <summary>A training-mode batch norm's γ, β, running statistics (updated in place), momentum, eps and whether the ReLU
/// follows: handed to the convolution before it, whose store then computes the batch statistics
/// (<see cref="Functions.Conv2dFunction.ApplyBatchNormTrain"/>).</summary>
internal readonly record struct TrainBatchNormParameters(Tensor Gamma, Tensor Beta, Tensor RunningMean, Tensor RunningVar, float Momentum,
    float Eps, bool Relu);
