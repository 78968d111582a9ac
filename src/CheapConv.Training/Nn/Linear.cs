using CheapConv.Autograd;
using CheapConv.Backends;

namespace CheapConv.Nn;

/// <summary>
/// y = x·wᵀ + b with w out×in (PyTorch's layout). Weight U(±1/√in) as PyTorch, bias 0 as REFERENCE.md's init.
/// An N×C×1×1 input is taken as N×C.
/// </summary>
public sealed class Linear : Module
{
    /// <summary>A linear layer in→out.</summary>
    public Linear(IBackend backend, int inFeatures, int outFeatures, Random random)
    {
        if (inFeatures <= 0 || outFeatures <= 0)
        {
            throw new ArgumentException($"Linear {inFeatures}→{outFeatures}: sizes must be positive");
        }

        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = RegisterParameter("weight", Tensor.Parameter(backend, [outFeatures, inFeatures], Init.Uniform(random, (long)outFeatures * inFeatures, 1 / Math.Sqrt(inFeatures))));
        Bias = RegisterParameter("bias", Tensor.Parameter(backend, [outFeatures], Init.Constant(outFeatures, 0f)));
    }

    /// <summary>Input features.</summary>
    public int InFeatures { get; }

    /// <summary>Output features.</summary>
    public int OutFeatures { get; }

    /// <summary>out×in.</summary>
    public Tensor Weight { get; }

    /// <summary>out.</summary>
    public Tensor Bias { get; }

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tensor x) => Ops.Linear(x, Weight, Bias);

    /// <inheritdoc/>
    public override long MacsPerSample(IReadOnlyList<int> inputShape, IReadOnlyList<int> outputShape) => (long)InFeatures * OutFeatures;
}
