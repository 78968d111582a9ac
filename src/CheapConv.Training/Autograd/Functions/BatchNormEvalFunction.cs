namespace CheapConv.Autograd.Functions;

/// <summary>
/// Eval-mode batch norm with the running statistics, optionally fused with a ReLU. Its forward pass is one
/// backend op. There is no eval-mode backward op, and eval mode is where a frozen teacher runs under
/// <see cref="GradientMode.NoGrad"/>, so nothing is recorded there; when it is recorded (a student evaluated
/// with gradients), the backward pass is assembled from backend ops — the statistics are constants, so
/// dx = γ/σ·dy is the eval forward of dy with β = 0 and mean 0, and dγ = Σ dy·x̂, dβ = Σ dy are exactly what
/// the training backward computes for dγ, dβ when handed the running mean and 1/σ as its "saved" statistics.
/// Saves the input, γ, the output (ReLU variant: for the mask) and snapshots of the running statistics
/// (C elements each), so a training step between forward and backward cannot change the gradient.
/// </summary>
internal sealed class BatchNormEvalFunction : Function
{
    private readonly bool _relu;
    private readonly float _eps;
    private readonly Tensor _mean;
    private readonly Tensor _var;
    private readonly Tensor? _output;

    private BatchNormEvalFunction(Tensor x, Tensor gamma, Tensor beta, Tensor mean, Tensor var, float eps, Tensor? output)
        : base(x, gamma, beta)
    {
        _relu = output is not null;
        _eps = eps;
        _mean = mean;
        _var = var;
        _output = output;
    }

    /// <summary>y = γ·(x − runningMean)/√(runningVar + eps) + β, then max(0, ·) when <paramref name="relu"/>.</summary>
    public static Tensor Apply(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float eps, bool relu)
    {
        var s = BatchNormShape.Of(x, gamma, beta, runningMean, runningVar);
        var backend = x.Backend;
        var y = Tensor.Empty(backend, [.. x.Shape]);
        if (relu)
        {
            backend.BatchNormReluEvalForward(s.N, s.C, s.H, s.W, x.Storage, gamma.Storage, beta.Storage, runningMean.Storage, runningVar.Storage, eps, y.Storage);
        }
        else
        {
            backend.BatchNormEvalForward(s.N, s.C, s.H, s.W, x.Storage, gamma.Storage, beta.Storage, runningMean.Storage, runningVar.Storage, eps, y.Storage);
        }

        return Record(y, () => new BatchNormEvalFunction(x, gamma, beta, Snapshot(runningMean), Snapshot(runningVar), eps, relu ? y : null), x, gamma, beta);
    }

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient)
    {
        Tensor x = Inputs[0], gamma = Inputs[1];
        var s = BatchNormShape.Of(x, gamma);
        var backend = Backend;
        var dy = outputGradient;
        if (_relu)
        {
            dy = EmptyLike(0);
            backend.ReluBackward(x.Length, _output!.Storage, outputGradient.Storage, dy.Storage);
        }

        var zeros = Tensor.Full(backend, [s.C], 0f);
        Tensor? dx = null;
        if (NeedsGradient(0))
        {
            dx = EmptyLike(0);
            backend.BatchNormEvalForward(s.N, s.C, s.H, s.W, dy.Storage, gamma.Storage, zeros.Storage, zeros.Storage, _var.Storage, _eps, dx.Storage);
        }

        if (!NeedsGradient(1) && !NeedsGradient(2))
        {
            return [dx, null, null];
        }

        // 1/√(var + eps) per channel: the eval forward of ones (as a 1×C×1×1 image) with γ = 1, β = 0, mean 0.
        var ones = Tensor.Full(backend, [s.C], 1f);
        var invStd = Tensor.Empty(backend, s.C);
        backend.BatchNormEvalForward(1, s.C, 1, 1, ones.Storage, ones.Storage, zeros.Storage, zeros.Storage, _var.Storage, _eps, invStd.Storage);
        Tensor unusedDx = EmptyLike(0), dgamma = EmptyLike(1), dbeta = EmptyLike(2);
        backend.BatchNormBackward(s.N, s.C, s.H, s.W, x.Storage, dy.Storage, gamma.Storage, _mean.Storage, invStd.Storage,
            unusedDx.Storage, dgamma.Storage, dbeta.Storage);
        return [dx, NeedsGradient(1) ? dgamma : null, NeedsGradient(2) ? dbeta : null];
    }

    private static Tensor Snapshot(Tensor statistic)
    {
        var copy = Tensor.Empty(statistic.Backend, [.. statistic.Shape]);
        statistic.Backend.Copy(statistic.Storage, copy.Storage);
        return copy;
    }
}
