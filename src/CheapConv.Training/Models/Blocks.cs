using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Nn;

namespace CheapConv.Models;

/// <summary>A block's output and, when the next batch norm was done in its last convolution's store, relu(next(output)).</summary>
internal readonly record struct ResidualBlockOutput(Tensor Output, Tensor? Activated)
{
    /// <summary>
    /// The end of a block, with fusion on: unit(h) + residual in the unit's last convolution and, in eval-mode inference,
    /// relu(next(·)) of it in the same store (the output is kept: it is the next block's residual and may be an attention map);
    /// in training, relu(next(·)) with next's batch statistics computed in that store.
    /// </summary>
    public static ResidualBlockOutput Of(IFusableUnit unit, Tensor h, Tensor residual, BatchNorm2d? next)
    {
        if (next is not null && EpilogueFusion.Normalizes(next))
        {
            var (output, activated) = unit.ForwardNormalized(h, residual, next, keepOutput: true);
            return new(output!, activated);
        }

        if (next is not null && EpilogueFusion.ComputesStatistics(next))
        {
            var (output, activated) = unit.ForwardBatchNormTrain(h, residual, next);
            return new(output, activated);
        }

        return new(unit.ForwardAdding(h, residual), null);
    }
}

/// <summary>
/// A pre-activation residual block seen from the network that chains it: given x and o = relu(bn1(x)) (which the previous
/// convolution's store may have produced), its output, and relu(<c>next</c>(output)) when that could be fused too.
/// </summary>
internal interface IResidualBlock
{
    /// <summary>The block's first batch norm (over its input).</summary>
    BatchNorm2d Bn1 { get; }

    /// <summary>The block on x given o = relu(bn1(x)); <paramref name="next"/>: the batch norm that follows the block, whose
    /// relu(next(·)) comes back in <see cref="ResidualBlockOutput.Activated"/> where <see cref="EpilogueFusion.Normalizes"/>.</summary>
    ResidualBlockOutput Forward(Tensor x, Tensor o, BatchNorm2d? next);
}

/// <summary>
/// Pre-activation basic block: o = relu(bn1(x)); y = conv2(relu(bn2(conv1(o)))); out = y + (x, or shortcut(o)
/// when in ≠ out). conv1/conv2 are units; the stride sits in conv1; the 1×1 shortcut is never replaced.
/// </summary>
internal sealed class BasicBlock : Module, IResidualBlock
{
    /// <summary>A block in→out with <paramref name="stride"/>.</summary>
    public BasicBlock(IBackend backend, int inChannels, int outChannels, int stride, UnitSpec unit, Random random)
    {
        Bn1 = RegisterModule("bn1", new BatchNorm2d(backend, inChannels));
        Conv1 = RegisterModule("conv1", unit.Create(backend, inChannels, outChannels, stride, random));
        Bn2 = RegisterModule("bn2", new BatchNorm2d(backend, outChannels));
        Conv2 = RegisterModule("conv2", unit.Create(backend, outChannels, outChannels, 1, random));
        if (inChannels != outChannels)
        {
            Shortcut = RegisterModule("shortcut", new Conv2d(backend, inChannels, outChannels, 1, random, stride));
        }
    }

    /// <summary>BN over in channels.</summary>
    public BatchNorm2d Bn1 { get; }

    /// <summary>The first unit (in→out, strided).</summary>
    public Module Conv1 { get; }

    /// <summary>BN over out channels.</summary>
    public BatchNorm2d Bn2 { get; }

    /// <summary>The second unit (out→out).</summary>
    public Module Conv2 { get; }

    /// <summary>The 1×1 projection when in ≠ out.</summary>
    public Conv2d? Shortcut { get; }

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tensor x) => Forward(x, Bn1.ForwardRelu(x), next: null).Output;

    /// <inheritdoc/>
    public ResidualBlockOutput Forward(Tensor x, Tensor o, BatchNorm2d? next)
    {
        // bn2 after conv1: in eval-mode inference only its output is needed, so conv1's store can write just that; in training
        // that store computes bn2's batch statistics.
        var h = EpilogueFusion.Normalizes(Bn2) ? ((IFusableUnit)Conv1).ForwardNormalized(o, null, Bn2, keepOutput: false).Activated
            : EpilogueFusion.ComputesStatistics(Bn2) ? ((IFusableUnit)Conv1).ForwardBatchNormTrain(o, null, Bn2).Activated
            : Bn2.ForwardRelu(Conv1.Forward(o));
        if (!EpilogueFusion.IsEnabled)
        {
            var y = Conv2.Forward(h);
            return new(Ops.Add(y, Shortcut is null ? x : Shortcut.Forward(o)), null);
        }

        return ResidualBlockOutput.Of((IFusableUnit)Conv2, h, Shortcut is null ? x : Shortcut.Forward(o), next);
    }
}

/// <summary>Pre-activation bottle block: o = relu(bn1(x)); out = conv1(o) + (x, or shortcut(o) when in ≠ out).</summary>
internal sealed class BottleBlock : Module, IResidualBlock
{
    /// <summary>A block in→out with <paramref name="stride"/>.</summary>
    public BottleBlock(IBackend backend, int inChannels, int outChannels, int stride, UnitSpec unit, Random random)
    {
        Bn1 = RegisterModule("bn1", new BatchNorm2d(backend, inChannels));
        Conv1 = RegisterModule("conv1", unit.Create(backend, inChannels, outChannels, stride, random));
        if (inChannels != outChannels)
        {
            Shortcut = RegisterModule("shortcut", new Conv2d(backend, inChannels, outChannels, 1, random, stride));
        }
    }

    /// <summary>BN over in channels.</summary>
    public BatchNorm2d Bn1 { get; }

    /// <summary>The unit (in→out, strided).</summary>
    public Module Conv1 { get; }

    /// <summary>The 1×1 projection when in ≠ out.</summary>
    public Conv2d? Shortcut { get; }

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tensor x) => Forward(x, Bn1.ForwardRelu(x), next: null).Output;

    /// <inheritdoc/>
    public ResidualBlockOutput Forward(Tensor x, Tensor o, BatchNorm2d? next)
    {
        if (!EpilogueFusion.IsEnabled)
        {
            var y = Conv1.Forward(o);
            return new(Ops.Add(y, Shortcut is null ? x : Shortcut.Forward(o)), null);
        }

        return ResidualBlockOutput.Of((IFusableUnit)Conv1, o, Shortcut is null ? x : Shortcut.Forward(o), next);
    }
}

/// <summary>One of the three groups of a WRN: its blocks under "layer" (so names read block1.layer.0.…).</summary>
internal sealed class WrnGroup : Module
{
    /// <summary>n blocks; the first goes in→out with the group's stride.</summary>
    public WrnGroup(IBackend backend, int blocks, int inChannels, int outChannels, int stride, UnitSpec unit, BlockType blockType, Random random)
    {
        var layers = new List<Module>();
        for (var i = 0; i < blocks; i++)
        {
            int blockIn = i == 0 ? inChannels : outChannels, blockStride = i == 0 ? stride : 1;
            layers.Add(blockType == BlockType.Basic
                ? new BasicBlock(backend, blockIn, outChannels, blockStride, unit, random)
                : new BottleBlock(backend, blockIn, outChannels, blockStride, unit, random));
        }

        Layer = RegisterModule("layer", new Sequential(layers));
    }

    /// <summary>The blocks.</summary>
    public Sequential Layer { get; }

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tensor x) => Layer.Forward(x);
}
