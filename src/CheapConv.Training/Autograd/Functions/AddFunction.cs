namespace CheapConv.Autograd.Functions;

/// <summary>The residual add y = a + b. Saves nothing: each input's gradient is a copy of dy.</summary>
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
    protected internal override Tensor?[] Backward(Tensor outputGradient) =>
        [NeedsGradient(0) ? CopyOf(outputGradient) : null, NeedsGradient(1) ? CopyOf(outputGradient) : null];

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient, IReadOnlyList<Tensor?> accumulators) =>
        [GradientOf(0, outputGradient, accumulators[0]), GradientOf(1, outputGradient, accumulators[1])];

    // An input that already holds a gradient gets dy added into it (the Axpy the engine would run after a copy).
    private Tensor? GradientOf(int input, Tensor gradient, Tensor? accumulator)
    {
        if (!NeedsGradient(input))
        {
            return null;
        }

        if (accumulator is null)
        {
            return CopyOf(gradient);
        }

        Backend.Axpy(1f, gradient.Storage, accumulator.Storage);
        return accumulator;
    }

    // One copy per input: gradients handed back must not alias each other or the output's gradient.
    private Tensor CopyOf(Tensor gradient)
    {
        var copy = Tensor.Empty(Backend, [.. gradient.Shape]);
        Backend.Copy(gradient.Storage, copy.Storage);
        return copy;
    }
}
