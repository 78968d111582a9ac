using CheapConv.Backends;

namespace CheapConv.Autograd;

/// <summary>
/// A recorded primitive: one class per op with a hand-written gradient (each wraps the backend's forward and
/// backward ops). Its static <c>Apply</c> runs the forward pass and, when gradients are enabled and an input
/// requires one, records an instance holding only what the backward pass needs. Composites (blocks, the
/// distillation loss) are compositions of these, never new gradients.
/// </summary>
internal abstract class Function
{
    private readonly Tensor[] _inputs;

    /// <summary>Records the inputs, which must all live on one backend.</summary>
    protected Function(params Tensor[] inputs)
    {
        _inputs = inputs;
        if (inputs.Any(input => input.Backend != inputs[0].Backend))
        {
            throw new ArgumentException($"{GetType().Name}: inputs live on different backends ({string.Join(", ", inputs.Select(i => i.Backend.Name).Distinct())})");
        }
    }

    /// <summary>The tensors this primitive consumed, in the order <see cref="Backward(Tensor)"/> returns their gradients.</summary>
    public IReadOnlyList<Tensor> Inputs => _inputs;

    /// <summary>The backend of the inputs.</summary>
    protected IBackend Backend => _inputs[0].Backend;

    /// <summary>The primitive's name for messages: the class name without "Function".</summary>
    public override string ToString() => GetType().Name.Replace("Function", "", StringComparison.Ordinal);

    /// <summary>
    /// Gradients of the inputs given the gradient of the output: one entry per input, null where the input
    /// requires none. Every returned tensor is a fresh temporary owned by the caller (never shared between
    /// inputs), so the engine can adopt it as the input's gradient.
    /// </summary>
    protected internal abstract Tensor?[] Backward(Tensor outputGradient);

    /// <summary>
    /// <see cref="Backward(Tensor)"/>, given the gradient each input already holds: <paramref name="accumulators"/>[i] is
    /// input i's gradient where <see cref="Tensor.Backward()"/> lets this primitive add into it (null elsewhere). A
    /// primitive whose kernel can add into its output (dx = dx + g, g rounded to fp32 first) does so and returns that
    /// accumulator; the others return fresh gradients, which the engine adds with <see cref="IBackend.Axpy"/>.
    /// </summary>
    protected internal virtual Tensor?[] Backward(Tensor outputGradient, IReadOnlyList<Tensor?> accumulators) => Backward(outputGradient);

    /// <summary>Whether input <paramref name="index"/> wants a gradient.</summary>
    protected bool NeedsGradient(int index) => _inputs[index].RequiresGrad;

    /// <summary>A fresh temporary shaped like input <paramref name="index"/>.</summary>
    protected Tensor EmptyLike(int index) => Tensor.Empty(Backend, [.. _inputs[index].Shape]);

    /// <summary>
    /// The gradient of input <paramref name="input"/> when the output's gradient passes to it unchanged (an added term): null
    /// when it needs none; added into <paramref name="accumulator"/> when it already holds one (the Axpy the engine would run
    /// after a copy); else a copy, since gradients handed back must not alias each other or the output's gradient.
    /// </summary>
    protected Tensor? PassThrough(int input, Tensor gradient, Tensor? accumulator)
    {
        if (!NeedsGradient(input))
        {
            return null;
        }

        if (accumulator is not null)
        {
            Backend.Axpy(1f, gradient.Storage, accumulator.Storage);
            return accumulator;
        }

        var copy = Tensor.Empty(Backend, [.. gradient.Shape]);
        Backend.Copy(gradient.Storage, copy.Storage);
        return copy;
    }

    /// <summary>Whether a primitive over <paramref name="inputs"/> is to be recorded now.</summary>
    protected static bool ShouldRecord(params ReadOnlySpan<Tensor> inputs)
    {
        if (!GradientMode.IsEnabled)
        {
            return false;
        }

        foreach (var input in inputs)
        {
            if (input.RequiresGrad)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Makes <paramref name="function"/> the creator of <paramref name="output"/> when recording.</summary>
    protected static Tensor Record(Tensor output, Func<Function> function, params ReadOnlySpan<Tensor> inputs)
    {
        if (ShouldRecord(inputs))
        {
            output.SetCreator(function());
        }

        return output;
    }

    /// <summary>Throws unless <paramref name="tensor"/> has <paramref name="rank"/> dimensions.</summary>
    protected static void CheckRank(Tensor tensor, int rank, string what)
    {
        if (tensor.Shape.Count != rank)
        {
            throw new ArgumentException($"{what} must have {rank} dimensions, got [{string.Join("x", tensor.Shape)}]");
        }
    }

    /// <summary>Throws unless two tensors have the same shape.</summary>
    protected static void CheckSameShape(Tensor a, Tensor b, string what)
    {
        if (!a.Shape.SequenceEqual(b.Shape))
        {
            throw new ArgumentException($"{what}: shapes [{string.Join("x", a.Shape)}] and [{string.Join("x", b.Shape)}] differ");
        }
    }

    /// <summary>Throws unless <paramref name="tensor"/> has <paramref name="length"/> elements.</summary>
    protected static void CheckLength(Tensor tensor, long length, string what)
    {
        if (tensor.Length != length)
        {
            throw new ArgumentException($"{what} must have {length} elements, got {tensor.Length}");
        }
    }
}
