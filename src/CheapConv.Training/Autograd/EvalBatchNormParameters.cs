namespace CheapConv.Autograd;

/// <summary>What an eval-mode batch norm normalises with (its γ, β, running statistics and eps): handed to the convolution
/// before it, whose store then produces relu(bn(·)) (<see cref="Functions.Conv2dFunction.ApplyNormalized"/>).</summary>
internal readonly record struct EvalBatchNormParameters(Tensor Gamma, Tensor Beta, Tensor RunningMean, Tensor RunningVar, float Eps);
