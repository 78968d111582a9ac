using CheapConv.Autograd;
using CheapConv.Backends;

namespace CheapConv.Nn;

/// <summary>
/// Batch normalization over channels, PyTorch's defaults (eps 1e-5, momentum 0.1, affine): γ = 1, β = 0 as
/// parameters; running mean 0 and variance 1 as buffers. Training mode uses batch statistics and updates the
/// running ones; eval mode uses the running ones. <see cref="ForwardRelu"/> is the fused relu(bn(x)).
/// </summary>
public sealed class BatchNorm2d : Module
{
    /// <summary>A batch norm over <paramref name="channels"/> channels.</summary>
    public BatchNorm2d(IBackend backend, int channels, float eps = 1e-5f, float momentum = 0.1f)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        Channels = channels;
        Eps = eps;
        Momentum = momentum;
        Weight = RegisterParameter("weight", Tensor.Parameter(backend, [channels], Init.Constant(channels, 1f)));
        Bias = RegisterParameter("bias", Tensor.Parameter(backend, [channels], Init.Constant(channels, 0f)));
        RunningMean = RegisterBuffer("running_mean", Tensor.Buffer(backend, [channels], Init.Constant(channels, 0f)));
        RunningVar = RegisterBuffer("running_var", Tensor.Buffer(backend, [channels], Init.Constant(channels, 1f)));
    }

    /// <summary>Number of channels C.</summary>
    public int Channels { get; }

    /// <summary>Added to the variance before the square root.</summary>
    public float Eps { get; }

    /// <summary>Weight of the batch statistics in the running-statistics update.</summary>
    public float Momentum { get; }

    /// <summary>γ.</summary>
    public Tensor Weight { get; }

    /// <summary>β.</summary>
    public Tensor Bias { get; }

    /// <summary>Running mean (buffer).</summary>
    public Tensor RunningMean { get; }

    /// <summary>Running (unbiased) variance (buffer).</summary>
    public Tensor RunningVar { get; }

    /// <summary>What eval mode normalises with, for a convolution that produces relu(bn(·)) in its store.</summary>
    internal EvalBatchNormParameters EvalParameters => new(Weight, Bias, RunningMean, RunningVar, Eps);

    /// <summary>What training mode normalises with, for a convolution that computes the batch statistics in its store.</summary>
    internal TrainBatchNormParameters TrainParameters(bool relu) => new(Weight, Bias, RunningMean, RunningVar, Momentum, Eps, relu);

    /// <summary>relu(bn(x)) with one fused op; traced as one layer.</summary>
    public Tensor ForwardRelu(Tensor x)
    {
        var y = Training
            ? Ops.BatchNormReluTrain(x, Weight, Bias, RunningMean, RunningVar, Momentum, Eps)
            : Ops.BatchNormEval(x, Weight, Bias, RunningMean, RunningVar, Eps, relu: true);
        LayerTrace.Current?.Record(this, "BatchNorm2d+ReLU", x, y);
        return y;
    }

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tensor x) => Training
        ? Ops.BatchNormTrain(x, Weight, Bias, RunningMean, RunningVar, Momentum, Eps)
        : Ops.BatchNormEval(x, Weight, Bias, RunningMean, RunningVar, Eps);
}
