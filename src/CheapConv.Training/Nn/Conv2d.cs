using CheapConv.Autograd;
using CheapConv.Autograd.Functions;
using CheapConv.Backends;
using CheapConv.Problems;

namespace CheapConv.Nn;

/// <summary>
/// A square-kernel convolution without bias (every conv of a WRN and its students), any groups. Weight
/// K×(C/groups)×k×k initialised N(0, 2/(k·k·K)) as in REFERENCE.md.
/// </summary>
public sealed class Conv2d : Module, IFusableUnit
{
    /// <summary>A convolution in→out with a k×k kernel.</summary>
    public Conv2d(IBackend backend, int inChannels, int outChannels, int kernelSize, Random random, int stride = 1, int padding = 0, int groups = 1)
    {
        if (inChannels <= 0 || outChannels <= 0 || kernelSize <= 0 || stride <= 0 || padding < 0 || groups <= 0)
        {
            throw new ArgumentException($"Conv2d {inChannels}→{outChannels} k{kernelSize} stride {stride} pad {padding} groups {groups}: sizes must be positive (padding non-negative)");
        }

        if (inChannels % groups != 0 || outChannels % groups != 0)
        {
            throw new ArgumentException($"Conv2d {inChannels}→{outChannels}: groups ({groups}) must divide both channel counts");
        }

        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding;
        Groups = groups;
        var shape = new[] { outChannels, inChannels / groups, kernelSize, kernelSize };
        var std = Math.Sqrt(2.0 / (kernelSize * kernelSize * outChannels));
        Weight = RegisterParameter("weight", Tensor.Parameter(backend, shape, Init.Normal(random, shape.Aggregate(1L, (a, b) => a * b), std)));
    }

    /// <summary>Input channels C.</summary>
    public int InChannels { get; }

    /// <summary>Output channels K.</summary>
    public int OutChannels { get; }

    /// <summary>Kernel height and width.</summary>
    public int KernelSize { get; }

    /// <summary>Stride in both directions.</summary>
    public int Stride { get; }

    /// <summary>Zero padding on every side.</summary>
    public int Padding { get; }

    /// <summary>Number of groups.</summary>
    public int Groups { get; }

    /// <summary>K×(C/groups)×k×k.</summary>
    public Tensor Weight { get; }

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tensor x) => Ops.Conv2d(x, Weight, Stride, Padding, Groups);

    /// <summary>conv(x) + <paramref name="residual"/> in one op; traced as this layer, like <see cref="Module.Forward"/>.</summary>
    Tensor IFusableUnit.ForwardAdding(Tensor x, Tensor residual)
    {
        var y = Conv2dFunction.Apply(x, Weight, Stride, Padding, Groups, residual);
        LayerTrace.Current?.Record(this, GetType().Name, x, y);
        return y;
    }

    /// <inheritdoc/>
    (Tensor? Output, Tensor Activated) IFusableUnit.ForwardNormalized(Tensor x, Tensor? residual, BatchNorm2d next, bool keepOutput) =>
        Conv2dFunction.ApplyNormalized(x, Weight, Stride, Padding, Groups, residual, next.EvalParameters, keepOutput);

    /// <inheritdoc/>
    (Tensor Output, Tensor Activated) IFusableUnit.ForwardBatchNormTrain(Tensor x, Tensor? residual, BatchNorm2d next) =>
        Conv2dFunction.ApplyBatchNormTrain(x, Weight, Stride, Padding, Groups, residual, next.TrainParameters(relu: true));

    /// <summary>relu(<paramref name="bn"/>(conv(x))): in this convolution's store where <see cref="EpilogueFusion.Normalizes"/>
    /// allows, the batch statistics in it where <see cref="EpilogueFusion.ComputesStatistics"/> does, else as the two layers.</summary>
    internal Tensor ForwardBatchNormRelu(Tensor x, BatchNorm2d bn) =>
        EpilogueFusion.Normalizes(bn) ? ((IFusableUnit)this).ForwardNormalized(x, null, bn, keepOutput: false).Activated
        : EpilogueFusion.ComputesStatistics(bn) ? ((IFusableUnit)this).ForwardBatchNormTrain(x, null, bn).Activated
        : bn.ForwardRelu(Forward(x));

    /// <summary>This convolution's problem for an input of <paramref name="n"/> images of <paramref name="h"/>×<paramref name="w"/>.</summary>
    internal ConvProblem ProblemFor(int n, int h, int w) =>
        ConvProblem.Create(n, InChannels, h, w, OutChannels, KernelSize, KernelSize, Stride, Padding, Groups);

    /// <summary>z = conv(x) and <paramref name="bn"/>'s batch statistics over z, not applied: for the convolution after it, which
    /// applies them as it reads z (<see cref="ForwardFromBatchNorm"/>).</summary>
    internal (Tensor Output, Tensor Mean, Tensor InvStd) ForwardBatchNormStatistics(Tensor x, BatchNorm2d bn) =>
        Conv2dFunction.ApplyBatchNormStatistics(x, Weight, Stride, Padding, Groups, bn.TrainParameters(relu: true));

    /// <summary>conv(relu(<paramref name="bn"/>(z))) [+ <paramref name="residual"/>], the batch norm applied as this convolution reads z,
    /// with the statistics <see cref="ForwardBatchNormStatistics"/> computed; with <paramref name="next"/>, also relu(next(·)) of the
    /// output, its statistics in this convolution's store. The backend must support it (<see cref="PrologueFusion.Applies"/>).</summary>
    internal (Tensor Output, Tensor? Activated) ForwardFromBatchNorm((Tensor Z, Tensor Mean, Tensor InvStd) input, BatchNorm2d bn, Tensor? residual,
        BatchNorm2d? next) =>
        BatchNormConv2dFunction.Apply(input.Z, bn.TrainParameters(relu: true), input.Mean, input.InvStd, Weight, Stride, Padding, Groups, residual,
            next?.TrainParameters(relu: true));

    /// <inheritdoc/>
    public override long MacsPerSample(IReadOnlyList<int> inputShape, IReadOnlyList<int> outputShape) =>
        (long)outputShape[1] * outputShape[2] * outputShape[3] * (InChannels / Groups) * KernelSize * KernelSize;
}
