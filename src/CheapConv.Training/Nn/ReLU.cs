using CheapConv.Autograd;

namespace CheapConv.Nn;

/// <summary>max(x, 0); no state.</summary>
public sealed class ReLU : Module
{
    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tensor x) => Ops.Relu(x);
}
