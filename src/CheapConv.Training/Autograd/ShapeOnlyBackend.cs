using CheapConv.Backends;
using CheapConv.Problems;

namespace CheapConv.Autograd;

/// <summary>
/// A backend that holds sizes but no data and whose ops do nothing: running a model's ordinary forward pass on
/// it yields every layer's shapes, parameter counts and MACs instantly and without memory (the <c>summary</c>
/// command), with the model code as the single description of the architecture. Reading data back throws.
/// </summary>
internal sealed class ShapeOnlyBackend : IBackend
{
    /// <inheritdoc/>
    public string Name => "shape-only";

    /// <inheritdoc/>
    public Storage Allocate(long length) => new ShapeOnlyStorage(length);

    /// <inheritdoc/>
    public Storage Upload(ReadOnlySpan<float> data) => new ShapeOnlyStorage(data.Length);

    /// <inheritdoc/>
    public void Download(Storage source, Span<float> destination) =>
        throw new InvalidOperationException("the shape-only backend holds no data; run the model on cpu or a GPU backend to read values");

    /// <inheritdoc/>
    public void Copy(Storage source, Storage destination) => CheckSameLength(source, destination);

    /// <inheritdoc/>
    public void Conv2dForward(ConvProblem problem, Storage x, Storage w, Storage y) { }

    /// <inheritdoc/>
    public void Conv2dBackwardData(ConvProblem problem, Storage dy, Storage w, Storage dx, bool accumulate = false) { }

    /// <inheritdoc/>
    public void Conv2dBackwardWeight(ConvProblem problem, Storage x, Storage dy, Storage dw) { }

    /// <inheritdoc/>
    public void PointwiseForward(ConvProblem problem, Storage x, Storage w, Storage y) { }

    /// <inheritdoc/>
    public void PointwiseBackwardData(ConvProblem problem, Storage dy, Storage w, Storage dx) { }

    /// <inheritdoc/>
    public void PointwiseBackwardWeight(ConvProblem problem, Storage x, Storage dy, Storage dw) { }

    /// <inheritdoc/>
    public void LinearForward(int n, int inFeatures, int outFeatures, Storage x, Storage w, Storage b, Storage y) { }

    /// <inheritdoc/>
    public void LinearBackwardData(int n, int inFeatures, int outFeatures, Storage dy, Storage w, Storage dx) { }

    /// <inheritdoc/>
    public void LinearBackwardWeight(int n, int inFeatures, int outFeatures, Storage x, Storage dy, Storage dw) { }

    /// <inheritdoc/>
    public void LinearBackwardBias(int n, int outFeatures, Storage dy, Storage db) { }

