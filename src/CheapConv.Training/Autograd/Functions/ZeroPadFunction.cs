namespace CheapConv.Autograd.Functions;

/// <summary>Zero padding of images (28×28 Fashion-MNIST to 32×32). Saves only the padding; dx is the crop of dy.</summary>
internal sealed class ZeroPadFunction : Function
{
    private readonly (int Top, int Bottom, int Left, int Right) _pad;

    private ZeroPadFunction(Tensor x, (int, int, int, int) pad)
        : base(x) => _pad = pad;

    /// <summary>N×C×H×W → N×C×(H+top+bottom)×(W+left+right), x in the middle.</summary>
    public static Tensor Apply(Tensor x, int top, int bottom, int left, int right)
    {
        CheckRank(x, 4, "zero pad input");
        if (top < 0 || bottom < 0 || left < 0 || right < 0)
        {
            throw new ArgumentException($"padding must not be negative, got top {top} bottom {bottom} left {left} right {right}");
        }

        var y = Tensor.Empty(x.Backend, x.Dim(0), x.Dim(1), x.Dim(2) + top + bottom, x.Dim(3) + left + right);
        x.Backend.ZeroPadForward(x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3), top, bottom, left, right, x.Storage, y.Storage);
        return Record(y, () => new ZeroPadFunction(x, (top, bottom, left, right)), x);
    }

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient)
    {
        var x = Inputs[0];
        var dx = EmptyLike(0);
        Backend.ZeroPadBackward(x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3), _pad.Top, _pad.Bottom, _pad.Left, _pad.Right, outputGradient.Storage, dx.Storage);
        return [dx];
    }
}
