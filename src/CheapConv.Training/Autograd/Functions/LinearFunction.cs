namespace CheapConv.Autograd.Functions;

/// <summary>y = x·wᵀ + b (PyTorch's layout: w is out×in). Saves the input and the weight.</summary>
internal sealed class LinearFunction : Function
{
    private LinearFunction(Tensor x, Tensor w, Tensor b)
        : base(x, w, b)
    {
    }

    /// <summary>x is N×in (or N×in×1×1, flattened), w out×in, b out → y N×out.</summary>
    public static Tensor Apply(Tensor x, Tensor w, Tensor b)
    {
        CheckRank(w, 2, "linear weight");
        int outFeatures = w.Dim(0), inFeatures = w.Dim(1), n = x.Dim(0);
        CheckLength(x, (long)n * inFeatures, $"linear input of batch {n} with {inFeatures} features");
        CheckLength(b, outFeatures, "linear bias");
        var y = Tensor.Empty(x.Backend, n, outFeatures);
        x.Backend.LinearForward(n, inFeatures, outFeatures, x.Storage, w.Storage, b.Storage, y.Storage);
        return Record(y, () => new LinearFunction(x, w, b), x, w, b);
    }

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient)
    {
        Tensor x = Inputs[0], w = Inputs[1];
        int outFeatures = w.Dim(0), inFeatures = w.Dim(1), n = x.Dim(0);
        Tensor? dx = null, dw = null, db = null;
        if (NeedsGradient(0))
        {
            dx = EmptyLike(0);
            Backend.LinearBackwardData(n, inFeatures, outFeatures, outputGradient.Storage, w.Storage, dx.Storage);
        }

        if (NeedsGradient(1))
        {
            dw = EmptyLike(1);
            Backend.LinearBackwardWeight(n, inFeatures, outFeatures, x.Storage, outputGradient.Storage, dw.Storage);
        }

        if (NeedsGradient(2))
        {
            db = EmptyLike(2);
            Backend.LinearBackwardBias(n, outFeatures, outputGradient.Storage, db.Storage);
        }

        return [dx, dw, db];
    }
}
