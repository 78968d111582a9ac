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
