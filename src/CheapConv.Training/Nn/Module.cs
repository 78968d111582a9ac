using CheapConv.Autograd;

namespace CheapConv.Nn;

/// <summary>
/// A layer or a network, as in PyTorch: named children in registration order, its own parameters (trained)
/// and buffers (BatchNorm running statistics, not trained), a train/eval mode, and a state dict whose names
/// are PyTorch's (own parameters, then own buffers, then each child under "child."), so weights move between
/// this library and PyTorch by name.
/// </summary>
public abstract class Module
{
    private readonly List<(string Name, Module Module)> _children = [];
    private readonly List<(string Name, Tensor Tensor)> _parameters = [];
    private readonly List<(string Name, Tensor Tensor)> _buffers = [];

    /// <summary>Training mode (batch statistics, running-statistics updates) or eval mode.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>The direct children, in registration order.</summary>
    public IReadOnlyList<(string Name, Module Module)> Children => _children;

    /// <summary>Runs the layer; inside a <see cref="LayerTrace"/>, leaf layers also record their shapes and costs.</summary>
    public Tensor Forward(Tensor x)
    {
        var y = ForwardCore(x);
        if (_children.Count == 0)
        {
            LayerTrace.Current?.Record(this, GetType().Name, x, y);
        }

        return y;
    }

    /// <summary>The layer's computation.</summary>
    protected abstract Tensor ForwardCore(Tensor x);

    /// <summary>Multiply-accumulates of this layer alone for one sample, given its input and output (0 for layers without products).</summary>
    public virtual long MacsPerSample(IReadOnlyList<int> inputShape, IReadOnlyList<int> outputShape) => 0;

    /// <summary>Sets training mode here and below.</summary>
    public Module Train(bool training = true)
    {
        Training = training;
        foreach (var (_, child) in _children)
        {
            child.Train(training);
        }

        return this;
    }

    /// <summary>Sets eval mode here and below.</summary>
    public Module Eval() => Train(false);

    /// <summary>This module and every descendant with its dotted path ("" for this one), depth first in registration order.</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        yield return (prefix, this);
        foreach (var (name, child) in _children)
        {
            foreach (var entry in child.NamedModules(Join(prefix, name)))
            {
                yield return entry;
            }
        }
    }

    /// <summary>Every trainable parameter with its state-dict name.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedParameters() =>
        NamedModules().SelectMany(m => m.Module._parameters.Select(p => (Join(m.Name, p.Name), p.Tensor)));

    /// <summary>Every buffer (running statistics) with its state-dict name.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedBuffers() =>
        NamedModules().SelectMany(m => m.Module._buffers.Select(b => (Join(m.Name, b.Name), b.Tensor)));

    /// <summary>The trainable parameters, for the optimizer.</summary>
    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Tensor);

    /// <summary>The state dict in PyTorch's order: per module its parameters, then its buffers, then its children.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> StateDict() =>
        NamedModules().SelectMany(m => m.Module._parameters.Concat(m.Module._buffers).Select(e => (Join(m.Name, e.Name), e.Tensor)));

    /// <summary>Number of trainable values.</summary>
    public long ParameterCount() => Parameters().Sum(p => p.Length);

    /// <summary>Number of values in the state dict (parameters and running statistics).</summary>
    public long StateCount() => StateDict().Sum(e => e.Tensor.Length);

    /// <summary>Copies every state-dict entry to the host, by name.</summary>
    public Dictionary<string, float[]> ExportStateDict() => StateDict().ToDictionary(e => e.Name, e => e.Tensor.ToArray(), StringComparer.Ordinal);

    /// <summary>
    /// Loads values by state-dict name. Lengths must match; with <paramref name="strict"/> every entry must be
    /// given and nothing else (the message lists what is missing and what is unexpected).
    /// </summary>
    public void LoadStateDict(IReadOnlyDictionary<string, float[]> values, bool strict = true)
    {
        var entries = StateDict().ToList();
        if (strict)
        {
            var names = entries.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
            var missing = entries.Select(e => e.Name).Where(name => !values.ContainsKey(name)).ToList();
            var unexpected = values.Keys.Where(name => !names.Contains(name)).Order(StringComparer.Ordinal).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
            {
                throw new ArgumentException($"state dict does not match the model: missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", unexpected)}]");
            }
        }

        foreach (var (name, tensor) in entries)
        {
            if (!values.TryGetValue(name, out var data))
            {
                continue;
            }

            if (data.Length != tensor.Length)
            {
                throw new ArgumentException($"state dict entry {name} has {data.Length} values, the model's [{string.Join("x", tensor.Shape)}] needs {tensor.Length}");
            }

            tensor.Load(data);
        }
    }

    /// <summary>Adds a child under <paramref name="name"/> (its state-dict prefix).</summary>
    protected T RegisterModule<T>(string name, T module)
        where T : Module
    {
        CheckNewName(name);
        _children.Add((name, module));
        return module;
    }

    /// <summary>Adds a trainable parameter under <paramref name="name"/>.</summary>
    protected Tensor RegisterParameter(string name, Tensor parameter)
    {
        CheckNewName(name);
        if (parameter.Kind != TensorKind.Parameter)
        {
            throw new ArgumentException($"{name} is a {parameter.Kind}, not a parameter");
        }

        parameter.Name ??= name;
        _parameters.Add((name, parameter));
        return parameter;
    }

    /// <summary>Adds a buffer (state that is saved but not trained) under <paramref name="name"/>.</summary>
    protected Tensor RegisterBuffer(string name, Tensor buffer)
    {
        CheckNewName(name);
        if (buffer.Kind != TensorKind.Buffer)
        {
            throw new ArgumentException($"{name} is a {buffer.Kind}, not a buffer");
        }

        buffer.Name ??= name;
        _buffers.Add((name, buffer));
        return buffer;
    }

    private void CheckNewName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.', StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{name}' is not a valid member name (non-empty, no dots)");
        }

        if (_children.Any(c => c.Name == name) || _parameters.Any(p => p.Name == name) || _buffers.Any(b => b.Name == name))
        {
            throw new ArgumentException($"{GetType().Name} already has a member named '{name}'");
        }
    }

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;
}
