namespace CheapConv.Autograd.Functions;

/// <summary>
/// y = Σ_i wᵢ·xᵢ over same-shaped tensors with constant weights — how losses are combined (and, with one term,
/// scaling). Saves only the weights: dxᵢ = wᵢ·dy.
/// </summary>
internal sealed class WeightedSumFunction : Function
{
    private readonly float[] _weights;

    private WeightedSumFunction(Tensor[] terms, float[] weights)
        : base(terms) => _weights = weights;

    /// <summary>Σ wᵢ·xᵢ; <paramref name="terms"/> and <paramref name="weights"/> have the same count, at least one.</summary>
    public static Tensor Apply(IReadOnlyList<Tensor> terms, IReadOnlyList<float> weights)
    {
        if (terms.Count == 0 || terms.Count != weights.Count)
        {
            throw new ArgumentException($"a weighted sum needs as many weights as terms, at least one; got {terms.Count} terms and {weights.Count} weights");
        }

        foreach (var term in terms)
        {
            CheckSameShape(terms[0], term, "weighted sum");
        }

        var backend = terms[0].Backend;
        var y = Tensor.Empty(backend, [.. terms[0].Shape]);
        backend.Copy(terms[0].Storage, y.Storage);
        backend.Scale(y.Storage, weights[0]);
        for (var i = 1; i < terms.Count; i++)
        {
            backend.Axpy(weights[i], terms[i].Storage, y.Storage);
        }

        Tensor[] inputs = [.. terms];
        float[] saved = [.. weights];
        return Record(y, () => new WeightedSumFunction(inputs, saved), inputs);
    }

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient)
    {
        var gradients = new Tensor?[_weights.Length];
        for (var i = 0; i < gradients.Length; i++)
        {
            if (NeedsGradient(i))
            {
                var gradient = EmptyLike(i);
                Backend.Copy(outputGradient.Storage, gradient.Storage);
                Backend.Scale(gradient.Storage, _weights[i]);
                gradients[i] = gradient;
            }
        }

        return gradients;
    }
}
