using CheapConv.Backends;
using CheapConv.Problems;

namespace CheapConv.Profiling;

/// <summary>One op a <see cref="RecordingBackend"/> saw, and which kernel launches it made.</summary>
/// <param name="Name">The <see cref="IBackend"/> member, e.g. "Conv2dForward".</param>
/// <param name="Problem">The convolution it computed, for the conv and pointwise ops; null for the others.</param>
/// <param name="Pass">"forward", "backward_data" or "backward_weight" for a convolution pass; null otherwise (the fused forward, whose
/// compulsory traffic is all its tensors).</param>
/// <param name="Flops">2 × MACs of a convolution or linear layer; 0 for the other ops (their arithmetic is negligible).</param>
/// <param name="StorageBytes">Bytes of every tensor the op was given: no launch of the op can touch more of them.</param>
/// <param name="FirstLaunch">Index of its first launch in the launch counter's sequence.</param>
/// <param name="LaunchCount">Launches it made.</param>
/// <param name="ElapsedTicks">Wall time of the call in <see cref="System.Diagnostics.Stopwatch"/> ticks, when the backend was given a
/// clock (on the CPU backend, which computes during the call, the op's time; on a GPU only the time to enqueue it); else 0.</param>
internal sealed record RecordedOp(string Name, ConvProblem? Problem, string? Pass, double Flops, long StorageBytes, int FirstLaunch, int LaunchCount,
    long ElapsedTicks = 0);

/// <summary>
/// An <see cref="IBackend"/> that forwards every op to another and records it: the op, its problem and FLOPs, the
/// bytes of its tensors, and the span of kernel launches it made (read from <c>launchCounter</c>, the number of launches
/// so far — the profiling emulator's), so that each profiled launch can be attributed to the op that made it. Host
/// waits are the device layer's to count (<see cref="Devices.HostWaits"/>): the step profile watches them there.
/// </summary>
/// <param name="inner">The backend that computes.</param>
/// <param name="launchCounter">The number of kernel launches so far (0 where nothing counts them).</param>
/// <param name="clock">A timestamp in <see cref="System.Diagnostics.Stopwatch"/> ticks, to time each op (<c>bench step --ops</c>);
/// null: not timed.</param>
internal sealed class RecordingBackend(IBackend inner, Func<int> launchCounter, Func<long>? clock = null) : IBackend
{
    private readonly Func<int> _launches = launchCounter;
    private readonly Func<long>? _clock = clock;
    private readonly List<RecordedOp> _ops = [];

    /// <summary>Every op so far, in order.</summary>
    public IReadOnlyList<RecordedOp> Ops => _ops;

    /// <summary>Forgets the ops recorded so far.</summary>
    public void Clear() => _ops.Clear();

    public string Name => inner.Name;

    public Storage Allocate(long length) => inner.Allocate(length);

    public Storage Upload(ReadOnlySpan<float> data) => inner.Upload(data);

    public void Download(Storage source, Span<float> destination) => inner.Download(source, destination);

    public void Copy(Storage source, Storage destination)
    {
        using var op = Begin(nameof(Copy), source, destination);
        inner.Copy(source, destination);
    }

    public void Conv2dForward(ConvProblem problem, Storage x, Storage w, Storage y)
    {
        using var op = BeginConv(nameof(Conv2dForward), problem, "forward", x, w, y);
        inner.Conv2dForward(problem, x, w, y);
    }

    public void Conv2dBackwardData(ConvProblem problem, Storage dy, Storage w, Storage dx, bool accumulate = false)
    {
        using var op = BeginConv(nameof(Conv2dBackwardData), problem, "backward_data", dy, w, dx);
        inner.Conv2dBackwardData(problem, dy, w, dx, accumulate);
    }

    public void Conv2dBackwardWeight(ConvProblem problem, Storage x, Storage dy, Storage dw)
    {
        using var op = BeginConv(nameof(Conv2dBackwardWeight), problem, "backward_weight", x, dy, dw);
        inner.Conv2dBackwardWeight(problem, x, dy, dw);
    }

