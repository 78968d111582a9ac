using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Nn;

namespace CheapConv.Models;

/// <summary>The logits and the three group outputs (the attention-transfer points) of one forward pass.</summary>
public sealed record WrnOutput(Tensor Logits, IReadOnlyList<Tensor> Groups);

/// <summary>
/// The pre-activation WRN-d-k of REFERENCE.md and its Moonshine students (models.md's module tree and names):
/// [pad] → conv1 → block1 → block2 → block3 → relu(bn1) → global average pool → fc. The stem conv and the
/// shortcuts are never replaced.
/// </summary>
public sealed class WideResNet : Module
{
    /// <summary>Builds and initialises the model on <paramref name="backend"/> (weights from <paramref name="seed"/>).</summary>
    public WideResNet(WrnConfig config, IBackend backend, int seed = 0)
    {
        config.Validate();
        Config = config;
        var random = new Random(seed);
        var channels = config.Channels;
        var n = config.BlocksPerGroup;
        if (config.ImageSize == WrnConfig.FashionMnistSize)
        {
            var pad = (WrnConfig.PaddedImageSize - WrnConfig.FashionMnistSize) / 2;
            Pad = RegisterModule("pad", new ZeroPad2d(pad));
        }

        Conv1 = RegisterModule("conv1", new Conv2d(backend, config.InChannels, channels[0], 3, random, padding: 1));
        Block1 = RegisterModule("block1", new WrnGroup(backend, n, channels[0], channels[1], 1, config.Unit, config.BlockType, random));
        Block2 = RegisterModule("block2", new WrnGroup(backend, n, channels[1], channels[2], 2, config.Unit, config.BlockType, random));
        Block3 = RegisterModule("block3", new WrnGroup(backend, n, channels[2], channels[3], 2, config.Unit, config.BlockType, random));
        Bn1 = RegisterModule("bn1", new BatchNorm2d(backend, channels[3]));
        Fc = RegisterModule("fc", new Linear(backend, channels[3], config.Classes, random));
        _blocks = [.. new[] { Block1, Block2, Block3 }.SelectMany(group => Enumerable.Range(0, group.Layer.Count).Select(i => (IResidualBlock)group.Layer[i]))];
    }

    // Every block of the three groups, in order (BlocksPerGroup each).
    private readonly IResidualBlock[] _blocks;

    /// <summary>The groups of blocks a WRN has (and so the activations <see cref="ForwardWithGroups"/> returns).</summary>
    internal const int GroupCount = 3;

    /// <summary>The configuration it was built from.</summary>
    public WrnConfig Config { get; }

    /// <summary>28→32 zero padding, only for 28×28 images.</summary>
    public ZeroPad2d? Pad { get; }

    /// <summary>The stem 3×3 conv.</summary>
    public Conv2d Conv1 { get; }

    /// <summary>Group 1 (stride 1).</summary>
    internal WrnGroup Block1 { get; }

    /// <summary>Group 2 (stride 2).</summary>
    internal WrnGroup Block2 { get; }

    /// <summary>Group 3 (stride 2).</summary>
    internal WrnGroup Block3 { get; }

    /// <summary>The final BN.</summary>
    public BatchNorm2d Bn1 { get; }

    /// <summary>The classifier.</summary>
    public Linear Fc { get; }

    /// <summary>Logits and the three group outputs for attention transfer.</summary>
    public WrnOutput ForwardWithGroups(Tensor x)
    {
        var c = Config;
        if (x.Shape.Count != 4 || x.Dim(1) != c.InChannels || x.Dim(2) != c.ImageSize || x.Dim(3) != c.ImageSize)
        {
            throw new ArgumentException($"{c.Name} takes N×{c.InChannels}×{c.ImageSize}×{c.ImageSize} images, got [{string.Join("x", x.Shape)}]");
        }

        if (Pad is not null)
        {
            x = Pad.Forward(x);
        }

        // The stem, then every block, each handed the batch norm that follows it: in eval-mode inference the convolution
        // that ends a stage also writes relu(bn(·)) for the next one (EpilogueFusion), so no batch norm runs on its own.
        var blocks = _blocks;
        Tensor current;
        Tensor? activated = null;
        if (EpilogueFusion.Normalizes(blocks[0].Bn1))
        {
            var (stem, normalized) = ((IFusableUnit)Conv1).ForwardNormalized(x, null, blocks[0].Bn1, keepOutput: true);
            (current, activated) = (stem!, normalized);
        }
        else if (EpilogueFusion.ComputesStatistics(blocks[0].Bn1))
        {
            (current, activated) = ((IFusableUnit)Conv1).ForwardBatchNormTrain(x, null, blocks[0].Bn1);
        }
        else
        {
            current = Conv1.Forward(x);
        }

        var groups = new List<Tensor>(GroupCount);
        for (var i = 0; i < blocks.Length; i++)
        {
            var block = blocks[i];
            var (input, inputActivated) = (current, activated);
            var next = i + 1 < blocks.Length ? blocks[i + 1].Bn1 : Bn1;
            (current, activated) = ReleasesDeadActivations
                ? ForwardInOwnScope(block, input, inputActivated, next)
                : block.Forward(input, inputActivated ?? block.Bn1.ForwardRelu(input), next);
            if ((i + 1) % Config.BlocksPerGroup == 0)
            {
                groups.Add(current);
            }

            if (ReleasesDeadActivations)
            {
                // Nothing reads the block's input again (no backward pass will), unless it is an attention map.
                inputActivated?.ReleaseEarly();
                if (!groups.Contains(input))
                {
                    input.ReleaseEarly();
                }
            }
        }

        var logits = Fc.Forward(Ops.GlobalAvgPool(activated ?? Bn1.ForwardRelu(current)));
        return new WrnOutput(logits, groups);
    }


    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tensor x) => ForwardWithGroups(x).Logits;

    // Without gradient recording (the teacher in distillation, evaluation) nothing is saved for a backward pass, so a
    // block's intermediates and its input die with the block, as PyTorch frees them: the forward pass then holds a few
    // activations at a time instead of all of them until the step's scope ends. Only inside a scope: a temporary made
    // outside one is the caller's to dispose.
    private static bool ReleasesDeadActivations => !GradientMode.IsEnabled && TensorScope.Current is not null;

    // The block in a scope of its own that hands only its outputs on.
    private static ResidualBlockOutput ForwardInOwnScope(IResidualBlock block, Tensor x, Tensor? o, BatchNorm2d next)
    {
        using var scope = TensorScope.Begin();
        var result = block.Forward(x, o ?? block.Bn1.ForwardRelu(x), next);
        scope.PassToOuter(result.Output);
        if (result.Activated is { } activated)
        {
            scope.PassToOuter(activated);
        }

        return result;
    }
}
