namespace CheapConv.Autograd;

/// <summary>
/// Stochastic gradient descent with PyTorch's semantics (momentum, dampening 0, optional Nesterov, weight
/// decay added to the gradient). Momentum buffers are persistent, one per parameter, zero until the first step.
/// </summary>
/// <remarks>
/// On a backend that gains from one allocation (a GPU: <see cref="Backends.IBackend.AllocateArena"/>) the optimiser lays
/// the parameters, their gradient buffers and the momentum out in three arenas of the same layout — the parameters are
/// moved there when it is created — so that a step in which every parameter has a gradient is one SGD launch over the
/// whole arena instead of one per parameter. The update of each element is the same either way, so results do not
/// depend on it. Elsewhere (the CPU) it steps the parameters one by one.
/// </remarks>
public sealed class Sgd : IDisposable
{
    private readonly Tensor[] _parameters;
    private readonly Dictionary<Tensor, Backends.Storage> _momentum = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<Tensor> _stepped = new(ReferenceEqualityComparer.Instance);
    private readonly Arenas? _arenas;

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
        _arenas = Arenas.Create(_parameters);
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
        if (_arenas is { } arenas && _parameters.All(p => p.Gradient is not null))
        {
            // The padding between parts is zero in all three arenas, and SGD maps zeros to zeros: one launch updates all.
            arenas.Backend.SgdStep(arenas.Values.Whole.Length, arenas.Values.Whole, arenas.Gradients.Whole, arenas.Momentum.Whole,
                LearningRate, Momentum, WeightDecay, Nesterov);
            _stepped.UnionWith(_parameters);
            return;
        }

        foreach (var parameter in _parameters)
        {
            if (parameter.Gradient is not { } gradient)
            {
                continue;
            }

            parameter.Backend.SgdStep(parameter.Length, parameter.Storage, gradient, MomentumBuffer(parameter), LearningRate, Momentum, WeightDecay, Nesterov);
            _stepped.Add(parameter);
        }
    }

    /// <summary>The parameter's momentum buffer: its part of the arena, or its own (zero-filled when first asked for).</summary>
    private Backends.Storage MomentumBuffer(Tensor parameter)
    {
        if (!_momentum.TryGetValue(parameter, out var buffer))
        {
            if (_arenas is not null)
            {
                buffer = _arenas.Momentum.Parts[Array.IndexOf(_parameters, parameter)]; // zero-filled with its arena
            }
            else
            {
                buffer = parameter.Backend.Allocate(parameter.Length);
                parameter.Backend.Fill(buffer, 0f);
            }

            _momentum.Add(parameter, buffer);
        }

        return buffer;
    }

    /// <summary>
    /// The momentum buffer of <paramref name="parameter"/> as a host copy, or null when it has none yet (it has
    /// not been stepped). For checkpoints.
    /// </summary>
    internal float[]? ExportMomentum(Tensor parameter)
    {
        if (!_stepped.Contains(parameter))
        {
            return null;
        }

        var values = new float[parameter.Length];
        parameter.Backend.Download(MomentumBuffer(parameter), values);
        return values;
    }

    /// <summary>Restores the momentum buffer of <paramref name="parameter"/> (from a checkpoint); replaces what it held.</summary>
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

        using var uploaded = parameter.Backend.Upload(values);
        parameter.Backend.Copy(uploaded, MomentumBuffer(parameter));
        _stepped.Add(parameter);
    }

    /// <summary>Forgets every parameter's gradient before the next backward pass.</summary>
    public void ZeroGrad()
    {
        foreach (var parameter in _parameters)
        {
            parameter.ZeroGrad();
        }
    }

    /// <summary>Frees the momentum buffers (the parameters and their gradients, which live in the model's tensors, stay).</summary>
    public void Dispose()
    {
        if (_arenas is not null)
        {
            _momentum.Clear(); // parts of the momentum arena: freed with it
            _arenas.Momentum.Dispose();
            return;
        }

        foreach (var buffer in _momentum.Values)
        {
            buffer.Dispose();
        }

        _momentum.Clear();
    }

    /// <summary>
    /// The three arenas of one layout — values, gradients, momentum — for parameters that all live on one backend that
    /// gives arenas; the parameters are moved into theirs, and their gradient buffers become parts of the second.
    /// </summary>
    private sealed class Arenas
    {
        private Arenas(Backends.IBackend backend, Backends.StorageArena values, Backends.StorageArena gradients, Backends.StorageArena momentum)
        {
            Backend = backend;
            Values = values;
            Gradients = gradients;
            Momentum = momentum;
        }

        public Backends.IBackend Backend { get; }

        public Backends.StorageArena Values { get; }

        public Backends.StorageArena Gradients { get; }

        public Backends.StorageArena Momentum { get; }

        /// <summary>Null when there is nothing to lay out, the parameters span backends, or the backend gives no arenas.</summary>
        public static Arenas? Create(Tensor[] parameters)
        {
            if (parameters.Length == 0 || parameters.Any(p => p.Backend != parameters[0].Backend)
                || parameters.Distinct(ReferenceEqualityComparer.Instance).Count() != parameters.Length)
            {
                return null;
            }

            var backend = parameters[0].Backend;
            var lengths = parameters.Select(p => p.Length).ToArray();
            if (backend.AllocateArena(lengths) is not { } values)
            {
                return null;
            }

            var gradients = backend.AllocateArena(lengths)!;
            var momentum = backend.AllocateArena(lengths)!;
            for (var i = 0; i < parameters.Length; i++)
            {
                parameters[i].MoveTo(values.Parts[i]);
                parameters[i].UseGradientBuffer(gradients.Parts[i]);
            }

            return new Arenas(backend, values, gradients, momentum);
        }
    }
}
