namespace CheapConv.Autograd.Functions;

/// <summary>
/// Training-mode batch norm (batch statistics; the running statistics are updated in place by the forward
/// pass). Saves the input, γ, and the batch mean and 1/σ the forward pass computed.
/// </summary>
public sealed class BatchNormTrainFunction : Function
{
    private readonly Tensor _saveMean;
    private readonly Tensor _saveInvStd;

    private BatchNormTrainFunction(Tensor x, Tensor gamma, Tensor beta, Tensor saveMean, Tensor saveInvStd)
        : base(x, gamma, beta)
    {
        _saveMean = saveMean;
        _saveInvStd = saveInvStd;
    }

    /// <summary>y = γ·(x − mean)/√(var + eps) + β with batch statistics.</summary>
    public static Tensor Apply(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float momentum, float eps)
    {
        var s = BatchNormShape.Of(x, gamma, beta, runningMean, runningVar);
        var backend = x.Backend;
        var y = Tensor.Empty(backend, [.. x.Shape]);
        var mean = Tensor.Empty(backend, s.C);
        var invStd = Tensor.Empty(backend, s.C);
        backend.BatchNormTrainForward(s.N, s.C, s.H, s.W, x.Storage, gamma.Storage, beta.Storage, runningMean.Storage, runningVar.Storage,
            momentum, eps, y.Storage, mean.Storage, invStd.Storage);
        return Record(y, () => new BatchNormTrainFunction(x, gamma, beta, mean, invStd), x, gamma, beta);
    }

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient)
    {
        Tensor x = Inputs[0], gamma = Inputs[1];
        var s = BatchNormShape.Of(x, gamma);
        Tensor dx = EmptyLike(0), dgamma = EmptyLike(1), dbeta = EmptyLike(2);
        Backend.BatchNormBackward(s.N, s.C, s.H, s.W, x.Storage, outputGradient.Storage, gamma.Storage, _saveMean.Storage, _saveInvStd.Storage,
            dx.Storage, dgamma.Storage, dbeta.Storage);
        return [NeedsGradient(0) ? dx : null, NeedsGradient(1) ? dgamma : null, NeedsGradient(2) ? dbeta : null];
    }
}
