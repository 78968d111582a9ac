namespace CheapConv.Nn;

/// <summary>One leaf layer as a forward pass met it: state-dict path, type, shapes and costs.</summary>
/// <param name="Name">Dotted path of the layer in the model ("block1.layer.0.conv1.grouped").</param>
/// <param name="Type">The layer's kind ("Conv2d 3x3/2 g8", "BatchNorm2d+ReLU", "Linear").</param>
/// <param name="InputShape">Input shape, batch first.</param>
/// <param name="OutputShape">Output shape, batch first.</param>
/// <param name="Parameters">Trainable values of this layer.</param>
/// <param name="StateEntries">State-dict values of this layer (parameters and buffers).</param>
/// <param name="Macs">Multiply-accumulates for one sample.</param>
public sealed record LayerRecord(string Name, string Type, int[] InputShape, int[] OutputShape, long Parameters, long StateEntries, long Macs);

/// <summary>
/// Records every leaf layer a forward pass runs through (per thread, while open): the per-layer table of
/// <c>summary</c>. Names come from the root module's tree.
/// </summary>
internal sealed class LayerTrace : IDisposable
{
    [ThreadStatic]
    private static LayerTrace? _current;

    private readonly LayerTrace? _outer;
    private readonly Dictionary<Module, string> _names;
    private readonly List<LayerRecord> _layers = [];

    private LayerTrace(Module root)
    {
        _names = new Dictionary<Module, string>(ReferenceEqualityComparer.Instance);
        foreach (var (name, module) in root.NamedModules())
        {
            _names[module] = name;
        }

        _outer = _current;
        _current = this;
    }

    /// <summary>The open trace of this thread, or null.</summary>
    public static LayerTrace? Current => _current;

    /// <summary>The layers recorded so far, in execution order.</summary>
    public IReadOnlyList<LayerRecord> Layers => _layers;

    /// <summary>Starts recording the leaves of <paramref name="root"/>.</summary>
    public static LayerTrace Begin(Module root) => new(root);

    /// <summary>Adds a row for <paramref name="layer"/> (called by modules as they run).</summary>
    public void Record(Module layer, string type, Autograd.Tensor input, Autograd.Tensor output)
    {
        var name = _names.TryGetValue(layer, out var path) ? path : "?";
        int[] inputShape = [.. input.Shape], outputShape = [.. output.Shape];
        var parameters = layer.NamedParameters().Sum(p => p.Tensor.Length);
        var state = layer.StateDict().Sum(e => e.Tensor.Length);
        _layers.Add(new LayerRecord(name, Describe(layer, type), inputShape, outputShape, parameters, state, layer.MacsPerSample(inputShape, outputShape)));
    }

    /// <summary>Stops recording.</summary>
    public void Dispose()
    {
        if (_current == this)
        {
            _current = _outer;
        }
    }

    private static string Describe(Module layer, string type) => layer is Conv2d conv
        ? $"Conv2d {conv.KernelSize}x{conv.KernelSize}" + (conv.Stride != 1 ? $"/{conv.Stride}" : "") + (conv.Groups != 1 ? $" g{conv.Groups}" : "")
        : type;
}