    public void Conv2dBackward(ConvProblem problem, Storage x, Storage dy, Storage w, Storage? dx, Storage? dw, bool accumulate = false)
    {
        // One op for both gradients (their launches are one where the kernels fuse): no pass, so the compulsory traffic is
        // every tensor given once (ProfileModel), and the FLOPs are those of each gradient computed.
        Storage[] storages = [x, dy, w, .. new[] { dx, dw }.OfType<Storage>()];
        var passes = (dx is null ? 0 : 1) + (dw is null ? 0 : 1);
        using var op = new OpScope(this, nameof(Conv2dBackward), problem, null, passes * 2.0 * problem.Macs, Bytes(storages));
        inner.Conv2dBackward(problem, x, dy, w, dx, dw, accumulate);
    }

    public void Conv2dForwardFused(ConvProblem problem, Storage x, Storage w, Storage? y, Storage? residual, EvalBatchNormRelu? activation)
    {
        // No pass: the compulsory traffic is then every tensor given once (ProfileModel) — x, w and what the epilogue reads
        // and writes, which the plain forward's count (x, w, y) would miss.
        Storage[] storages = [x, w, .. new[] { y, residual, activation?.Output }.OfType<Storage>()];
        using var op = new OpScope(this, nameof(Conv2dForwardFused), problem, null, 2.0 * problem.Macs, Bytes(storages));
        inner.Conv2dForwardFused(problem, x, w, y, residual, activation);
    }

    public void Conv2dForwardBatchNormTrain(ConvProblem problem, Storage x, Storage w, Storage y, Storage? residual, TrainBatchNorm bn)
    {
        // No pass, as Conv2dForwardFused: the op's storages are the first launch's compulsory traffic, so only the
        // convolution's (x, w, y and the residual). The batch norm's launch after it is charged its own DRAM bytes, as the
        // unfused batch norm's is: counting its tensors here too would charge them twice and inflate the roofline.
        Storage[] storages = [x, w, y, .. new[] { residual }.OfType<Storage>()];
        using var op = new OpScope(this, nameof(Conv2dForwardBatchNormTrain), problem, null, 2.0 * problem.Macs, Bytes(storages));
        inner.Conv2dForwardBatchNormTrain(problem, x, w, y, residual, bn);
    }

    public bool SupportsInputBatchNorm(ConvProblem problem) => inner.SupportsInputBatchNorm(problem);

    public void BatchNormTrainStatistics(int n, int c, int h, int w, Storage x, BatchNormStatistics statistics)
    {
        using var op = Begin(nameof(BatchNormTrainStatistics), x, statistics.RunningMean, statistics.RunningVar, statistics.SaveMean,
            statistics.SaveInvStd);
        inner.BatchNormTrainStatistics(n, c, h, w, x, statistics);
    }

    public void Conv2dForwardBatchNormStatistics(ConvProblem problem, Storage x, Storage w, Storage y, BatchNormStatistics statistics)
    {
        // As Conv2dForwardBatchNormTrain: the convolution's tensors are the first launch's compulsory traffic; the statistics
        // launch after it is charged its own.
        using var op = new OpScope(this, nameof(Conv2dForwardBatchNormStatistics), problem, null, 2.0 * problem.Macs, Bytes([x, w, y]));
        inner.Conv2dForwardBatchNormStatistics(problem, x, w, y, statistics);
    }

    public void Conv2dForwardInputBatchNorm(ConvProblem problem, InputBatchNorm bn, Storage z, Storage w, Storage y, Storage? residual,
        TrainBatchNorm? next)
    {
        // The convolution's launch reads z (not a stored activation), w, the batch norm's four arrays and the residual, and
        // writes y; a next batch norm's launch is charged its own bytes.
        Storage[] storages = [z, w, y, bn.Mean, bn.InvStd, bn.Gamma, bn.Beta, .. new[] { residual }.OfType<Storage>()];
        using var op = new OpScope(this, nameof(Conv2dForwardInputBatchNorm), problem, null, 2.0 * problem.Macs, Bytes(storages));
        inner.Conv2dForwardInputBatchNorm(problem, bn, z, w, y, residual, next);
    }

    public void Conv2dBackwardInputBatchNorm(ConvProblem problem, InputBatchNorm bn, Storage z, Storage dy, Storage w, Storage? da, Storage? dz,
        bool accumulateDz, Storage? dgamma, Storage? dbeta, Storage? dw)
    {
        // The first launch (the convolution's gradients) reads z, dy, w and the batch norm's arrays and writes da and dw (those
        // given); the batch norm's backward launch after it is charged its own bytes. FLOPs: the convolution's gradients computed.
        Storage[] storages = [z, dy, w, bn.Mean, bn.InvStd, bn.Gamma, bn.Beta, .. new[] { da, dw }.OfType<Storage>()];
        var passes = (da is null ? 0 : 1) + (dw is null ? 0 : 1);
        using var op = new OpScope(this, nameof(Conv2dBackwardInputBatchNorm), problem, null, passes * 2.0 * problem.Macs, Bytes(storages));
        inner.Conv2dBackwardInputBatchNorm(problem, bn, z, dy, w, da, dz, accumulateDz, dgamma, dbeta, dw);
    }

