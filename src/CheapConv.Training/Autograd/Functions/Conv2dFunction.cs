using CheapConv.Backends;
using CheapConv.Problems;

namespace CheapConv.Autograd.Functions;

/// <summary>
/// Convolution without bias, any groups, stride and padding, optionally with a residual added in its store
/// (<see cref="IBackend.Conv2dForwardFused"/>: the pre-activation block's y + x in the convolution's launch). The backend
/// picks the kernel (1×1 problems go to its GEMM path). Saves the input and the weight: both backward passes need the
/// other operand; the residual's gradient is the output's, passed through.
/// </summary>
internal sealed class Conv2dFunction : Function
{
    private Conv2dFunction(ConvProblem problem, Tensor x, Tensor w)
        : base(x, w) => Problem = problem;

    private Conv2dFunction(ConvProblem problem, Tensor x, Tensor w, Tensor residual)
        : base(x, w, residual) => Problem = problem;

    /// <summary>The problem descriptor of the forward pass.</summary>
    public ConvProblem Problem { get; }

    /// <summary>y = conv(x, w) with x N×C×H×W and w K×(C/groups)×R×S, plus <paramref name="residual"/> (y's shape) when given.</summary>
    public static Tensor Apply(Tensor x, Tensor w, int stride, int pad, int groups, Tensor? residual = null)
    {
        var problem = ProblemOf(x, w, stride, pad, groups, residual);
        var y = Tensor.Empty(x.Backend, problem.OutputShape);
        if (residual is null)
        {
            x.Backend.Conv2dForward(problem, x.Storage, w.Storage, y.Storage);
            return Record(y, () => new Conv2dFunction(problem, x, w), x, w);
        }

        x.Backend.Conv2dForwardFused(problem, x.Storage, w.Storage, y.Storage, residual.Storage, activation: null);
        return Record(y, () => new Conv2dFunction(problem, x, w, residual), x, w, residual);
    }

    /// <summary>
    /// Eval-mode inference only (nothing recorded: there is no gradient of the normalised output): v = conv(x, w) [+
    /// <paramref name="residual"/>] and relu(eval batch norm(v)) with <paramref name="next"/>'s parameters, in one backend op.
    /// Returns v only when <paramref name="keepOutput"/> (the block's output, still needed as a residual or an attention
    /// map), else null and v is never written.
    /// </summary>
    public static (Tensor? Output, Tensor Activated) ApplyNormalized(Tensor x, Tensor w, int stride, int pad, int groups, Tensor? residual,
        EvalBatchNormParameters next, bool keepOutput)
    {
        if (GradientMode.IsEnabled)
        {
            throw new InvalidOperationException("a convolution with the next batch norm in its store has no gradient: run it under GradientMode.NoGrad()");
        }

        var problem = ProblemOf(x, w, stride, pad, groups, residual);
        CheckLength(next.Gamma, problem.K, "the next batch norm's gamma");
        var backend = x.Backend;
        var y = keepOutput ? Tensor.Empty(backend, problem.OutputShape) : null;
        var activated = Tensor.Empty(backend, problem.OutputShape);
        backend.Conv2dForwardFused(problem, x.Storage, w.Storage, y?.Storage, residual?.Storage,
            new EvalBatchNormRelu(next.Gamma.Storage, next.Beta.Storage, next.RunningMean.Storage, next.RunningVar.Storage, next.Eps, activated.Storage));
        return (y, activated);
    }

    /// <summary>
    /// Training: v = conv(x, w) [+ <paramref name="residual"/>] and the training-mode batch norm (ReLU when set) over it, in one
    /// backend op (<see cref="IBackend.Conv2dForwardBatchNormTrain"/>: the batch statistics in the convolution's store where its
    /// kernels allow). Recorded as the convolution and the batch norm they are, so both backward passes are the usual ones
    /// (the batch norm's reads v and the saved statistics). Returns v and the normalised output.
    /// </summary>
    public static (Tensor Output, Tensor Normalized) ApplyBatchNormTrain(Tensor x, Tensor w, int stride, int pad, int groups, Tensor? residual,
        TrainBatchNormParameters bn)
    {
        var problem = ProblemOf(x, w, stride, pad, groups, residual);
        CheckLength(bn.Gamma, problem.K, "the batch norm's gamma");
        var v = Tensor.Empty(x.Backend, problem.OutputShape);
        var (y, mean, invStd) = BatchNormTrainFunction.Outputs(v, problem.K);
        x.Backend.Conv2dForwardBatchNormTrain(problem, x.Storage, w.Storage, v.Storage, residual?.Storage,
            new TrainBatchNorm(bn.Gamma.Storage, bn.Beta.Storage, bn.RunningMean.Storage, bn.RunningVar.Storage, bn.Momentum, bn.Eps, bn.Relu,
                y.Storage, mean.Storage, invStd.Storage));
        v = residual is null
            ? Record(v, () => new Conv2dFunction(problem, x, w), x, w)
            : Record(v, () => new Conv2dFunction(problem, x, w, residual), x, w, residual);
        return (v, BatchNormTrainFunction.Recorded(v, bn.Gamma, bn.Beta, y, mean, invStd, bn.Relu));
    }

