namespace CheapConv.Autograd.Functions;

/// <summary>Softmax cross-entropy with integer labels, mean over the batch. Saves the probabilities and the labels.</summary>
internal sealed class CrossEntropyFunction : Function
{
    private readonly Tensor _probabilities;
    private readonly int[] _labels;

    private CrossEntropyFunction(Tensor logits, Tensor probabilities, int[] labels)
        : base(logits)
    {
        _probabilities = probabilities;
        _labels = labels;
    }

    /// <summary>loss = −(1/N)·Σ_n log softmax(logits[n])[labels[n]], a one-element tensor.</summary>
    public static Tensor Apply(Tensor logits, ReadOnlySpan<int> labels)
    {
        CheckRank(logits, 2, "cross-entropy logits");
        int n = logits.Dim(0), classes = logits.Dim(1);
        if (labels.Length != n)
        {
            throw new ArgumentException($"cross-entropy over a batch of {n} was given {labels.Length} labels");
        }

        var backend = logits.Backend;
        var loss = Tensor.Empty(backend, 1);
        var probabilities = Tensor.Empty(backend, n, classes);
        backend.CrossEntropyForward(n, classes, logits.Storage, labels, loss.Storage, probabilities.Storage);
        var saved = labels.ToArray();
        return Record(loss, () => new CrossEntropyFunction(logits, probabilities, saved), logits);
    }

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient)
    {
        var logits = Inputs[0];
        var dlogits = EmptyLike(0);
        Backend.CrossEntropyBackward(logits.Dim(0), logits.Dim(1), _probabilities.Storage, _labels, outputGradient.Storage, dlogits.Storage);
        return [dlogits];
    }
}