    public void PointwiseForward(ConvProblem problem, Storage x, Storage w, Storage y)
    {
        using var op = BeginConv(nameof(PointwiseForward), problem, "forward", x, w, y);
        inner.PointwiseForward(problem, x, w, y);
    }

    public void PointwiseBackwardData(ConvProblem problem, Storage dy, Storage w, Storage dx)
    {
        using var op = BeginConv(nameof(PointwiseBackwardData), problem, "backward_data", dy, w, dx);
        inner.PointwiseBackwardData(problem, dy, w, dx);
    }

    public void PointwiseBackwardWeight(ConvProblem problem, Storage x, Storage dy, Storage dw)
    {
        using var op = BeginConv(nameof(PointwiseBackwardWeight), problem, "backward_weight", x, dy, dw);
        inner.PointwiseBackwardWeight(problem, x, dy, dw);
    }

    public void LinearForward(int n, int inFeatures, int outFeatures, Storage x, Storage w, Storage b, Storage y)
    {
        using var op = Begin(nameof(LinearForward), 2.0 * n * inFeatures * outFeatures, x, w, b, y);
        inner.LinearForward(n, inFeatures, outFeatures, x, w, b, y);
    }

    public void LinearBackwardData(int n, int inFeatures, int outFeatures, Storage dy, Storage w, Storage dx)
    {
        using var op = Begin(nameof(LinearBackwardData), 2.0 * n * inFeatures * outFeatures, dy, w, dx);
        inner.LinearBackwardData(n, inFeatures, outFeatures, dy, w, dx);
    }

    public void LinearBackwardWeight(int n, int inFeatures, int outFeatures, Storage x, Storage dy, Storage dw)
    {
        using var op = Begin(nameof(LinearBackwardWeight), 2.0 * n * inFeatures * outFeatures, x, dy, dw);
        inner.LinearBackwardWeight(n, inFeatures, outFeatures, x, dy, dw);
    }

    public void LinearBackwardBias(int n, int outFeatures, Storage dy, Storage db)
    {
        using var op = Begin(nameof(LinearBackwardBias), dy, db);
        inner.LinearBackwardBias(n, outFeatures, dy, db);
    }

    public void CrossEntropyForward(int n, int classes, Storage logits, ReadOnlySpan<int> labels, Storage loss, Storage probabilities)
    {
        using var op = Begin(nameof(CrossEntropyForward), logits, loss, probabilities);
        inner.CrossEntropyForward(n, classes, logits, labels, loss, probabilities);
    }

    public void CrossEntropyBackward(int n, int classes, Storage probabilities, ReadOnlySpan<int> labels, Storage dloss, Storage dlogits)
    {
        using var op = Begin(nameof(CrossEntropyBackward), probabilities, dloss, dlogits);
        inner.CrossEntropyBackward(n, classes, probabilities, labels, dloss, dlogits);
    }

    public void KdForward(int n, int classes, float temperature, Storage student, Storage teacher, Storage loss, Storage studentSoft, Storage teacherSoft)
    {
        using var op = Begin(nameof(KdForward), student, teacher, loss, studentSoft, teacherSoft);
        inner.KdForward(n, classes, temperature, student, teacher, loss, studentSoft, teacherSoft);
    }

    public void KdBackward(int n, int classes, float temperature, Storage studentSoft, Storage teacherSoft, Storage dloss, Storage dstudent)
    {
        using var op = Begin(nameof(KdBackward), studentSoft, teacherSoft, dloss, dstudent);
        inner.KdBackward(n, classes, temperature, studentSoft, teacherSoft, dloss, dstudent);
    }

    public void AtForward(int n, int c, int h, int w, Storage student, Storage teacher, Storage loss, Storage studentMap, Storage teacherMap, Storage studentNorm)
    {
        using var op = Begin(nameof(AtForward), student, teacher, loss, studentMap, teacherMap, studentNorm);
        inner.AtForward(n, c, h, w, student, teacher, loss, studentMap, teacherMap, studentNorm);
    }

