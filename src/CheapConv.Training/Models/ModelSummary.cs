using CheapConv.Autograd;
using CheapConv.Nn;

namespace CheapConv.Models;

/// <summary>
/// Trainable parameters, state-dict values (parameters + BN running statistics, what the paper's tables
/// count), MACs of conv and linear layers for one image, and the per-layer table of a WRN configuration.
/// </summary>
public sealed record ModelSummary(WrnConfig Config, long Parameters, long StateEntries, long Macs, IReadOnlyList<LayerRecord> Layers)
{
    /// <summary>
    /// Summarises <paramref name="config"/> by running one image through the model on a
    /// <see cref="ShapeOnlyBackend"/>: the model code itself is the only description of the architecture.
    /// </summary>
    public static ModelSummary Of(WrnConfig config)
    {
        var backend = new ShapeOnlyBackend();
        var model = new WideResNet(config, backend);
        model.Eval();
        using var noGrad = GradientMode.NoGrad();
        using var scope = TensorScope.Begin();
        using var trace = LayerTrace.Begin(model);
        var image = Tensor.Empty(backend, 1, config.InChannels, config.ImageSize, config.ImageSize);
        model.ForwardWithGroups(image);
        return new ModelSummary(config, model.ParameterCount(), model.StateCount(), trace.Layers.Sum(l => l.Macs), [.. trace.Layers]);
    }
}
