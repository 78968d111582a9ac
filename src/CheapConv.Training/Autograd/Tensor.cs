using CheapConv.Backends;

namespace CheapConv.Autograd;

/// <summary>What a tensor is for, which decides where its memory comes from and whether it learns.</summary>
public enum TensorKind
{
    /// <summary>An activation, a saved statistic, an input batch or a gradient: lives as long as its <see cref="TensorScope"/>.</summary>
    Temporary,

    /// <summary>A trainable weight: persistent storage and a persistent gradient buffer.</summary>
    Parameter,

    /// <summary>Persistent state that is not trained (BatchNorm running statistics): never gets a gradient.</summary>
    Buffer,
}

/// <summary>
/// An n-dimensional fp32 array on one <see cref="IBackend"/> (NCHW for images), with an optional gradient and,
/// when a recorded primitive made it, that primitive (<see cref="Creator"/>). <see cref="Backward()"/> walks the
/// recorded graph in reverse topological order (found iteratively, so deep networks cannot overflow the
/// stack) and accumulates gradients where a tensor feeds several consumers: in the kernel of the primitive that
/// produces the later gradient where it can add into its output (batch norm's and the convolution's data gradients;
/// the add's backward adds dy with one Axpy instead of a copy and an Axpy), else with <see cref="IBackend.Axpy"/>.
/// </summary>
public sealed class Tensor : IDisposable
{
    private readonly int[] _shape;
    private readonly bool _ownsStorage;
    private Storage? _storage;

    // The scope whose cache the storage was rented from (null: owned, or the caller's): where it goes back early.
    private TensorScope? _scope;

    // Parameters keep one gradient buffer across steps (valid from the first accumulation until ZeroGrad);
    // other tensors adopt the first gradient that reaches them, itself a temporary tensor.
    private Storage? _parameterGradient;
    private bool _parameterGradientValid;
    private Tensor? _gradient;
    private bool _graphUsed;

    private Tensor(IBackend backend, int[] shape, Storage storage, bool ownsStorage, TensorKind kind)
    {
        Backend = backend;
        _shape = shape;
        _storage = storage;
        _ownsStorage = ownsStorage;
        Kind = kind;
        RequiresGrad = kind == TensorKind.Parameter;
    }

    /// <summary>The backend that holds the data and runs every op on it.</summary>
    public IBackend Backend { get; }

    /// <summary>The sizes, outermost first (N, C, H, W for images).</summary>
    public IReadOnlyList<int> Shape => _shape;

    /// <summary>Number of elements.</summary>
    public long Length => _storage?.Length ?? ElementCount(_shape);

    /// <summary>Temporary, parameter or buffer.</summary>
    public TensorKind Kind { get; }

    /// <summary>Whether gradients flow to this tensor: parameters, inputs marked so, and outputs of recorded primitives.</summary>
    public bool RequiresGrad { get; private set; }

    /// <summary>The recorded primitive that produced this tensor; null for leaves and after <see cref="Backward()"/>.</summary>
    internal Function? Creator { get; private set; }

    /// <summary>An optional name for messages (modules name their parameters with their state-dict names).</summary>
    public string? Name { get; set; }

    /// <summary>The data. Throws once the tensor's scope has ended.</summary>
    public Storage Storage => _storage ?? throw new ObjectDisposedException(Describe(), "the tensor was released with its TensorScope (or disposed)");

    /// <summary>∂(the scalar that <see cref="Backward()"/> started from)/∂this, or null when none has arrived.</summary>
    public Storage? Gradient => Kind == TensorKind.Parameter
        ? (_parameterGradientValid ? _parameterGradient : null)
        : _gradient?.Storage;

    /// <summary>Size of dimension <paramref name="index"/>.</summary>
    public int Dim(int index) => _shape[index];

    /// <summary>A trainable parameter holding <paramref name="values"/>.</summary>
    public static Tensor Parameter(IBackend backend, int[] shape, ReadOnlySpan<float> values) =>
        Persistent(backend, shape, values, TensorKind.Parameter);

    /// <summary>A persistent non-trainable buffer (running statistics) holding <paramref name="values"/>.</summary>
    public static Tensor Buffer(IBackend backend, int[] shape, ReadOnlySpan<float> values) =>
        Persistent(backend, shape, values, TensorKind.Buffer);

