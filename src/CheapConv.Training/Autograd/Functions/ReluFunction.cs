namespace CheapConv.Autograd.Functions;

/// <summary>y = max(x, 0). Saves the output: the mask is y &gt; 0.</summary>
internal sealed class ReluFunction : Function
{
    private readonly Tensor _output;

    private ReluFunction(Tensor x, Tensor output)
        : base(x) => _output = output;

    /// <summary>y = max(x, 0), element-wise.</summary>
    public static Tensor Apply(Tensor x)
    {
        var y = Tensor.Empty(x.Backend, [.. x.Shape]);
        x.Backend.ReluForward(x.Length, x.Storage, y.Storage);
        return Record(y, () => new ReluFunction(x, y), x);
    }

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient)
    {
        var dx = EmptyLike(0);
        Backend.ReluBackward(dx.Length, _output.Storage, outputGradient.Storage, dx.Storage);
        return [dx];
    }
}
