using ILGPU;
using ILGPU.Runtime;

namespace CheapConv.Ilgpu;

/// <summary>
/// The eval-mode batch norm + ReLU that <see cref="CheapConvIlgpu.ConvForwardFused"/> applies to the convolution's result:
/// <c>Output = relu(Gamma·(v − RunningMean)/√(RunningVar + Eps) + Beta)</c> per output channel (each parameter has K
/// elements; <c>Output</c> has y's). Views of the <see cref="CheapConvIlgpu"/>'s accelerator.
/// </summary>
public readonly record struct EvalBatchNormReluViews(
    ArrayView<float> Gamma,
    ArrayView<float> Beta,
    ArrayView<float> RunningMean,
    ArrayView<float> RunningVar,
    float Eps,
    ArrayView<float> Output);