    /// <summary>
    /// A temporary holding a copy of host data (an input batch), optionally a leaf that receives a gradient: rented like
    /// <see cref="Empty"/> and filled with <see cref="IBackend.CopyFromHost"/>, which never makes the host wait for a GPU.
    /// </summary>
    public static Tensor FromHost(IBackend backend, int[] shape, ReadOnlySpan<float> values, bool requiresGrad = false)
    {
        CheckShape(shape, values.Length);
        var tensor = Empty(backend, shape);
        tensor.RequiresGrad = requiresGrad;
        backend.CopyFromHost(values, tensor.Storage);
        return tensor;
    }

    /// <summary>
    /// A temporary over <paramref name="storage"/>, which the caller keeps and frees (a captured step's input, refilled
    /// before each replay): the scope releases the tensor but leaves the storage alone.
    /// </summary>
    internal static Tensor Over(IBackend backend, int[] shape, Storage storage)
    {
        CheckShape(shape, storage.Length);
        var tensor = new Tensor(backend, (int[])shape.Clone(), storage, ownsStorage: false, TensorKind.Temporary);
        TensorScope.Track(tensor);
        return tensor;
    }

    /// <summary>A temporary with unspecified contents: rented from the cache inside a <see cref="TensorScope"/>.</summary>
    public static Tensor Empty(IBackend backend, params int[] shape)
    {
        var length = CheckShape(shape, null);
        var storage = TensorScope.Temporary(backend, length, out var scope);
        var tensor = new Tensor(backend, (int[])shape.Clone(), storage, ownsStorage: scope is null, TensorKind.Temporary) { _scope = scope };
        TensorScope.Track(tensor);
        return tensor;
    }

    /// <summary>A temporary filled with <paramref name="value"/>.</summary>
    public static Tensor Full(IBackend backend, int[] shape, float value)
    {
        var tensor = Empty(backend, shape);
        backend.Fill(tensor.Storage, value);
        return tensor;
    }

    /// <summary>Copies the data to a new host array.</summary>
    public float[] ToArray()
    {
        var data = new float[Length];
        Backend.Download(Storage, data);
        return data;
    }

    /// <summary>The value of a one-element tensor (a loss).</summary>
    public float Item() => Length == 1 ? ToArray()[0] : throw new InvalidOperationException($"Item() needs a one-element tensor, {Describe()} has {Length}");

    /// <summary>Copies the gradient to a new host array (throws when there is none).</summary>
    public float[] GradientToArray()
    {
        var gradient = Gradient ?? throw new InvalidOperationException($"{Describe()} has no gradient");
        var data = new float[Length];
        Backend.Download(gradient, data);
        return data;
    }

    /// <summary>Overwrites the data with host values (loading weights).</summary>
    public void Load(ReadOnlySpan<float> values)
    {
        if (values.Length != Length)
        {
            throw new ArgumentException($"{Describe()} has {Length} elements, {values.Length} were given");
        }

        using var uploaded = Backend.Upload(values);
        Backend.Copy(uploaded, Storage);
    }

    /// <summary>Backpropagates from a one-element tensor (a loss): its gradient is seeded with 1.</summary>
    public void Backward()
    {
        if (Length != 1)
        {
            throw new InvalidOperationException($"Backward() without a seed needs a one-element tensor, {Describe()} has {Length}; pass the gradient of the output");
        }

        var seed = Full(Backend, [1], 1f);
        BackwardFrom(seed);
    }

    /// <summary>Backpropagates with <paramref name="gradient"/> (copied) as ∂L/∂this.</summary>
    public void Backward(Storage gradient)
    {
        if (gradient.Length != Length)
        {
            throw new ArgumentException($"the seed gradient has {gradient.Length} elements, {Describe()} has {Length}");
        }

        var seed = Empty(Backend, _shape);
        Backend.Copy(gradient, seed.Storage);
        BackwardFrom(seed);
    }

    /// <summary>
    /// The tensors <see cref="Backward()"/> would visit from here, in the order it visits them: every tensor
    /// comes before the inputs of its creator (reverse post-order of an iterative depth-first search).
    /// </summary>
    internal IReadOnlyList<Tensor> BackwardOrder()
    {
        var postOrder = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance) { this };
        var stack = new Stack<(Tensor Node, int NextInput)>();
        stack.Push((this, 0));
        while (stack.Count > 0)
        {
            var (node, next) = stack.Pop();
            var inputs = node.Creator?.Inputs ?? [];
            if (next < inputs.Count)
            {
                stack.Push((node, next + 1));
                var input = inputs[next];
                if (input.RequiresGrad && visited.Add(input))
                {
                    stack.Push((input, 0));
                }
            }
            else
            {
                postOrder.Add(node);
            }
        }

