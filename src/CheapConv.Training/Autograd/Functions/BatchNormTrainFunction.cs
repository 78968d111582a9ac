namespace CheapConv.Autograd.Functions;

/// <summary>
/// Training-mode batch norm (batch statistics; the running statistics are updated in place by the forward
/// pass), optionally fused with the ReLU that follows it in every pre-activation block: one kernel each way.
/// Saves the input, γ, β (the fused backward recomputes the ReLU mask from them) and the batch mean and 1/σ
/// the forward pass computed.
/// </summary>
internal sealed class BatchNormTrainFunction : Function
{
    private readonly Tensor _saveMean;
    private readonly Tensor _saveInvStd;
    private readonly bool _relu;

    private BatchNormTrainFunction(Tensor x, Tensor gamma, Tensor beta, Tensor saveMean, Tensor saveInvStd, bool relu)
        : base(x, gamma, beta)
    {
        _saveMean = saveMean;
        _saveInvStd = saveInvStd;
        _relu = relu;
    }

    /// <summary>y = γ·(x − mean)/√(var + eps) + β with batch statistics, then max(0, y) when <paramref name="relu"/>.</summary>
    public static Tensor Apply(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float momentum, float eps, bool relu)
    {
        var s = BatchNormShape.Of(x, gamma, beta, runningMean, runningVar);
        var backend = x.Backend;
        var (y, mean, invStd) = Outputs(x, s.C);
        if (relu)
        {
            backend.BatchNormReluTrainForward(s.N, s.C, s.H, s.W, x.Storage, gamma.Storage, beta.Storage, runningMean.Storage, runningVar.Storage,
                momentum, eps, y.Storage, mean.Storage, invStd.Storage);
        }
        else
        {
            backend.BatchNormTrainForward(s.N, s.C, s.H, s.W, x.Storage, gamma.Storage, beta.Storage, runningMean.Storage, runningVar.Storage,
                momentum, eps, y.Storage, mean.Storage, invStd.Storage);
        }

        return Recorded(x, gamma, beta, y, mean, invStd, relu);
    }

    /// <summary>The outputs of a training forward over an N×C×H×W input of <paramref name="c"/> channels, before it runs: y,
    /// the batch mean and 1/σ.</summary>
    public static (Tensor Y, Tensor Mean, Tensor InvStd) Outputs(Tensor x, int c) =>
        (Tensor.Empty(x.Backend, [.. x.Shape]), Tensor.Empty(x.Backend, c), Tensor.Empty(x.Backend, c));

    /// <summary>y as the output of this function, once a backend op has computed it with <paramref name="mean"/> and
    /// <paramref name="invStd"/> saved (here, or with the convolution that produced x: the backward is the same).</summary>
    public static Tensor Recorded(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor mean, Tensor invStd, bool relu) =>
        Record(y, () => new BatchNormTrainFunction(x, gamma, beta, mean, invStd, relu), x, gamma, beta);

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient) => Backward(outputGradient, [null, null, null]);

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient, IReadOnlyList<Tensor?> accumulators)
    {
        Tensor x = Inputs[0], gamma = Inputs[1], beta = Inputs[2];
        var s = BatchNormShape.Of(x, gamma);
        // dx straight into x's gradient when it already has one (the kernel adds), else a fresh tensor.
        var accumulate = accumulators[0] is not null;
        Tensor dx = accumulators[0] ?? EmptyLike(0), dgamma = EmptyLike(1), dbeta = EmptyLike(2);
        if (_relu)
        {
            Backend.BatchNormReluBackward(s.N, s.C, s.H, s.W, x.Storage, outputGradient.Storage, gamma.Storage, beta.Storage,
                _saveMean.Storage, _saveInvStd.Storage, dx.Storage, dgamma.Storage, dbeta.Storage, accumulate);
        }
        else
        {
            Backend.BatchNormBackward(s.N, s.C, s.H, s.W, x.Storage, outputGradient.Storage, gamma.Storage, _saveMean.Storage, _saveInvStd.Storage,
                dx.Storage, dgamma.Storage, dbeta.Storage, accumulate);
        }

        return [NeedsGradient(0) ? dx : null, NeedsGradient(1) ? dgamma : null, NeedsGradient(2) ? dbeta : null];
    }
}
