using CheapConv.Problems;

namespace CheapConv.Autograd.Functions;

/// <summary>
/// Convolution without bias, any groups, stride and padding. The backend picks the kernel (1×1 problems go to
/// its GEMM path). Saves the input and the weight: both backward passes need the other operand.
/// </summary>
internal sealed class Conv2dFunction : Function
{
    private Conv2dFunction(ConvProblem problem, Tensor x, Tensor w)
        : base(x, w) => Problem = problem;

    /// <summary>The problem descriptor of the forward pass.</summary>
    public ConvProblem Problem { get; }

    /// <summary>y = conv(x, w) with x N×C×H×W and w K×(C/groups)×R×S.</summary>
    public static Tensor Apply(Tensor x, Tensor w, int stride, int pad, int groups)
    {
        CheckRank(x, 4, "conv input");
        CheckRank(w, 4, "conv weight");
        var problem = ConvProblem.Create(x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3), w.Dim(0), w.Dim(2), w.Dim(3), stride, pad, groups);
        if (!w.Shape.SequenceEqual(problem.WeightShape))
        {
            throw new ArgumentException($"conv weight is [{string.Join("x", w.Shape)}] but the problem ({problem}) needs [{string.Join("x", problem.WeightShape)}]");
        }

        var y = Tensor.Empty(x.Backend, problem.OutputShape);
        x.Backend.Conv2dForward(problem, x.Storage, w.Storage, y.Storage);
        return Record(y, () => new Conv2dFunction(problem, x, w), x, w);
    }

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient) => Backward(outputGradient, [null, null]);

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient, IReadOnlyList<Tensor?> accumulators)
    {
        Tensor x = Inputs[0], w = Inputs[1];
        Tensor? dx = null, dw = null;
        if (NeedsGradient(0))
        {
            // Into x's gradient when it already has one (the kernel adds), else a fresh tensor.
            dx = accumulators[0] ?? EmptyLike(0);
            Backend.Conv2dBackwardData(Problem, outputGradient.Storage, w.Storage, dx.Storage, accumulate: accumulators[0] is not null);
        }

        if (NeedsGradient(1))
        {
            dw = EmptyLike(1);
            Backend.Conv2dBackwardWeight(Problem, x.Storage, outputGradient.Storage, dw.Storage);
        }

        return [dx, dw];
    }
}
