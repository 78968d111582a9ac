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
    protected override Tensor ForwardCore(Tensor x) => Pointwise.Forward(Hidden(x));

    /// <inheritdoc/>
    public Tensor ForwardAdding(Tensor x, Tensor residual) => ((IFusableUnit)Pointwise).ForwardAdding(Hidden(x), residual);

    /// <inheritdoc/>
    public (Tensor? Output, Tensor Activated) ForwardNormalized(Tensor x, Tensor? residual, BatchNorm2d next, bool keepOutput) =>
        ((IFusableUnit)Pointwise).ForwardNormalized(Hidden(x), residual, next, keepOutput);

    /// <inheritdoc/>
    public (Tensor Output, Tensor Activated) ForwardBatchNormTrain(Tensor x, Tensor? residual, BatchNorm2d next) =>
        ((IFusableUnit)Pointwise).ForwardBatchNormTrain(Hidden(x), residual, next);

    // What the pointwise convolution reads: relu(bn(grouped(x))).
    private Tensor Hidden(Tensor x) => Grouped.ForwardBatchNormRelu(x, Bn);
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
    protected override Tensor ForwardCore(Tensor x) => Expand.Forward(Hidden(x));

    /// <inheritdoc/>
    public Tensor ForwardAdding(Tensor x, Tensor residual) => ((IFusableUnit)Expand).ForwardAdding(Hidden(x), residual);

    /// <inheritdoc/>
    public (Tensor? Output, Tensor Activated) ForwardNormalized(Tensor x, Tensor? residual, BatchNorm2d next, bool keepOutput) =>
        ((IFusableUnit)Expand).ForwardNormalized(Hidden(x), residual, next, keepOutput);

    /// <inheritdoc/>
    public (Tensor Output, Tensor Activated) ForwardBatchNormTrain(Tensor x, Tensor? residual, BatchNorm2d next) =>
        ((IFusableUnit)Expand).ForwardBatchNormTrain(Hidden(x), residual, next);

    // What the expanding convolution reads: relu(bn2(conv(relu(bn1(reduce(x)))))).
    private Tensor Hidden(Tensor x) => Conv.ForwardBatchNormRelu(Reduce.ForwardBatchNormRelu(x, Bn1), Bn2);
}
