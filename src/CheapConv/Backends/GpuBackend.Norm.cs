using CheapConv.Devices;
using CheapConv.Kernels;

namespace CheapConv.Backends;

// The Norm family on a device: native/kernels/batchnorm.cu, elementwise.cu and pooling.cu. Sizes are checked
// with the reference's checks (CpuBackend.Norm.cs), so both backends refuse the same calls with the same words.
public sealed unsafe partial class GpuBackend
{
    /// <summary>Threads per block of the per-channel reductions (batch-norm statistics and backward) and of Sum.</summary>
    public const int ReductionBlock = 256;

    /// <summary>Most blocks of Sum's first stage; the second stage adds at most this many partial sums in one block.</summary>
    public const int SumMaxBlocks = 256;

    // Sum's partial sums, allocated on first use and reused: launches on the stream are ordered, so the next
    // Sum cannot overwrite them before the previous second stage has read them. SumMaxBlocks floats (1 KB)
    // that live until the backend is disposed (GpuBackend.Dispose).
    private DeviceBuffer<float>? _sumPartials;

    /// <summary>One block of <see cref="ReductionBlock"/> threads per channel.</summary>
    public static LaunchConfig PerChannelConfig(int channels) => new(new Dim3(checked((uint)channels)), new Dim3(ReductionBlock));

    /// <summary>Blocks of Sum's first stage: one per <see cref="ReductionBlock"/> elements, at least 1, at most <see cref="SumMaxBlocks"/>. Depends on the length only, so the order of additions does too.</summary>
    public static int SumBlocks(int length) => Math.Clamp((length + ReductionBlock - 1) / ReductionBlock, 1, SumMaxBlocks);

    /// <summary>One warp per (n, c) plane for the global average pool.</summary>
    public static LaunchConfig GlobalAvgPoolForwardConfig(int planes)
    {
        const int warpsPerBlock = ReductionBlock / 32;
        return new LaunchConfig(new Dim3(checked((uint)((planes + warpsPerBlock - 1) / warpsPerBlock))), new Dim3(ReductionBlock));
    }

