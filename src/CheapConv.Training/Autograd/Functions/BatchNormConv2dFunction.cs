using CheapConv.Backends;
using CheapConv.Problems;

namespace CheapConv.Autograd.Functions;

/// <summary>
/// y = conv(a, w) [+ residual] with a = relu(bn(z)) (the ReLU optional): a training-mode batch norm whose statistics were computed
/// before (<see cref="Conv2dFunction.ApplyBatchNormStatistics"/>), applied by the convolution as it reads z
/// (<see cref="IBackend.Conv2dForwardInputBatchNorm"/>), so a is never stored. Inputs z, γ, β, w [, residual]; saves the batch
/// mean and 1/σ. The backward pass is both layers' in one backend op (<see cref="IBackend.Conv2dBackwardInputBatchNorm"/>): the
/// convolution's gradients, with a recomputed from z for the weight gradient, then the batch norm's.
/// </summary>
internal sealed class BatchNormConv2dFunction : Function
{
    // The saved batch statistics, held as tensors (as BatchNormTrainFunction holds its own) so they live as long as this node.
    private readonly Tensor _mean;
    private readonly Tensor _invStd;
    private readonly bool _relu;

    private BatchNormConv2dFunction(ConvProblem problem, Tensor mean, Tensor invStd, bool relu, Tensor z, Tensor gamma, Tensor beta, Tensor w)
        : base(z, gamma, beta, w) => (Problem, _mean, _invStd, _relu) = (problem, mean, invStd, relu);

    private BatchNormConv2dFunction(ConvProblem problem, Tensor mean, Tensor invStd, bool relu, Tensor z, Tensor gamma, Tensor beta, Tensor w,
        Tensor residual)
        : base(z, gamma, beta, w, residual) => (Problem, _mean, _invStd, _relu) = (problem, mean, invStd, relu);

    /// <summary>The problem descriptor of the forward convolution (its input is z's shape).</summary>
    public ConvProblem Problem { get; }

    /// <summary>
    /// v = conv(relu?(bn(z)), w) [+ <paramref name="residual"/>] with <paramref name="bn"/>'s γ and β and the batch statistics
    /// <paramref name="mean"/> and <paramref name="invStd"/>; with <paramref name="next"/>, also that training batch norm over v (its
    /// statistics in the convolution's store where the backend can), recorded as the usual <see cref="BatchNormTrainFunction"/>.
    /// Returns v and, with <paramref name="next"/>, the normalised output. The backend must support the problem
    /// (<see cref="IBackend.SupportsInputBatchNorm"/>).
    /// </summary>
    public static (Tensor Output, Tensor? Normalized) Apply(Tensor z, TrainBatchNormParameters bn, Tensor mean, Tensor invStd, Tensor w, int stride,
        int pad, int groups, Tensor? residual, TrainBatchNormParameters? next)
    {
        var problem = Conv2dFunction.ProblemOf(z, w, stride, pad, groups, residual);
        CheckLength(bn.Gamma, problem.C, "the input batch norm's gamma");
        CheckLength(mean, problem.C, "the input batch norm's mean");
        CheckLength(invStd, problem.C, "the input batch norm's 1/sigma");
        var backend = z.Backend;
        var input = new InputBatchNorm(mean.Storage, invStd.Storage, bn.Gamma.Storage, bn.Beta.Storage, bn.Relu);
        var v = Tensor.Empty(backend, problem.OutputShape);
        (Tensor Y, Tensor Mean, Tensor InvStd)? after = null;
        TrainBatchNorm? nextOp = null;
        if (next is { } n)
        {
            CheckLength(n.Gamma, problem.K, "the next batch norm's gamma");
            var outputs = BatchNormTrainFunction.Outputs(v, problem.K);
            after = outputs;
            nextOp = new TrainBatchNorm(n.Gamma.Storage, n.Beta.Storage, n.RunningMean.Storage, n.RunningVar.Storage, n.Momentum, n.Eps, n.Relu,
                outputs.Y.Storage, outputs.Mean.Storage, outputs.InvStd.Storage);
        }

        backend.Conv2dForwardInputBatchNorm(problem, input, z.Storage, w.Storage, v.Storage, residual?.Storage, nextOp);
        v = residual is null
            ? Record(v, () => new BatchNormConv2dFunction(problem, mean, invStd, bn.Relu, z, bn.Gamma, bn.Beta, w), z, bn.Gamma, bn.Beta, w)
            : Record(v, () => new BatchNormConv2dFunction(problem, mean, invStd, bn.Relu, z, bn.Gamma, bn.Beta, w, residual),
                z, bn.Gamma, bn.Beta, w, residual);
        if (next is not { } nb || after is not { } a)
        {
            return (v, null);
        }

        return (v, BatchNormTrainFunction.Recorded(v, nb.Gamma, nb.Beta, a.Y, a.Mean, a.InvStd, nb.Relu));
    }

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient) => Backward(outputGradient, new Tensor?[Inputs.Count]);

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient, IReadOnlyList<Tensor?> accumulators)
    {
        Tensor z = Inputs[0], gamma = Inputs[1], beta = Inputs[2], w = Inputs[3];
        var bn = new InputBatchNorm(_mean.Storage, _invStd.Storage, gamma.Storage, beta.Storage, _relu);
        // dz straight into z's gradient when it already has one (the batch norm's kernel adds), else a fresh tensor. The batch
        // norm's γ and β gradients come with dz (one reduction gives both, and dz needs it); none of them when nothing needs
        // them, and then da is not needed either.
        var batchNorm = NeedsGradient(0) || NeedsGradient(1) || NeedsGradient(2);
        var accumulate = accumulators[0] is not null;
        Tensor? dz = batchNorm ? accumulators[0] ?? EmptyLike(0) : null, dgamma = batchNorm ? EmptyLike(1) : null, dbeta = batchNorm ? EmptyLike(2) : null;
        var da = batchNorm ? EmptyLike(0) : null;
        var dw = NeedsGradient(3) ? EmptyLike(3) : null;
        Backend.Conv2dBackwardInputBatchNorm(Problem, bn, z.Storage, outputGradient.Storage, w.Storage, da?.Storage, dz?.Storage, accumulate,
            dgamma?.Storage, dbeta?.Storage, dw?.Storage);
        Tensor?[] gradients = [NeedsGradient(0) ? dz : null, NeedsGradient(1) ? dgamma : null, NeedsGradient(2) ? dbeta : null, dw];
        return Inputs.Count == 4 ? gradients : [.. gradients, PassThrough(4, outputGradient, accumulators[4])];
    }
}
