using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Nn;

namespace CheapConv.Models;

/// <summary>G(g), G(N/x), G(N): grouped 3×3 in→in (stride on it) → BN → ReLU → pointwise 1×1 in→out.</summary>
internal sealed class GroupedUnit : Module, IFusableUnit
{
    /// <summary>The unit in→out.</summary>
    public GroupedUnit(IBackend backend, int inChannels, int outChannels, int stride, int groups, Random random)
    {
        Grouped = RegisterModule("grouped", new Conv2d(backend, inChannels, inChannels, 3, random, stride, padding: 1, groups: groups));
        Bn = RegisterModule("bn", new BatchNorm2d(backend, inChannels));
        Pointwise = RegisterModule("pointwise", new Conv2d(backend, inChannels, outChannels, 1, random));
    }

    /// <summary>The grouped 3×3.</summary>
    public Conv2d Grouped { get; }

    /// <summary>BN over in channels.</summary>
    public BatchNorm2d Bn { get; }

    /// <summary>The 1×1 in→out.</summary>
    public Conv2d Pointwise { get; }

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tensor x) =>
        InputFused(x) ? Pointwise.ForwardFromBatchNorm(Grouped.ForwardBatchNormStatistics(x, Bn), Bn, null, null).Output : Pointwise.Forward(Hidden(x));

    /// <inheritdoc/>
    public Tensor ForwardAdding(Tensor x, Tensor residual) =>
        InputFused(x) ? Pointwise.ForwardFromBatchNorm(Grouped.ForwardBatchNormStatistics(x, Bn), Bn, residual, null).Output
        : ((IFusableUnit)Pointwise).ForwardAdding(Hidden(x), residual);

    /// <inheritdoc/>
    public (Tensor? Output, Tensor Activated) ForwardNormalized(Tensor x, Tensor? residual, BatchNorm2d next, bool keepOutput) =>
        ((IFusableUnit)Pointwise).ForwardNormalized(Hidden(x), residual, next, keepOutput);

    /// <inheritdoc/>
    public (Tensor Output, Tensor Activated) ForwardBatchNormTrain(Tensor x, Tensor? residual, BatchNorm2d next)
    {
        if (!InputFused(x))
        {
            return ((IFusableUnit)Pointwise).ForwardBatchNormTrain(Hidden(x), residual, next);
        }

        var (output, activated) = Pointwise.ForwardFromBatchNorm(Grouped.ForwardBatchNormStatistics(x, Bn), Bn, residual, next);
        return (output, activated!);
    }

    // What the pointwise convolution reads: relu(bn(grouped(x))).
    private Tensor Hidden(Tensor x) => Grouped.ForwardBatchNormRelu(x, Bn);

    // Whether the pointwise convolution applies bn as it reads grouped(x) (PrologueFusion): the grouped convolution then computes
    // only bn's statistics, and relu(bn(·)) is never stored.
    private bool InputFused(Tensor x)
    {
        var grouped = Grouped.ProblemFor(x.Dim(0), x.Dim(2), x.Dim(3));
        return PrologueFusion.Applies(Bn, x.Backend, Pointwise.ProblemFor(grouped.N, grouped.P, grouped.Q));
    }
}

/// <summary>B(b), BG(b,·): reduce 1×1 in→mid → BN → ReLU → 3×3 mid→mid (stride, groups) → BN → ReLU → expand 1×1 mid→out.</summary>
internal sealed class BottleneckUnit : Module, IFusableUnit
{
    /// <summary>The unit in→out through <paramref name="mid"/> channels.</summary>
    public BottleneckUnit(IBackend backend, int inChannels, int mid, int outChannels, int stride, int groups, Random random)
    {
        Reduce = RegisterModule("reduce", new Conv2d(backend, inChannels, mid, 1, random));
        Bn1 = RegisterModule("bn1", new BatchNorm2d(backend, mid));
        Conv = RegisterModule("conv", new Conv2d(backend, mid, mid, 3, random, stride, padding: 1, groups: groups));
        Bn2 = RegisterModule("bn2", new BatchNorm2d(backend, mid));
        Expand = RegisterModule("expand", new Conv2d(backend, mid, outChannels, 1, random));
    }

    /// <summary>The 1×1 in→mid.</summary>
    public Conv2d Reduce { get; }

    /// <summary>BN over mid.</summary>
    public BatchNorm2d Bn1 { get; }

    /// <summary>The 3×3 mid→mid.</summary>
    public Conv2d Conv { get; }

    /// <summary>BN over mid.</summary>
    public BatchNorm2d Bn2 { get; }

    /// <summary>The 1×1 mid→out.</summary>
    public Conv2d Expand { get; }

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tensor x) => Through(x, null, null).Output;

    /// <inheritdoc/>
    public Tensor ForwardAdding(Tensor x, Tensor residual) => Through(x, residual, null).Output;

    /// <inheritdoc/>
    public (Tensor? Output, Tensor Activated) ForwardNormalized(Tensor x, Tensor? residual, BatchNorm2d next, bool keepOutput) =>
        ((IFusableUnit)Expand).ForwardNormalized(Hidden(Reduced(x)), residual, next, keepOutput);

    /// <inheritdoc/>
    public (Tensor Output, Tensor Activated) ForwardBatchNormTrain(Tensor x, Tensor? residual, BatchNorm2d next)
    {
        var (output, activated) = Through(x, residual, next);
        return (output, activated!);
    }

    // The expanding convolution over relu(bn2(conv(·))) [+ residual] [and relu(next(·)) of it]: bn2 applied as the expanding
    // convolution reads conv's output where PrologueFusion allows (conv then computes only bn2's statistics), else on its own.
    private (Tensor Output, Tensor? Activated) Through(Tensor x, Tensor? residual, BatchNorm2d? next)
    {
        var reduced = Reduced(x);
        var conv = Conv.ProblemFor(reduced.Dim(0), reduced.Dim(2), reduced.Dim(3));
        if (PrologueFusion.Applies(Bn2, x.Backend, Expand.ProblemFor(conv.N, conv.P, conv.Q)))
        {
            return Expand.ForwardFromBatchNorm(Conv.ForwardBatchNormStatistics(reduced, Bn2), Bn2, residual, next);
        }

        var hidden = Hidden(reduced);
        if (next is not null)
        {
            var (output, activated) = ((IFusableUnit)Expand).ForwardBatchNormTrain(hidden, residual, next);
            return (output, activated);
        }

        return (residual is null ? Expand.Forward(hidden) : ((IFusableUnit)Expand).ForwardAdding(hidden, residual), null);
    }

    // What the 3×3 convolution reads: relu(bn1(reduce(x))).
    private Tensor Reduced(Tensor x) => Reduce.ForwardBatchNormRelu(x, Bn1);

    // What the expanding convolution reads: relu(bn2(conv(·))) of the reduced input.
    private Tensor Hidden(Tensor reduced) => Conv.ForwardBatchNormRelu(reduced, Bn2);
}
