using CheapConv.Autograd;

namespace CheapConv.Nn;

/// <summary>Zero padding of images (Fashion-MNIST's 28×28 to 32×32); no state.</summary>
public sealed class ZeroPad2d(int top, int bottom, int left, int right) : Module
{
    /// <summary>The same padding on every side.</summary>
    public ZeroPad2d(int padding)
        : this(padding, padding, padding, padding)
    {
    }

    /// <summary>Rows added above.</summary>
    public int Top { get; } = top;

    /// <summary>Rows added below.</summary>
    public int Bottom { get; } = bottom;

    /// <summary>Columns added left.</summary>
    public int Left { get; } = left;

    /// <summary>Columns added right.</summary>
    public int Right { get; } = right;

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tensor x) => Ops.ZeroPad(x, Top, Bottom, Left, Right);
}
