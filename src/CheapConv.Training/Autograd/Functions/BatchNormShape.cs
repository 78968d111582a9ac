namespace CheapConv.Autograd.Functions;

/// <summary>The N, C, H, W of a batch-norm input, checked against its per-channel tensors.</summary>
internal readonly record struct BatchNormShape(int N, int C, int H, int W)
{
    public static BatchNormShape Of(Tensor x, params ReadOnlySpan<Tensor> perChannel)
    {
        if (x.Shape.Count != 4)
        {
            throw new ArgumentException($"batch norm input must be N×C×H×W, got [{string.Join("x", x.Shape)}]");
        }

        var shape = new BatchNormShape(x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3));
        foreach (var tensor in perChannel)
        {
            if (tensor.Length != shape.C)
            {
                throw new ArgumentException($"batch norm over {shape.C} channels was given {tensor.Name ?? "a per-channel tensor"} of {tensor.Length} elements");
            }
        }

        return shape;
    }
}