    /// <summary>
    /// Training: z = conv(x, w) and the batch statistics of <paramref name="bn"/> over z (its running statistics updated), without
    /// applying it — for the convolution after it, which applies the batch norm as it reads z
    /// (<see cref="BatchNormConv2dFunction"/>). One backend op (<see cref="IBackend.Conv2dForwardBatchNormStatistics"/>: the
    /// statistics in this convolution's store where its kernels allow). Recorded as the convolution; the statistics are saved
    /// values, not outputs with a gradient (the batch norm's backward accounts for them). Returns z, the batch mean and 1/σ.
    /// </summary>
    public static (Tensor Output, Tensor Mean, Tensor InvStd) ApplyBatchNormStatistics(Tensor x, Tensor w, int stride, int pad, int groups,
        TrainBatchNormParameters bn)
    {
        var problem = ProblemOf(x, w, stride, pad, groups, residual: null);
        CheckLength(bn.Gamma, problem.K, "the batch norm's gamma");
        var backend = x.Backend;
        var z = Tensor.Empty(backend, problem.OutputShape);
        Tensor mean = Tensor.Empty(backend, problem.K), invStd = Tensor.Empty(backend, problem.K);
        backend.Conv2dForwardBatchNormStatistics(problem, x.Storage, w.Storage, z.Storage,
            new BatchNormStatistics(bn.RunningMean.Storage, bn.RunningVar.Storage, bn.Momentum, bn.Eps, mean.Storage, invStd.Storage));
        return (Record(z, () => new Conv2dFunction(problem, x, w), x, w), mean, invStd);
    }

    internal static ConvProblem ProblemOf(Tensor x, Tensor w, int stride, int pad, int groups, Tensor? residual)
    {
        CheckRank(x, 4, "conv input");
        CheckRank(w, 4, "conv weight");
        var problem = ConvProblem.Create(x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3), w.Dim(0), w.Dim(2), w.Dim(3), stride, pad, groups);
        if (!w.Shape.SequenceEqual(problem.WeightShape))
        {
            throw new ArgumentException($"conv weight is [{string.Join("x", w.Shape)}] but the problem ({problem}) needs [{string.Join("x", problem.WeightShape)}]");
        }

        if (residual is not null && !residual.Shape.SequenceEqual(problem.OutputShape))
        {
            throw new ArgumentException($"the residual is [{string.Join("x", residual.Shape)}] but the convolution ({problem}) gives [{string.Join("x", problem.OutputShape)}]");
        }

        return problem;
    }

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient) => Backward(outputGradient, new Tensor?[Inputs.Count]);

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient, IReadOnlyList<Tensor?> accumulators)
    {
        Tensor x = Inputs[0], w = Inputs[1];
        // dx into x's gradient when it already has one (the kernel adds), else a fresh tensor. Both gradients in one call:
        // one launch where the backend's kernels for the two passes share a grid.
        var dx = NeedsGradient(0) ? accumulators[0] ?? EmptyLike(0) : null;
        var dw = NeedsGradient(1) ? EmptyLike(1) : null;
        var accumulate = accumulators[0] is not null;
        if (BackwardFusion.IsEnabled && (dx is not null || dw is not null))
        {
            Backend.Conv2dBackward(Problem, x.Storage, outputGradient.Storage, w.Storage, dx?.Storage, dw?.Storage, accumulate);
        }
        else
        {
            if (dx is not null)
            {
                Backend.Conv2dBackwardData(Problem, outputGradient.Storage, w.Storage, dx.Storage, accumulate);
            }

            if (dw is not null)
            {
                Backend.Conv2dBackwardWeight(Problem, x.Storage, outputGradient.Storage, dw.Storage);
            }
        }

        return Inputs.Count == 2 ? [dx, dw] : [dx, dw, PassThrough(2, outputGradient, accumulators[2])];
    }
}
