namespace CheapConv.Autograd;

/// <summary>
/// Stochastic gradient descent with PyTorch's semantics (momentum, dampening 0, optional Nesterov, weight
/// decay added to the gradient), one fused backend op per parameter. Momentum buffers are persistent, one per
/// parameter, zero until the first step.
/// </summary>
public sealed class Sgd : IDisposable
{
    private readonly Tensor[] _parameters;
    private readonly Dictionary<Tensor, Backends.Storage> _momentum = new(ReferenceEqualityComparer.Instance);

    /// <summary>An optimizer over <paramref name="parameters"/> (tensors of kind <see cref="TensorKind.Parameter"/>).</summary>
    public Sgd(IEnumerable<Tensor> parameters, float learningRate, float momentum = 0f, float weightDecay = 0f, bool nesterov = false)
    {
        _parameters = [.. parameters];
        if (_parameters.FirstOrDefault(p => p.Kind != TensorKind.Parameter) is { } notParameter)
        {
            throw new ArgumentException($"SGD was given {notParameter}, which is not a parameter");
        }

        if (!(learningRate >= 0) || !(momentum >= 0) || !(weightDecay >= 0))
        {
            throw new ArgumentException($"SGD needs a non-negative learning rate, momentum and weight decay, got {learningRate}, {momentum}, {weightDecay}");
        }

        if (nesterov && momentum == 0f)
        {
            throw new ArgumentException("Nesterov momentum needs a momentum above 0");
        }

        LearningRate = learningRate;
        Momentum = momentum;
        WeightDecay = weightDecay;
        Nesterov = nesterov;
    }

    /// <summary>The learning rate of the next step (schedules change it between epochs).</summary>
    public float LearningRate { get; set; }

    /// <summary>Momentum factor.</summary>
    public float Momentum { get; }

    /// <summary>L2 penalty added to every gradient.</summary>
    public float WeightDecay { get; }

    /// <summary>Whether the update uses Nesterov momentum.</summary>
    public bool Nesterov { get; }

    /// <summary>The parameters it updates.</summary>
    public IReadOnlyList<Tensor> Parameters => _parameters;

    /// <summary>Updates every parameter that has a gradient; parameters without one are left alone (as PyTorch does).</summary>
    public void Step()
    {
        foreach (var parameter in _parameters)
        {
            if (parameter.Gradient is not { } gradient)
            {
                continue;
            }

            var backend = parameter.Backend;
            if (!_momentum.TryGetValue(parameter, out var buffer))
            {
                buffer = backend.Allocate(parameter.Length);
                backend.Fill(buffer, 0f);
                _momentum.Add(parameter, buffer);
            }

            backend.SgdStep(parameter.Length, parameter.Storage, gradient, buffer, LearningRate, Momentum, WeightDecay, Nesterov);
        }
    }

    /// <summary>
    /// The momentum buffer of <paramref name="parameter"/> as a host copy, or null when it has none yet (it has
    /// not been stepped). For checkpoints.
    /// </summary>
    internal float[]? ExportMomentum(Tensor parameter)
    {
        if (!_momentum.TryGetValue(parameter, out var buffer))
        {
            return null;
        }

        var values = new float[buffer.Length];
        parameter.Backend.Download(buffer, values);
        return values;
    }

    /// <summary>Restores the momentum buffer of <paramref name="parameter"/> (from a checkpoint); replaces any it had.</summary>
    internal void ImportMomentum(Tensor parameter, ReadOnlySpan<float> values)
    {
        if (!_parameters.Contains(parameter))
        {
            throw new ArgumentException("the tensor is not one of this optimiser's parameters", nameof(parameter));
        }

        if (values.Length != parameter.Length)
        {
            throw new ArgumentException($"momentum of {values.Length} values for a parameter of {parameter.Length}", nameof(values));
        }

        if (_momentum.Remove(parameter, out var old))
        {
            old.Dispose();
        }

        _momentum.Add(parameter, parameter.Backend.Upload(values));
    }

    /// <summary>Forgets every parameter's gradient before the next backward pass.</summary>
    public void ZeroGrad()
    {
        foreach (var parameter in _parameters)
        {
            parameter.ZeroGrad();
        }
    }

    /// <summary>Frees the momentum buffers.</summary>
    public void Dispose()
    {
        foreach (var buffer in _momentum.Values)
        {
            buffer.Dispose();
        }

        _momentum.Clear();
    }
}