    void IBackend.BatchNormTrainForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float momentum, float eps, Storage y, Storage saveMean, Storage saveInvStd) =>
        BatchNormTrain(n, c, h, w, x, gamma, beta, runningMean, runningVar, momentum, eps, y, saveMean, saveInvStd, relu: false);

    void IBackend.BatchNormReluTrainForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float momentum, float eps, Storage y, Storage saveMean, Storage saveInvStd) =>
        BatchNormTrain(n, c, h, w, x, gamma, beta, runningMean, runningVar, momentum, eps, y, saveMean, saveInvStd, relu: true);

    void IBackend.BatchNormEvalForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float eps, Storage y) =>
        BatchNormEval(n, c, h, w, x, gamma, beta, runningMean, runningVar, eps, y, relu: false);

    void IBackend.BatchNormReluEvalForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float eps, Storage y) =>
        BatchNormEval(n, c, h, w, x, gamma, beta, runningMean, runningVar, eps, y, relu: true);

    void IBackend.BatchNormBackward(int n, int c, int h, int w, Storage x, Storage dy, Storage gamma, Storage saveMean,
        Storage saveInvStd, Storage dx, Storage dgamma, Storage dbeta) =>
        BatchNormBackward(n, c, h, w, x, dy, gamma, beta: null, saveMean, saveInvStd, dx, dgamma, dbeta);

    void IBackend.BatchNormReluBackward(int n, int c, int h, int w, Storage x, Storage dy, Storage gamma, Storage beta,
        Storage saveMean, Storage saveInvStd, Storage dx, Storage dgamma, Storage dbeta) =>
        BatchNormBackward(n, c, h, w, x, dy, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta);

    void IBackend.ReluForward(long length, Storage x, Storage y)
    {
        var count = CpuBackend.CheckNormElementCount(length, ("x", x.Length), ("y", y.Length));
        LaunchFlat(KernelNames.ReluForward, count, Buffer(x).Pointer, Buffer(y).Pointer);
    }

    void IBackend.ReluBackward(long length, Storage y, Storage dy, Storage dx)
    {
        var count = CpuBackend.CheckNormElementCount(length, ("y", y.Length), ("dy", dy.Length), ("dx", dx.Length));
        LaunchFlat(KernelNames.ReluBackward, count, Buffer(y).Pointer, Buffer(dy).Pointer, Buffer(dx).Pointer);
    }

    void IBackend.Add(long length, Storage a, Storage b, Storage y)
    {
        var count = CpuBackend.CheckNormElementCount(length, ("a", a.Length), ("b", b.Length), ("y", y.Length));
        LaunchFlat(KernelNames.Add, count, Buffer(a).Pointer, Buffer(b).Pointer, Buffer(y).Pointer);
    }

    void IBackend.GlobalAvgPoolForward(int n, int c, int h, int w, Storage x, Storage y)
    {
        var elements = CpuBackend.CheckNormShape(n, c, h, w);
        CpuBackend.CheckNormLengths(("x", x.Length, elements), ("y", y.Length, (long)n * c));
        var args = new KernelArguments();
        args.Add(n * c);
        args.Add(h * w);
        args.Add(Buffer(x).Pointer);
        args.Add(Buffer(y).Pointer);
        args.Launch(Device, KernelNames.GlobalAvgPoolForward, GlobalAvgPoolForwardConfig(n * c), Shape(n, c, h, w));
    }

    void IBackend.GlobalAvgPoolBackward(int n, int c, int h, int w, Storage dy, Storage dx)
    {
        var elements = CpuBackend.CheckNormShape(n, c, h, w);
        CpuBackend.CheckNormLengths(("dy", dy.Length, (long)n * c), ("dx", dx.Length, elements));
        var args = new KernelArguments();
        args.Add(n * c);
        args.Add(h * w);
        args.Add(Buffer(dy).Pointer);
        args.Add(Buffer(dx).Pointer);
        args.Launch(Device, KernelNames.GlobalAvgPoolBackward, Elementwise(elements), Shape(n, c, h, w));
    }

    void IBackend.ZeroPadForward(int n, int c, int h, int w, int top, int bottom, int left, int right, Storage x, Storage y)
    {
        var (input, output) = CpuBackend.CheckPadding(n, c, h, w, top, bottom, left, right);
        CpuBackend.CheckNormLengths(("x", x.Length, input), ("y", y.Length, output));
        LaunchPadding(KernelNames.ZeroPadForward, output, n, c, h, w, top, bottom, left, right, Buffer(x).Pointer, Buffer(y).Pointer);
    }

    void IBackend.ZeroPadBackward(int n, int c, int h, int w, int top, int bottom, int left, int right, Storage dy, Storage dx)
    {
        var (input, output) = CpuBackend.CheckPadding(n, c, h, w, top, bottom, left, right);
        CpuBackend.CheckNormLengths(("dy", dy.Length, output), ("dx", dx.Length, input));
        LaunchPadding(KernelNames.ZeroPadBackward, input, n, c, h, w, top, bottom, left, right, Buffer(dy).Pointer, Buffer(dx).Pointer);
    }

    void IBackend.Fill(Storage x, float value) => LaunchInPlace(KernelNames.Fill, value, x);

    void IBackend.Scale(Storage x, float alpha) => LaunchInPlace(KernelNames.Scale, alpha, x);

    // Fill and Scale: (count, scalar, x) over every element of x, in place.
    private void LaunchInPlace(string kernel, float scalar, Storage x)
    {
        var count = CpuBackend.CheckNormElementCount(x.Length);
        if (count == 0)
        {
            return;
        }

        var args = new KernelArguments();
        args.Add(count);
        args.Add(scalar);
        args.Add(Buffer(x).Pointer);
        args.Launch(Device, kernel, Elementwise(count), $"{count} elements");
    }

    void IBackend.Axpy(float alpha, Storage x, Storage y)
    {
        CpuBackend.CheckNormLengths(("y", y.Length, x.Length));
        var count = CpuBackend.CheckNormElementCount(x.Length);
        if (count == 0)
        {
            return;
        }

        var args = new KernelArguments();
        args.Add(count);
        args.Add(alpha);
        args.Add(Buffer(x).Pointer);
        args.Add(Buffer(y).Pointer);
        args.Launch(Device, KernelNames.Axpy, Elementwise(count), $"{count} elements");
    }

    void IBackend.Sum(Storage x, Storage result)
    {
        CpuBackend.CheckNormLengths(("result", result.Length, 1));
        var count = CpuBackend.CheckNormElementCount(x.Length);
        var blocks = SumBlocks(count);
        _sumPartials ??= Device.Allocate<float>(SumMaxBlocks);
        var description = $"{count} elements";

        var partials = new KernelArguments();
        partials.Add(count);
        partials.Add(Buffer(x).Pointer);
        partials.Add(_sumPartials.Pointer);
        partials.Launch(Device, KernelNames.SumPartials, new LaunchConfig(new Dim3((uint)blocks), new Dim3(ReductionBlock)), description);

        var final = new KernelArguments();
        final.Add(blocks);
        final.Add(_sumPartials.Pointer);
        final.Add(Buffer(result).Pointer);
        final.Launch(Device, KernelNames.SumFinal, new LaunchConfig(new Dim3(1), new Dim3(ReductionBlock)), description);
    }

    private void BatchNormTrain(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float momentum, float eps, Storage y, Storage saveMean, Storage saveInvStd, bool relu)
    {
        CpuBackend.CheckBatchNormTraining(n, c, h, w, x.Length, y.Length, gamma.Length, beta.Length, runningMean.Length,
            runningVar.Length, saveMean.Length, saveInvStd.Length);
        var shape = Shape(n, c, h, w);

        var stats = new KernelArguments();
        stats.Add(n);
        stats.Add(c);
        stats.Add(h * w);
        stats.Add(Buffer(x).Pointer);
        stats.Add(momentum);
        stats.Add(eps);
        stats.Add(Buffer(runningMean).Pointer);
        stats.Add(Buffer(runningVar).Pointer);
        stats.Add(Buffer(saveMean).Pointer);
        stats.Add(Buffer(saveInvStd).Pointer);
        stats.Launch(Device, KernelNames.BatchNormTrainStats, PerChannelConfig(c), shape);

        var apply = new KernelArguments();
        apply.Add(n);
        apply.Add(c);
        apply.Add(h * w);
        apply.Add(Buffer(x).Pointer);
        apply.Add(Buffer(gamma).Pointer);
        apply.Add(Buffer(beta).Pointer);
        apply.Add(Buffer(saveMean).Pointer);
        apply.Add(Buffer(saveInvStd).Pointer);
        apply.Add(relu ? 1 : 0);
        apply.Add(Buffer(y).Pointer);
        apply.Launch(Device, KernelNames.BatchNormApply, Elementwise(x.Length), shape);
    }

    private void BatchNormEval(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float eps, Storage y, bool relu)
    {
        var elements = CpuBackend.CheckNormShape(n, c, h, w);
        CpuBackend.CheckNormLengths(("x", x.Length, elements), ("y", y.Length, elements), ("gamma", gamma.Length, c),
            ("beta", beta.Length, c), ("runningMean", runningMean.Length, c), ("runningVar", runningVar.Length, c));
        var args = new KernelArguments();
        args.Add(n);
        args.Add(c);
        args.Add(h * w);
        args.Add(Buffer(x).Pointer);
        args.Add(Buffer(gamma).Pointer);
        args.Add(Buffer(beta).Pointer);
        args.Add(Buffer(runningMean).Pointer);
        args.Add(Buffer(runningVar).Pointer);
        args.Add(eps);
        args.Add(relu ? 1 : 0);
        args.Add(Buffer(y).Pointer);
        args.Launch(Device, KernelNames.BatchNormEvalForward, Elementwise(elements), Shape(n, c, h, w));
    }

    // beta == null: plain batch norm. The kernels take β either way; the plain case passes γ in its place,
    // which they never read because relu is 0.
    private void BatchNormBackward(int n, int c, int h, int w, Storage x, Storage dy, Storage gamma, Storage? beta,
        Storage saveMean, Storage saveInvStd, Storage dx, Storage dgamma, Storage dbeta)
    {
        var elements = CpuBackend.CheckNormShape(n, c, h, w);
        CpuBackend.CheckNormLengths(("x", x.Length, elements), ("dy", dy.Length, elements), ("dx", dx.Length, elements),
            ("gamma", gamma.Length, c), ("beta", beta?.Length ?? c, c), ("saveMean", saveMean.Length, c),
            ("saveInvStd", saveInvStd.Length, c), ("dgamma", dgamma.Length, c), ("dbeta", dbeta.Length, c));
        var shape = Shape(n, c, h, w);
        var relu = beta is null ? 0 : 1;
        var betaPointer = Buffer(beta ?? gamma).Pointer;

        var reduce = new KernelArguments();
        reduce.Add(n);
        reduce.Add(c);
        reduce.Add(h * w);
        reduce.Add(Buffer(x).Pointer);
        reduce.Add(Buffer(dy).Pointer);
        reduce.Add(Buffer(gamma).Pointer);
        reduce.Add(betaPointer);
        reduce.Add(Buffer(saveMean).Pointer);
        reduce.Add(Buffer(saveInvStd).Pointer);
        reduce.Add(relu);
        reduce.Add(Buffer(dgamma).Pointer);
        reduce.Add(Buffer(dbeta).Pointer);
        reduce.Launch(Device, KernelNames.BatchNormBackwardReduce, PerChannelConfig(c), shape);

        var data = new KernelArguments();
        data.Add(n);
        data.Add(c);
        data.Add(h * w);
        data.Add(Buffer(x).Pointer);
        data.Add(Buffer(dy).Pointer);
        data.Add(Buffer(gamma).Pointer);
        data.Add(betaPointer);
        data.Add(Buffer(saveMean).Pointer);
        data.Add(Buffer(saveInvStd).Pointer);
        data.Add(Buffer(dgamma).Pointer);
        data.Add(Buffer(dbeta).Pointer);
        data.Add(relu);
        data.Add(Buffer(dx).Pointer);
        data.Launch(Device, KernelNames.BatchNormBackwardData, Elementwise(elements), shape);
    }

    // The flat kernels share (int length, pointer...). A zero length launches nothing (a zero grid is an error).
    private void LaunchFlat(string kernel, int count, params ReadOnlySpan<nint> pointers)
    {
        if (count == 0)
        {
            return;
        }

        var args = new KernelArguments();
        args.Add(count);
        foreach (var pointer in pointers)
        {
            args.Add(pointer);
        }

        args.Launch(Device, kernel, Elementwise(count), $"{count} elements");
    }

    private void LaunchPadding(string kernel, int threads, int n, int c, int h, int w, int top, int bottom, int left, int right,
        nint source, nint destination)
    {
        var args = new KernelArguments();
        args.Add(n * c);
        args.Add(h);
        args.Add(w);
        args.Add(top);
        args.Add(bottom);
        args.Add(left);
        args.Add(right);
        args.Add(source);
        args.Add(destination);
        args.Launch(Device, kernel, Elementwise(threads), $"{n}×{c}×{h}×{w} padded {top},{bottom},{left},{right}");
    }

    private static string Shape(int n, int c, int h, int w) => $"{n}×{c}×{h}×{w}";
}