        postOrder.Reverse();
        return postOrder;
    }

    /// <summary>
    /// Moves a parameter's values into <paramref name="storage"/> (of its length, on its backend: a part of the
    /// optimiser's arena) and frees its own storage; from then on the parameter lives there.
    /// </summary>
    internal void MoveTo(Storage storage)
    {
        RequireParameterStorage(storage, "its values");
        Backend.Copy(Storage, storage);
        _storage?.Dispose();
        _storage = storage;
    }

    /// <summary>Makes <paramref name="storage"/> (a part of the optimiser's gradient arena) this parameter's gradient
    /// buffer, which every later backward pass writes into; any buffer it had is freed.</summary>
    internal void UseGradientBuffer(Storage storage)
    {
        RequireParameterStorage(storage, "its gradient");
        if (_parameterGradientValid)
        {
            Backend.Copy(_parameterGradient!, storage);
        }

        _parameterGradient?.Dispose();
        _parameterGradient = storage;
    }

    private void RequireParameterStorage(Storage storage, string what)
    {
        ArgumentNullException.ThrowIfNull(storage);
        if (Kind != TensorKind.Parameter || storage.Length != Length)
        {
            throw new ArgumentException($"{Describe()} cannot keep {what} in a storage of {storage.Length} elements: only a parameter, and only in one of its length");
        }
    }

    /// <summary>Forgets a parameter's gradient (the buffer is kept for the next step).</summary>
    public void ZeroGrad()
    {
        _parameterGradientValid = false;
        _gradient = null;
    }

    /// <summary>Frees the data now (persistent tensors) or gives it back to its scope (temporaries).</summary>
    public void Dispose()
    {
        Release();
        _parameterGradient?.Dispose();
        _parameterGradient = null;
        _parameterGradientValid = false;
    }

    /// <inheritdoc/>
    public override string ToString() => Describe();

    internal void SetCreator(Function creator)
    {
        Creator = creator;
        RequiresGrad = true;
    }

    /// <summary>Whether this tensor's storage was rented by <paramref name="scope"/> and is still held.</summary>
    internal bool IsRentedBy(TensorScope scope) => _storage is not null && ReferenceEquals(_scope, scope);

    /// <summary>Records that the storage now belongs to <paramref name="scope"/> (<see cref="TensorScope.PassToOuter"/>).</summary>
    internal void MoveToScope(TensorScope scope) => _scope = scope;

    /// <summary>
    /// Gives a rented temporary's storage back to its scope's cache now, because nothing will read this tensor again (using
    /// it afterwards throws, as after its scope ends). Nothing happens to a tensor that is not rented (a parameter, a buffer,
    /// a temporary made outside any scope or over the caller's storage), nor while its scope keeps storages for a graph.
    /// </summary>
    internal void ReleaseEarly()
    {
        if (_storage is { } storage && _scope is { } scope && scope.ReturnEarly(Backend, storage))
        {
            Release();
        }
    }

    /// <summary>Called by the scope at its end: owned storage is freed, rented storage goes back with the scope.</summary>
    internal void Release()
    {
        if (_ownsStorage)
        {
            _storage?.Dispose();
        }

        _storage = null;
        _gradient = null;
        Creator = null;
    }

    private void BackwardFrom(Tensor seed)
    {
        if (!RequiresGrad)
        {
            throw new InvalidOperationException($"{Describe()} does not require a gradient: no recorded primitive made it (was it computed under NoGrad, or from constants only?)");
        }

        if (_graphUsed)
        {
            throw new InvalidOperationException($"the graph of {Describe()} was already used by a backward pass and released; run the forward pass again");
        }

        var order = BackwardOrder();
        AccumulateGradient(seed);
        foreach (var node in order)
        {
            if (node.Creator is not { } creator || node._gradient is not { } gradient)
            {
                continue;
            }

            var accumulators = AccumulatorsOf(creator.Inputs);
            var inputGradients = creator.Backward(gradient, accumulators);
            for (var i = 0; i < creator.Inputs.Count; i++)
            {
                // The primitive returns an input's accumulator when it has already added its gradient into it.
                if (inputGradients[i] is { } inputGradient && creator.Inputs[i].RequiresGrad && !ReferenceEquals(inputGradient, accumulators[i]))
                {
                    creator.Inputs[i].AccumulateGradient(inputGradient);
                }
            }

            // The graph is used once, as in PyTorch: a second Backward through it is an error, not a silent re-run.
            node.Creator = null;
            node._graphUsed = true;

            // Only the primitive that made the node reads the node's gradient (PyTorch keeps no gradient of an intermediate
            // either), so it goes back to the cache now instead of at the end of the step: at most the gradients between
            // the pass's frontier and the parameters are alive at once, not every one of the step.
            if (!HandedOn(gradient, inputGradients))
            {
                node._gradient = null;
                gradient.ReleaseEarly();
            }
        }
    }

    // Whether the primitive handed the node's gradient itself on as an input's gradient (none does today: PassThrough
    // copies), which would make it that input's gradient too.
    private static bool HandedOn(Tensor gradient, Tensor?[] inputGradients)
    {
        foreach (var inputGradient in inputGradients)
        {
            if (ReferenceEquals(inputGradient, gradient))
            {
                return true;
            }
        }

        return false;
    }

    // The one place that decides where a gradient may be added in place: an activation (or input) that already holds a
    // gradient offers it to the primitive producing its next one, which can then add into it in the same kernel instead
    // of a separate Axpy (a residual block's input feeds the shortcut and the batch norm). Parameters keep their own
    // persistent buffer (AccumulateGradient); a tensor without a gradient yet adopts the fresh one. Addition of the
    // rounded fp32 gradient is what Axpy(1, ·) does, so the bits are the same either way.
    private static Tensor?[] AccumulatorsOf(IReadOnlyList<Tensor> inputs)
    {
        var accumulators = new Tensor?[inputs.Count];
        if (!GradientMode.FusesAccumulation)
        {
            return accumulators;
        }

        for (var i = 0; i < inputs.Count; i++)
        {
            // An input listed twice gets no accumulator: both its gradients take the separate path, in order.
            var repeated = false;
            for (var j = 0; j < inputs.Count; j++)
            {
                repeated |= j != i && ReferenceEquals(inputs[j], inputs[i]);
            }

            if (inputs[i].Kind == TensorKind.Temporary && inputs[i].RequiresGrad && !repeated)
            {
                accumulators[i] = inputs[i]._gradient;
            }
        }

        return accumulators;
    }

    private void AccumulateGradient(Tensor gradient)
    {
        if (Kind == TensorKind.Parameter)
        {
            _parameterGradient ??= Backend.Allocate(Length);
            if (_parameterGradientValid)
            {
                Backend.Axpy(1f, gradient.Storage, _parameterGradient);
            }
            else
            {
                Backend.Copy(gradient.Storage, _parameterGradient);
                _parameterGradientValid = true;
            }
        }
        else if (Kind == TensorKind.Buffer)
        {
            throw new InvalidOperationException($"buffer {Describe()} received a gradient");
        }
        else if (_gradient is null)
        {
            // Primitives return fresh gradient tensors, never one shared between inputs, so adopting is safe.
            _gradient = gradient;
        }
        else
        {
            Backend.Axpy(1f, gradient.Storage, _gradient.Storage);
        }
    }

    private string Describe() => $"{Name ?? Kind.ToString().ToLowerInvariant()} [{string.Join("x", _shape)}]";

    private static Tensor Persistent(IBackend backend, int[] shape, ReadOnlySpan<float> values, TensorKind kind)
    {
        CheckShape(shape, values.Length);
        return new Tensor(backend, (int[])shape.Clone(), backend.Upload(values), ownsStorage: true, kind);
    }

    private static long CheckShape(int[] shape, long? expected)
    {
        if (shape.Length == 0 || shape.Any(size => size <= 0))
        {
            throw new ArgumentException($"a tensor shape needs at least one dimension, all positive, got [{string.Join(", ", shape)}]");
        }

        var length = ElementCount(shape);
        if (expected is { } count && count != length)
        {
            throw new ArgumentException($"shape [{string.Join(", ", shape)}] has {length} elements, {count} values were given");
        }

        return length;
    }

    private static long ElementCount(int[] shape) => shape.Aggregate(1L, (product, size) => checked(product * size));
}