    /// <inheritdoc/>
    public void BatchNormTrainForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean, Storage runningVar,
        float momentum, float eps, Storage y, Storage saveMean, Storage saveInvStd) { }

    /// <inheritdoc/>
    public void BatchNormEvalForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean, Storage runningVar,
        float eps, Storage y) { }

    /// <inheritdoc/>
    public void BatchNormBackward(int n, int c, int h, int w, Storage x, Storage dy, Storage gamma, Storage saveMean, Storage saveInvStd,
        Storage dx, Storage dgamma, Storage dbeta, bool accumulateDx = false) { }

    /// <inheritdoc/>
    public void BatchNormReluTrainForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean, Storage runningVar,
        float momentum, float eps, Storage y, Storage saveMean, Storage saveInvStd) { }

    /// <inheritdoc/>
    public void BatchNormReluEvalForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean, Storage runningVar,
        float eps, Storage y) { }

    /// <inheritdoc/>
    public void BatchNormReluBackward(int n, int c, int h, int w, Storage x, Storage dy, Storage gamma, Storage beta, Storage saveMean,
        Storage saveInvStd, Storage dx, Storage dgamma, Storage dbeta, bool accumulateDx = false) { }

    /// <inheritdoc/>
    public void ReluForward(long length, Storage x, Storage y) { }

    /// <inheritdoc/>
    public void ReluBackward(long length, Storage y, Storage dy, Storage dx) { }

    /// <inheritdoc/>
    public void Add(long length, Storage a, Storage b, Storage y) { }

    /// <inheritdoc/>
    public void GlobalAvgPoolForward(int n, int c, int h, int w, Storage x, Storage y) { }

    /// <inheritdoc/>
    public void GlobalAvgPoolBackward(int n, int c, int h, int w, Storage dy, Storage dx) { }

    /// <inheritdoc/>
    public void ZeroPadForward(int n, int c, int h, int w, int top, int bottom, int left, int right, Storage x, Storage y) { }

    /// <inheritdoc/>
    public void ZeroPadBackward(int n, int c, int h, int w, int top, int bottom, int left, int right, Storage dy, Storage dx) { }

    /// <inheritdoc/>
    public void Fill(Storage x, float value) { }

    /// <inheritdoc/>
    public void Scale(Storage x, float alpha) { }

    /// <inheritdoc/>
    public void Axpy(float alpha, Storage x, Storage y) => CheckSameLength(x, y);

    /// <inheritdoc/>
    public void Sum(Storage x, Storage result) { }

    /// <inheritdoc/>
    public void CrossEntropyForward(int n, int classes, Storage logits, ReadOnlySpan<int> labels, Storage loss, Storage probabilities) { }

    /// <inheritdoc/>
    public void CrossEntropyBackward(int n, int classes, Storage probabilities, ReadOnlySpan<int> labels, Storage dloss, Storage dlogits) { }

    /// <inheritdoc/>
    public void KdForward(int n, int classes, float temperature, Storage student, Storage teacher, Storage loss, Storage studentSoft, Storage teacherSoft) { }

    /// <inheritdoc/>
    public void KdBackward(int n, int classes, float temperature, Storage studentSoft, Storage teacherSoft, Storage dloss, Storage dstudent) { }

    /// <inheritdoc/>
    public void AtForward(int n, int c, int h, int w, Storage student, Storage teacher, Storage loss, Storage studentMap, Storage teacherMap, Storage studentNorm) { }

    /// <inheritdoc/>
    public void AtBackward(int n, int c, int h, int w, Storage student, Storage studentMap, Storage teacherMap, Storage studentNorm, Storage dloss, Storage dstudent) { }

    /// <inheritdoc/>
    public void SgdStep(long length, Storage parameter, Storage gradient, Storage momentumBuffer, float learningRate, float momentum, float weightDecay, bool nesterov) { }

    /// <inheritdoc/>
    public int CountCorrect(int n, int classes, Storage logits, ReadOnlySpan<int> labels) =>
        throw new InvalidOperationException("the shape-only backend holds no data to count");

    /// <inheritdoc/>
    public void CopyFromHost(ReadOnlySpan<float> source, Storage destination) { }

    /// <inheritdoc/>
    public void CopyElements(Storage source, long sourceOffset, Storage destination, long destinationOffset, long count)
    {
        CpuBackend.CheckSlice(nameof(source), source, sourceOffset, count);
        CpuBackend.CheckSlice(nameof(destination), destination, destinationOffset, count);
    }

    /// <inheritdoc/>
    public StorageList CreateList(IReadOnlyList<Storage> storages) => new ShapeOnlyList(storages);

    /// <inheritdoc/>
    public void FirstNonFinite(StorageList list, Storage result, long resultOffset) { }

    /// <inheritdoc/>
    public void CountCorrect(int n, int classes, Storage logits, ReadOnlySpan<int> labels, Storage result, long resultOffset) { }

    /// <inheritdoc/>
    public StorageArena? AllocateArena(IReadOnlyList<long> lengths) => null;

    /// <inheritdoc/>
    public StorageReadback CreateReadback(Storage source) => new NoDataReadback();

    /// <summary>The one precondition every backend checks for <see cref="Copy"/> and <see cref="Axpy"/> (as CpuBackend does):
    /// equal lengths, so a model that runs here does not fail on a real backend.</summary>
    private static void CheckSameLength(Storage a, Storage b)
    {
        if (a.Length != b.Length)
        {
            throw new ArgumentException($"storages of {a.Length} and {b.Length} elements where equal lengths are needed");
        }
    }

    private sealed class ShapeOnlyStorage(long length) : Storage
    {
        public override long Length { get; } = length;

        public override void Dispose()
        {
        }
    }

    private sealed class NoDataReadback : StorageReadback
    {
        public override void Start()
        {
        }

        public override bool TryFinish(Span<float> destination) =>
            throw new InvalidOperationException("the shape-only backend holds no data; run the model on cpu or a GPU backend to read values");

        public override void Dispose()
        {
        }
    }

    private sealed class ShapeOnlyList(IReadOnlyList<Storage> storages) : StorageList(storages)
    {
        public override void Dispose()
        {
        }
    }
}
