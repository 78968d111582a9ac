namespace CheapConv.Autograd.Functions;

/// <summary>The residual add y = a + b. Saves nothing: each input's gradient is dy passed through.</summary>
internal sealed class AddFunction : Function
{
    private AddFunction(Tensor a, Tensor b)
        : base(a, b)
    {
    }

    /// <summary>y = a + b, element-wise, same shapes.</summary>
    public static Tensor Apply(Tensor a, Tensor b)
    {
        CheckSameShape(a, b, "add");
        var y = Tensor.Empty(a.Backend, [.. a.Shape]);
        a.Backend.Add(a.Length, a.Storage, b.Storage, y.Storage);
        return Record(y, () => new AddFunction(a, b), a, b);
    }

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient) => Backward(outputGradient, [null, null]);

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient, IReadOnlyList<Tensor?> accumulators) =>
        [PassThrough(0, outputGradient, accumulators[0]), PassThrough(1, outputGradient, accumulators[1])];
}