    public void AtBackward(int n, int c, int h, int w, Storage student, Storage studentMap, Storage teacherMap, Storage studentNorm, Storage dloss, Storage dstudent)
    {
        using var op = Begin(nameof(AtBackward), student, studentMap, teacherMap, studentNorm, dloss, dstudent);
        inner.AtBackward(n, c, h, w, student, studentMap, teacherMap, studentNorm, dloss, dstudent);
    }

    public void SgdStep(long length, Storage parameter, Storage gradient, Storage momentumBuffer, float learningRate, float momentum, float weightDecay, bool nesterov)
    {
        using var op = Begin(nameof(SgdStep), parameter, gradient, momentumBuffer);
        inner.SgdStep(length, parameter, gradient, momentumBuffer, learningRate, momentum, weightDecay, nesterov);
    }

    public int CountCorrect(int n, int classes, Storage logits, ReadOnlySpan<int> labels)
    {
        using var op = Begin(nameof(CountCorrect), logits);
        return inner.CountCorrect(n, classes, logits, labels);
    }

    public void BatchNormTrainForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean, Storage runningVar,
        float momentum, float eps, Storage y, Storage saveMean, Storage saveInvStd)
    {
        using var op = Begin(nameof(BatchNormTrainForward), x, gamma, beta, runningMean, runningVar, y, saveMean, saveInvStd);
        inner.BatchNormTrainForward(n, c, h, w, x, gamma, beta, runningMean, runningVar, momentum, eps, y, saveMean, saveInvStd);
    }

    public void BatchNormEvalForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean, Storage runningVar,
        float eps, Storage y)
    {
        using var op = Begin(nameof(BatchNormEvalForward), x, gamma, beta, runningMean, runningVar, y);
        inner.BatchNormEvalForward(n, c, h, w, x, gamma, beta, runningMean, runningVar, eps, y);
    }

    public void BatchNormBackward(int n, int c, int h, int w, Storage x, Storage dy, Storage gamma, Storage saveMean, Storage saveInvStd,
        Storage dx, Storage dgamma, Storage dbeta, bool accumulateDx = false)
    {
        using var op = Begin(nameof(BatchNormBackward), x, dy, gamma, saveMean, saveInvStd, dx, dgamma, dbeta);
        inner.BatchNormBackward(n, c, h, w, x, dy, gamma, saveMean, saveInvStd, dx, dgamma, dbeta, accumulateDx);
    }

    public void BatchNormReluTrainForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean, Storage runningVar,
        float momentum, float eps, Storage y, Storage saveMean, Storage saveInvStd)
    {
        using var op = Begin(nameof(BatchNormReluTrainForward), x, gamma, beta, runningMean, runningVar, y, saveMean, saveInvStd);
        inner.BatchNormReluTrainForward(n, c, h, w, x, gamma, beta, runningMean, runningVar, momentum, eps, y, saveMean, saveInvStd);
    }

    public void BatchNormReluEvalForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean, Storage runningVar,
        float eps, Storage y)
    {
        using var op = Begin(nameof(BatchNormReluEvalForward), x, gamma, beta, runningMean, runningVar, y);
        inner.BatchNormReluEvalForward(n, c, h, w, x, gamma, beta, runningMean, runningVar, eps, y);
    }

    public void BatchNormReluBackward(int n, int c, int h, int w, Storage x, Storage dy, Storage gamma, Storage beta, Storage saveMean,
        Storage saveInvStd, Storage dx, Storage dgamma, Storage dbeta, bool accumulateDx = false)
    {
        using var op = Begin(nameof(BatchNormReluBackward), x, dy, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta);
        inner.BatchNormReluBackward(n, c, h, w, x, dy, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta, accumulateDx);
    }

    public void ReluForward(long length, Storage x, Storage y)
    {
        using var op = Begin(nameof(ReluForward), x, y);
        inner.ReluForward(length, x, y);
    }

    public void ReluBackward(long length, Storage y, Storage dy, Storage dx)
    {
        using var op = Begin(nameof(ReluBackward), y, dy, dx);
        inner.ReluBackward(length, y, dy, dx);
    }

    public void Add(long length, Storage a, Storage b, Storage y)
    {
        using var op = Begin(nameof(Add), a, b, y);
        inner.Add(length, a, b, y);
    }

    public void GlobalAvgPoolForward(int n, int c, int h, int w, Storage x, Storage y)
    {
        using var op = Begin(nameof(GlobalAvgPoolForward), x, y);
        inner.GlobalAvgPoolForward(n, c, h, w, x, y);
    }

    public void GlobalAvgPoolBackward(int n, int c, int h, int w, Storage dy, Storage dx)
    {
        using var op = Begin(nameof(GlobalAvgPoolBackward), dy, dx);
        inner.GlobalAvgPoolBackward(n, c, h, w, dy, dx);
    }

    public void ZeroPadForward(int n, int c, int h, int w, int top, int bottom, int left, int right, Storage x, Storage y)
    {
        using var op = Begin(nameof(ZeroPadForward), x, y);
        inner.ZeroPadForward(n, c, h, w, top, bottom, left, right, x, y);
    }

    public void ZeroPadBackward(int n, int c, int h, int w, int top, int bottom, int left, int right, Storage dy, Storage dx)
    {
        using var op = Begin(nameof(ZeroPadBackward), dy, dx);
        inner.ZeroPadBackward(n, c, h, w, top, bottom, left, right, dy, dx);
    }

    public void Fill(Storage x, float value)
    {
        using var op = Begin(nameof(Fill), x);
        inner.Fill(x, value);
    }

    public void Scale(Storage x, float alpha)
    {
        using var op = Begin(nameof(Scale), x);
        inner.Scale(x, alpha);
    }

    public void Axpy(float alpha, Storage x, Storage y)
    {
        using var op = Begin(nameof(Axpy), x, y);
        inner.Axpy(alpha, x, y);
    }

    public void Sum(Storage x, Storage result)
    {
        using var op = Begin(nameof(Sum), x, result);
        inner.Sum(x, result);
    }

    private OpScope BeginConv(string name, ConvProblem problem, string pass, params ReadOnlySpan<Storage> storages) =>
        new(this, name, problem, pass, 2.0 * problem.Macs, Bytes(storages));

    public void CopyFromHost(ReadOnlySpan<float> source, Storage destination)
    {
        using var op = Begin(nameof(CopyFromHost), destination);
        inner.CopyFromHost(source, destination);
    }

    public void CopyElements(Storage source, long sourceOffset, Storage destination, long destinationOffset, long count)
    {
        using var op = Begin(nameof(CopyElements), source, destination);
        inner.CopyElements(source, sourceOffset, destination, destinationOffset, count);
    }

    public StorageList CreateList(IReadOnlyList<Storage> storages) => inner.CreateList(storages);

    public StorageArena? AllocateArena(IReadOnlyList<long> lengths) => inner.AllocateArena(lengths);

    public StorageReadback CreateReadback(Storage source) => inner.CreateReadback(source);

    public void FirstNonFinite(StorageList list, Storage result, long resultOffset)
    {
        using var op = Begin(nameof(FirstNonFinite), [.. list.Storages, result]);
        inner.FirstNonFinite(list, result, resultOffset);
    }

    public void CountCorrect(int n, int classes, Storage logits, ReadOnlySpan<int> labels, Storage result, long resultOffset)
    {
        using var op = Begin(nameof(CountCorrect), logits, result);
        inner.CountCorrect(n, classes, logits, labels, result, resultOffset);
    }

    private OpScope Begin(string name, params ReadOnlySpan<Storage> storages) => new(this, name, null, null, 0, Bytes(storages));

    private OpScope Begin(string name, double flops, params ReadOnlySpan<Storage> storages) => new(this, name, null, null, flops, Bytes(storages));

    private static long Bytes(ReadOnlySpan<Storage> storages)
    {
        long bytes = 0;
        foreach (var storage in storages)
        {
            bytes += storage.Length * sizeof(float);
        }

        return bytes;
    }

    // Records the op when disposed, with the launches made since it began. An op that ran another op of this backend
    // inside would be recorded twice; none does (ops are leaves of the backend).
    private readonly struct OpScope(RecordingBackend owner, string name, ConvProblem? problem, string? pass, double flops, long storageBytes) : IDisposable
    {
        private readonly int _first = owner._launches();
        private readonly long _start = owner._clock?.Invoke() ?? 0;

        public void Dispose() =>
            owner._ops.Add(new RecordedOp(name, problem, pass, flops, storageBytes, _first, owner._launches() - _first,
                (owner._clock?.Invoke() ?? 0) - _start));
    }
}
