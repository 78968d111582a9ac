namespace CheapConv.Autograd.Functions;

/// <summary>y[n,c] = mean over h, w of x[n,c,h,w]. Saves nothing but the input's shape.</summary>
internal sealed class GlobalAvgPoolFunction : Function
{
    private GlobalAvgPoolFunction(Tensor x)
        : base(x)
    {
    }

    /// <summary>N×C×H×W → N×C.</summary>
    public static Tensor Apply(Tensor x)
    {
        CheckRank(x, 4, "global average pool input");
        var y = Tensor.Empty(x.Backend, x.Dim(0), x.Dim(1));
        x.Backend.GlobalAvgPoolForward(x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3), x.Storage, y.Storage);
        return Record(y, () => new GlobalAvgPoolFunction(x), x);
    }

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient)
    {
        var x = Inputs[0];
        var dx = EmptyLike(0);
        Backend.GlobalAvgPoolBackward(x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3), outputGradient.Storage, dx.Storage);
        return [dx];
    }
}
