using CheapConv.Interop;
using CheapConv.Problems;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace CheapConv.Ilgpu;

/// <summary>
/// CheapConv's kernels on an ILGPU accelerator's memory and streams: every op of the C ABI
/// (native/include/cheapconv.h) taking <see cref="ArrayView{T}"/>s (sub-views included) and an optional
/// <see cref="AcceleratorStream"/> (the accelerator's default stream when null).
/// <code>
/// using var context = Context.Create(builder => builder.CPU().Cuda());
/// using var accelerator = context.GetPreferredDevice(preferCPU: false).CreateAccelerator(context);
/// using var cheapConv = CheapConvIlgpu.Create(accelerator);
/// cheapConv.ConvForward(ConvProblem.Create(8, 32, 16, 16, 32, 3, 3, pad: 1, groups: 32), x.View, w.View, y.View);
/// </code>
/// </summary>
/// <remarks>
/// <para>
/// A <see cref="CudaAccelerator"/> runs the kernels with libcheapconv.so, bound to the accelerator's own CUDA context
/// (<see cref="Create"/> makes it current and binds with CC_CURRENT_CONTEXT; the accelerator keeps it alive), on the
/// native CUstream of the stream given: they are ordered with the ILGPU kernels and copies on that stream, and
/// nothing waits for the host.
/// </para>
/// <para>
/// A <see cref="CPUAccelerator"/> runs them in the CUDA emulator (libcheapconv_emu.so) on the views' host addresses.
/// Each call first waits for the stream (ILGPU work queued on it may still be writing the inputs) and has finished
/// when it returns. For correctness, never for timing.
/// </para>
/// <para>
/// Not thread-safe: the workspace is reused from call to call. Use one instance per thread, as one stream per thread.
/// </para>
/// </remarks>
public sealed class CheapConvIlgpu : IDisposable
{
    // Its first CheapConvNative.SplitCounterBytes are the split weight gradients' arrival counters: zeroed when allocated,
    // left zero by the calls that use them (SplitWorkspace), never given to scratch-only calls (Workspace).
    private MemoryBuffer1D<byte, Stride1D.Dense>? _workspace;

    private CheapConvIlgpu(Accelerator accelerator, CheapConvNative native, CheapConvHandle handle)
    {
        Accelerator = accelerator;
        Native = native;
        Handle = handle;
    }

    /// <summary>
    /// Binds the library of <paramref name="accelerator"/>'s kind to it: the emulator library for a
    /// <see cref="CPUAccelerator"/>, libcheapconv.so on the accelerator's context for a <see cref="CudaAccelerator"/>.
    /// <paramref name="libraryPath"/> overrides where the library is loaded from (see <see cref="CheapConvNative.Load"/>).
    /// </summary>
    public static CheapConvIlgpu Create(Accelerator accelerator, string? libraryPath = null)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        switch (accelerator)
        {
            case CPUAccelerator:
            {
                var native = CheapConvNative.Load(CheapConvBackend.Emulator, libraryPath);
                return new CheapConvIlgpu(accelerator, native, native.Create(0));
            }

            case CudaAccelerator:
            {
                var native = CheapConvNative.Load(CheapConvBackend.Cuda, libraryPath);
                accelerator.Bind();
                return new CheapConvIlgpu(accelerator, native, native.Create(CheapConvNative.CurrentContext));
            }

            default:
                throw new NotSupportedException(
                    $"{accelerator.AcceleratorType} accelerators are not supported: CheapConv's kernels run on CUDA accelerators, or in its emulator for CPU accelerators");
        }
    }

    public Accelerator Accelerator { get; }

    /// <summary>The library the kernels run in.</summary>
    public CheapConvNative Native { get; }

    /// <summary>The library's handle, bound to the accelerator.</summary>
    public CheapConvHandle Handle { get; }

    /// <summary>cc_describe: the GPU and which binary its kernels are, or the emulator's worker threads.</summary>
    public string Description => Native.Describe(Handle);

    /// <summary>Bytes of the workspace kept between calls.</summary>
    public long WorkspaceBytes => _workspace?.Length ?? 0;

    /// <summary>Frees the workspace and destroys the handle; the accelerator and the caller's memory stay.</summary>
    public void Dispose()
    {
        _workspace?.Dispose();
        _workspace = null;
        Handle.Dispose();
    }

    // ----- convolution -----

    /// <summary>y = conv(x, w).</summary>
    public void ConvForward(ConvProblem problem, ArrayView<float> x, ArrayView<float> w, ArrayView<float> y,
        KernelOptions options = default, AcceleratorStream? stream = null) =>
        Conv(ConvPass.Forward, problem, x, w, y, options, stream);

    /// <summary>dx = ∂L/∂x given dy.</summary>
    public void ConvBackwardData(ConvProblem problem, ArrayView<float> dy, ArrayView<float> w, ArrayView<float> dx,
        KernelOptions options = default, AcceleratorStream? stream = null) =>
        Conv(ConvPass.BackwardData, problem, dy, w, dx, options, stream);

    /// <summary>dw = ∂L/∂w given x and dy (overwritten).</summary>
    public void ConvBackwardWeight(ConvProblem problem, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dw,
        KernelOptions options = default, AcceleratorStream? stream = null) =>
        Conv(ConvPass.BackwardWeight, problem, x, dy, dw, options, stream);

    /// <summary>
    /// y = conv(x, w) + <paramref name="residual"/> (when given), and relu(eval batch norm(that)) into
    /// <paramref name="batchNorm"/>'s output (when given): in the convolution's store where the library's tensor-core kernels
    /// run the problem, else by the separate calls inside the library (cc_conv_forward_fused). <paramref name="y"/> may be
    /// null when <paramref name="batchNorm"/> is given (only the activation is written).
    /// </summary>
    public void ConvForwardFused(ConvProblem problem, ArrayView<float> x, ArrayView<float> w, ArrayView<float>? y,
        ArrayView<float>? residual = null, EvalBatchNormReluViews? batchNorm = null, KernelOptions options = default, AcceleratorStream? stream = null)
    {
        Native.ConvValidate(problem);
        if (y is null && batchNorm is null)
        {
            throw new ArgumentException("ConvForwardFused: neither y nor a batch norm output: nothing to write", nameof(y));
        }

        long outputs = problem.OutputElements, channels = problem.K;
        var epilogue = batchNorm is { } bn
            ? new ConvEpilogue(Optional(residual, outputs, "residual"), Address(bn.Gamma, channels, "gamma"), Address(bn.Beta, channels, "beta"),
                Address(bn.RunningMean, channels, "running mean"), Address(bn.RunningVar, channels, "running var"),
                Address(bn.Output, outputs, "batch norm output"), bn.Eps)
            : new ConvEpilogue(Optional(residual, outputs, "residual"), 0, 0, 0, 0, 0, 0f);
        nint xAddress = Address(x, problem.InputElements, "x"), wAddress = Address(w, problem.WeightElements, "w"),
            yAddress = Optional(y, outputs, "y");
        var (s, handle) = Begin(stream);
        var (workspace, bytes) = SplitWorkspace(Native.ConvWorkspaceSize(problem, ConvPass.Forward, options), s);
        Native.ConvForwardFused(handle, problem, options, epilogue, xAddress, wAddress, yAddress, workspace, bytes, StreamPointer(s));
    }

    /// <summary>
    /// dx (when given; added into with <see cref="KernelOptions.Accumulate"/>) and dw (when given) in one call
    /// (cc_conv_backward): one launch where the library's kernels for the two passes share a grid, else the two passes'
    /// launches; the same bits as <see cref="ConvBackwardData"/> and <see cref="ConvBackwardWeight"/>.
    /// </summary>
    public void ConvBackward(ConvProblem problem, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> w, ArrayView<float>? dx,
        ArrayView<float>? dw, KernelOptions options = default, AcceleratorStream? stream = null)
    {
        Native.ConvValidate(problem);
        if (dx is null && dw is null)
        {
            throw new ArgumentException("ConvBackward: neither dx nor dw: nothing to write", nameof(dx));
        }

        nint xAddress = Address(x, problem.InputElements, "x"), dyAddress = Address(dy, problem.OutputElements, "dy"),
            wAddress = Address(w, problem.WeightElements, "w"), dxAddress = Optional(dx, problem.InputElements, "dx"),
            dwAddress = Optional(dw, problem.WeightElements, "dw");
        var (s, handle) = Begin(stream);
        var (workspace, bytes) = SplitWorkspace(Native.ConvWorkspaceSize(problem, ConvPass.Backward, options), s);
        Native.ConvBackward(handle, problem, options, xAddress, dyAddress, wAddress, dxAddress, dwAddress, workspace, bytes, StreamPointer(s));
    }

    private void Conv(ConvPass pass, ConvProblem problem, ArrayView<float> first, ArrayView<float> second, ArrayView<float> output,
        KernelOptions options, AcceleratorStream? stream)
    {
        Native.ConvValidate(problem);
        var (firstName, secondName, outputName) = pass.Names();
        var (firstLength, secondLength, outputLength) = pass.Elements(problem);
        var (s, handle) = Begin(stream);
        var (workspace, bytes) = SplitWorkspace(Native.ConvWorkspaceSize(problem, pass, options), s);
        Native.Conv(pass, handle, problem, options, Address(first, firstLength, firstName), Address(second, secondLength, secondName),
            Address(output, outputLength, outputName), workspace, bytes, StreamPointer(s));
    }

    // ----- linear layer -----

    /// <summary>y = x·wᵀ + b.</summary>
    public void LinearForward(LinearProblem problem, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y,
        AcceleratorStream? stream = null)
    {
        Native.LinearValidate(problem);
        var (s, handle) = Begin(stream);
        Native.LinearForward(handle, problem, Address(x, (long)problem.N * problem.InFeatures, nameof(x)),
            Address(w, (long)problem.OutFeatures * problem.InFeatures, nameof(w)), Address(b, problem.OutFeatures, nameof(b)),
            Address(y, (long)problem.N * problem.OutFeatures, nameof(y)), StreamPointer(s));
    }

    /// <summary>dx = dy·w.</summary>
    public void LinearBackwardData(LinearProblem problem, ArrayView<float> dy, ArrayView<float> w, ArrayView<float> dx, AcceleratorStream? stream = null)
    {
        Native.LinearValidate(problem);
        var (s, handle) = Begin(stream);
        Native.LinearBackwardData(handle, problem, Address(dy, (long)problem.N * problem.OutFeatures, nameof(dy)),
            Address(w, (long)problem.OutFeatures * problem.InFeatures, nameof(w)), Address(dx, (long)problem.N * problem.InFeatures, nameof(dx)),
            StreamPointer(s));
    }

    /// <summary>dw = dyᵀ·x (overwritten).</summary>
    public void LinearBackwardWeight(LinearProblem problem, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dw,
        KernelOptions options = default, AcceleratorStream? stream = null)
    {
        Native.LinearValidate(problem);
        var (s, handle) = Begin(stream);
        var (workspace, bytes) = SplitWorkspace(Native.LinearWorkspaceSize(problem, options), s);
        Native.LinearBackwardWeight(handle, problem, options, Address(x, (long)problem.N * problem.InFeatures, nameof(x)),
            Address(dy, (long)problem.N * problem.OutFeatures, nameof(dy)), Address(dw, (long)problem.OutFeatures * problem.InFeatures, nameof(dw)),
            workspace, bytes, StreamPointer(s));
    }

    /// <summary>db = column sums of dy.</summary>
    public void LinearBackwardBias(LinearProblem problem, ArrayView<float> dy, ArrayView<float> db, AcceleratorStream? stream = null)
    {
        Native.LinearValidate(problem);
        var (s, handle) = Begin(stream);
        Native.LinearBackwardBias(handle, problem, Address(dy, (long)problem.N * problem.OutFeatures, nameof(dy)),
            Address(db, problem.OutFeatures, nameof(db)), StreamPointer(s));
    }

    // ----- batch normalisation -----

    /// <summary>Training mode: batch statistics into saveMean/saveInvStd, running statistics updated in place.</summary>
    public void BatchNormTrainForward(BatchNormProblem problem, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> runningMean, ArrayView<float> runningVar, ArrayView<float> y, ArrayView<float> saveMean, ArrayView<float> saveInvStd,
        AcceleratorStream? stream = null)
    {
        Native.BatchNormValidate(problem);
        var (s, handle) = Begin(stream);
        long elements = (long)problem.N * problem.C * problem.H * problem.W, c = problem.C;
        Native.BatchNormTrainForward(handle, problem, Address(x, elements, nameof(x)), Address(gamma, c, nameof(gamma)), Address(beta, c, nameof(beta)),
            Address(runningMean, c, nameof(runningMean)), Address(runningVar, c, nameof(runningVar)), Address(y, elements, nameof(y)),
            Address(saveMean, c, nameof(saveMean)), Address(saveInvStd, c, nameof(saveInvStd)), StreamPointer(s));
    }

    /// <summary>Evaluation mode: normalised by the running statistics.</summary>
    public void BatchNormEvalForward(BatchNormProblem problem, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> runningMean, ArrayView<float> runningVar, ArrayView<float> y, AcceleratorStream? stream = null)
    {
        Native.BatchNormValidate(problem);
        var (s, handle) = Begin(stream);
        long elements = (long)problem.N * problem.C * problem.H * problem.W, c = problem.C;
        Native.BatchNormEvalForward(handle, problem, Address(x, elements, nameof(x)), Address(gamma, c, nameof(gamma)), Address(beta, c, nameof(beta)),
            Address(runningMean, c, nameof(runningMean)), Address(runningVar, c, nameof(runningVar)), Address(y, elements, nameof(y)), StreamPointer(s));
    }

    /// <summary>Backward of the training-mode forward; <paramref name="beta"/> is read only when the problem has ReLU (pass
    /// default otherwise).</summary>
    public void BatchNormBackward(BatchNormProblem problem, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> saveMean, ArrayView<float> saveInvStd, ArrayView<float> dx, ArrayView<float> dgamma, ArrayView<float> dbeta,
        AcceleratorStream? stream = null)
    {
        Native.BatchNormValidate(problem);
        var (s, handle) = Begin(stream);
        long elements = (long)problem.N * problem.C * problem.H * problem.W, c = problem.C;
        Native.BatchNormBackward(handle, problem, Address(x, elements, nameof(x)), Address(dy, elements, nameof(dy)), Address(gamma, c, nameof(gamma)),
            problem.Relu != 0 ? Address(beta, c, nameof(beta)) : 0, Address(saveMean, c, nameof(saveMean)), Address(saveInvStd, c, nameof(saveInvStd)),
            Address(dx, elements, nameof(dx)), Address(dgamma, c, nameof(dgamma)), Address(dbeta, c, nameof(dbeta)), StreamPointer(s));
    }

    // ----- element-wise -----

    /// <summary>y = max(x, 0).</summary>
    public void ReluForward(ArrayView<float> x, ArrayView<float> y, AcceleratorStream? stream = null)
    {
        var (problem, s, handle) = Elementwise(x.Length, stream);
        Native.ReluForward(handle, problem, Address(x, problem.Length, nameof(x)), Address(y, problem.Length, nameof(y)), StreamPointer(s));
    }

    /// <summary>dx = dy where y &gt; 0, else 0.</summary>
    public void ReluBackward(ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx, AcceleratorStream? stream = null)
    {
        var (problem, s, handle) = Elementwise(y.Length, stream);
        Native.ReluBackward(handle, problem, Address(y, problem.Length, nameof(y)), Address(dy, problem.Length, nameof(dy)),
            Address(dx, problem.Length, nameof(dx)), StreamPointer(s));
    }

    /// <summary>y = a + b (y may be a or b).</summary>
    public void Add(ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, AcceleratorStream? stream = null)
    {
        var (problem, s, handle) = Elementwise(a.Length, stream);
        Native.Add(handle, problem, Address(a, problem.Length, nameof(a)), Address(b, problem.Length, nameof(b)), Address(y, problem.Length, nameof(y)),
            StreamPointer(s));
    }

    /// <summary>Every element of x = value.</summary>
    public void Fill(ArrayView<float> x, float value, AcceleratorStream? stream = null)
    {
        var (problem, s, handle) = Elementwise(x.Length, stream);
        Native.Fill(handle, problem, value, Address(x, problem.Length, nameof(x)), StreamPointer(s));
    }

    /// <summary>x *= alpha.</summary>
    public void Scale(ArrayView<float> x, float alpha, AcceleratorStream? stream = null)
    {
        var (problem, s, handle) = Elementwise(x.Length, stream);
        Native.Scale(handle, problem, alpha, Address(x, problem.Length, nameof(x)), StreamPointer(s));
    }

    /// <summary>y += alpha·x.</summary>
    public void Axpy(float alpha, ArrayView<float> x, ArrayView<float> y, AcceleratorStream? stream = null)
    {
        var (problem, s, handle) = Elementwise(x.Length, stream);
        Native.Axpy(handle, problem, alpha, Address(x, problem.Length, nameof(x)), Address(y, problem.Length, nameof(y)), StreamPointer(s));
    }

    /// <summary>result[0] = the sum of x, in a fixed order.</summary>
    public void Sum(ArrayView<float> x, ArrayView<float> result, AcceleratorStream? stream = null)
    {
        var (problem, s, handle) = Elementwise(x.Length, stream);
        var (workspace, bytes) = Workspace(Native.SumWorkspaceSize(problem), s);
        Native.Sum(handle, problem, Address(x, problem.Length, nameof(x)), Address(result, 1, nameof(result)), workspace, bytes, StreamPointer(s));
    }

    // ----- pooling and padding -----

    /// <summary>y[n, c] = mean of x[n, c, :, :] (the problem's padding must be 0).</summary>
    public void GlobalAvgPoolForward(PoolProblem problem, ArrayView<float> x, ArrayView<float> y, AcceleratorStream? stream = null)
    {
        Native.PoolValidate(problem);
        var (s, handle) = Begin(stream);
        Native.GlobalAvgPoolForward(handle, problem, Address(x, PoolInput(problem), nameof(x)), Address(y, (long)problem.N * problem.C, nameof(y)),
            StreamPointer(s));
    }

    /// <summary>dx[n, c, :, :] = dy[n, c] / (h·w).</summary>
    public void GlobalAvgPoolBackward(PoolProblem problem, ArrayView<float> dy, ArrayView<float> dx, AcceleratorStream? stream = null)
    {
        Native.PoolValidate(problem);
        var (s, handle) = Begin(stream);
        Native.GlobalAvgPoolBackward(handle, problem, Address(dy, (long)problem.N * problem.C, nameof(dy)), Address(dx, PoolInput(problem), nameof(dx)),
            StreamPointer(s));
    }

    /// <summary>y = x with zeros around it.</summary>
    public void ZeroPadForward(PoolProblem problem, ArrayView<float> x, ArrayView<float> y, AcceleratorStream? stream = null)
    {
        Native.PoolValidate(problem);
        var (s, handle) = Begin(stream);
        Native.ZeroPadForward(handle, problem, Address(x, PoolInput(problem), nameof(x)), Address(y, PaddedOutput(problem), nameof(y)), StreamPointer(s));
    }

    /// <summary>dx = the inner part of dy.</summary>
    public void ZeroPadBackward(PoolProblem problem, ArrayView<float> dy, ArrayView<float> dx, AcceleratorStream? stream = null)
    {
        Native.PoolValidate(problem);
        var (s, handle) = Begin(stream);
        Native.ZeroPadBackward(handle, problem, Address(dy, PaddedOutput(problem), nameof(dy)), Address(dx, PoolInput(problem), nameof(dx)), StreamPointer(s));
    }

    // ----- losses and SGD -----

    /// <summary>loss[0] = mean −log softmax(logits)[label]; the probabilities kept. Labels are int32 on the accelerator.</summary>
    public void CrossEntropyForward(LossProblem problem, ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> loss,
        ArrayView<float> probabilities, AcceleratorStream? stream = null)
    {
        Native.LossValidate(problem);
        var (s, handle) = Begin(stream);
        var (workspace, bytes) = Workspace(Native.LossWorkspaceSize(problem), s);
        Native.CrossEntropyForward(handle, problem, Address(logits, Logits(problem), nameof(logits)), Address(labels, problem.N, nameof(labels)),
            Address(loss, 1, nameof(loss)), Address(probabilities, Logits(problem), nameof(probabilities)), workspace, bytes, StreamPointer(s));
    }

    /// <summary>dlogits = (p − onehot) · dloss[0] / n.</summary>
    public void CrossEntropyBackward(LossProblem problem, ArrayView<float> probabilities, ArrayView<int> labels, ArrayView<float> dloss,
        ArrayView<float> dlogits, AcceleratorStream? stream = null)
    {
        Native.LossValidate(problem);
        var (s, handle) = Begin(stream);
        Native.CrossEntropyBackward(handle, problem, Address(probabilities, Logits(problem), nameof(probabilities)),
            Address(labels, problem.N, nameof(labels)), Address(dloss, 1, nameof(dloss)), Address(dlogits, Logits(problem), nameof(dlogits)), StreamPointer(s));
    }

    /// <summary>loss[0] = T²/n · Σ KL(softmax(teacher/T) ‖ softmax(student/T)); both softmaxes kept.</summary>
    public void KdForward(LossProblem problem, ArrayView<float> student, ArrayView<float> teacher, ArrayView<float> loss, ArrayView<float> studentSoft,
        ArrayView<float> teacherSoft, AcceleratorStream? stream = null)
    {
        Native.LossValidate(problem);
        var (s, handle) = Begin(stream);
        var (workspace, bytes) = Workspace(Native.LossWorkspaceSize(problem), s);
        Native.KdForward(handle, problem, Address(student, Logits(problem), nameof(student)), Address(teacher, Logits(problem), nameof(teacher)),
            Address(loss, 1, nameof(loss)), Address(studentSoft, Logits(problem), nameof(studentSoft)),
            Address(teacherSoft, Logits(problem), nameof(teacherSoft)), workspace, bytes, StreamPointer(s));
    }

    /// <summary>dstudent of the KD loss times dloss[0].</summary>
    public void KdBackward(LossProblem problem, ArrayView<float> studentSoft, ArrayView<float> teacherSoft, ArrayView<float> dloss,
        ArrayView<float> dstudent, AcceleratorStream? stream = null)
    {
        Native.LossValidate(problem);
        var (s, handle) = Begin(stream);
        Native.KdBackward(handle, problem, Address(studentSoft, Logits(problem), nameof(studentSoft)),
            Address(teacherSoft, Logits(problem), nameof(teacherSoft)), Address(dloss, 1, nameof(dloss)), Address(dstudent, Logits(problem), nameof(dstudent)),
            StreamPointer(s));
    }

    /// <summary>Attention transfer of one activation pair (n × c × h × w); maps (n × h × w) and the student's norms (n) kept.</summary>
    public void AtForward(LossProblem problem, ArrayView<float> student, ArrayView<float> teacher, ArrayView<float> loss, ArrayView<float> studentMap,
        ArrayView<float> teacherMap, ArrayView<float> studentNorm, AcceleratorStream? stream = null)
    {
        Native.LossValidate(problem);
        var (s, handle) = Begin(stream);
        var (workspace, bytes) = Workspace(Native.LossWorkspaceSize(problem), s);
        Native.AtForward(handle, problem, Address(student, Activations(problem), nameof(student)), Address(teacher, Activations(problem), nameof(teacher)),
            Address(loss, 1, nameof(loss)), Address(studentMap, Maps(problem), nameof(studentMap)), Address(teacherMap, Maps(problem), nameof(teacherMap)),
            Address(studentNorm, problem.N, nameof(studentNorm)), workspace, bytes, StreamPointer(s));
    }

    /// <summary>dstudent of attention transfer times dloss[0].</summary>
    public void AtBackward(LossProblem problem, ArrayView<float> student, ArrayView<float> studentMap, ArrayView<float> teacherMap,
        ArrayView<float> studentNorm, ArrayView<float> dloss, ArrayView<float> dstudent, AcceleratorStream? stream = null)
    {
        Native.LossValidate(problem);
        var (s, handle) = Begin(stream);
        Native.AtBackward(handle, problem, Address(student, Activations(problem), nameof(student)), Address(studentMap, Maps(problem), nameof(studentMap)),
            Address(teacherMap, Maps(problem), nameof(teacherMap)), Address(studentNorm, problem.N, nameof(studentNorm)), Address(dloss, 1, nameof(dloss)),
            Address(dstudent, Activations(problem), nameof(dstudent)), StreamPointer(s));
    }

    /// <summary>correct[0] = samples whose first maximal logit is the label.</summary>
    public void CountCorrect(LossProblem problem, ArrayView<float> logits, ArrayView<int> labels, ArrayView<int> correct, AcceleratorStream? stream = null)
    {
        Native.LossValidate(problem);
        var (s, handle) = Begin(stream);
        Native.CountCorrect(handle, problem, Address(logits, Logits(problem), nameof(logits)), Address(labels, problem.N, nameof(labels)),
            Address(correct, 1, nameof(correct)), StreamPointer(s));
    }

    /// <summary>One torch.optim.SGD step in place over the problem's length.</summary>
    public void SgdStep(SgdProblem problem, ArrayView<float> parameter, ArrayView<float> gradient, ArrayView<float> momentumBuffer,
        AcceleratorStream? stream = null)
    {
        Native.SgdValidate(problem);
        var (s, handle) = Begin(stream);
        Native.SgdStep(handle, problem, Address(parameter, problem.Length, nameof(parameter)), Address(gradient, problem.Length, nameof(gradient)),
            Address(momentumBuffer, problem.Length, nameof(momentumBuffer)), StreamPointer(s));
    }

    // ----- plumbing -----

    /// <summary>The stream to order the call on (the accelerator's default when null) and the handle. On the CPU
    /// accelerator, waits for the stream: ILGPU work still queued on it may be writing the inputs.</summary>
    private (AcceleratorStream Stream, CheapConvHandle Handle) Begin(AcceleratorStream? stream)
    {
        ObjectDisposedException.ThrowIf(Handle.IsClosed, this);
        var chosen = stream ?? Accelerator.DefaultStream;
        if (chosen.Accelerator != Accelerator)
        {
            throw new ArgumentException($"the stream belongs to {chosen.Accelerator.Name}, not to {Accelerator.Name}", nameof(stream));
        }

        if (chosen is not CudaStream)
        {
            chosen.Synchronize();
        }

        return (chosen, Handle);
    }

    private (ElementwiseProblem Problem, AcceleratorStream Stream, CheapConvHandle Handle) Elementwise(long length, AcceleratorStream? stream)
    {
        var problem = new ElementwiseProblem(length);
        Native.ElementwiseValidate(problem);
        var (s, handle) = Begin(stream);
        return (problem, s, handle);
    }

    /// <summary>The CUstream of a CUDA accelerator's stream; 0 (ignored) for the emulator.</summary>
    private static nint StreamPointer(AcceleratorStream stream) => stream is CudaStream cuda ? cuda.StreamPtr : 0;

    /// <summary>The address of a view's first element (a device pointer on CUDA, a host pointer on the CPU accelerator),
    /// after checking it has exactly the elements the problem needs and lives on this accelerator.</summary>
    private nint Address<T>(ArrayView<T> view, long expected, string name) where T : unmanaged
    {
        if (view.Length != expected)
        {
            throw new ArgumentException($"{name} has {view.Length} elements but the problem needs {expected}", name);
        }

        if (expected == 0)
        {
            return 0;
        }

        if (!view.IsValid || ((IArrayView)view).Buffer.Accelerator != Accelerator)
        {
            throw new ArgumentException($"{name} is not memory of {Accelerator.Name}", name);
        }

        return view.LoadEffectiveAddressAsPtr();
    }

    /// <summary><see cref="Address{T}"/> of an optional view; 0 (the C calls' "none") when it is null.</summary>
    private nint Optional(ArrayView<float>? view, long expected, string name) => view is { } v ? Address(v, expected, name) : 0;

    /// <summary>The reused workspace for a call that may split a weight gradient: all of it, grown to at least
    /// <paramref name="bytes"/>, its arrival counters zero; (0, 0) when none is needed.</summary>
    private (nint Pointer, nuint Bytes) SplitWorkspace(nuint bytes, AcceleratorStream stream) =>
        bytes == 0 ? (0, 0) : (Grow(bytes, stream).NativePtr, (nuint)_workspace!.Length);

    /// <summary>The reused workspace for a call that uses it as plain scratch: the part after the split counters, at least
    /// <paramref name="bytes"/>; (0, 0) when none is needed.</summary>
    private (nint Pointer, nuint Bytes) Workspace(nuint bytes, AcceleratorStream stream) =>
        bytes == 0
            ? (0, 0)
            : (Grow(bytes + CheapConvNative.SplitCounterBytes, stream).NativePtr + CheapConvNative.SplitCounterBytes,
                (nuint)(_workspace!.Length - CheapConvNative.SplitCounterBytes));

    // Grown after the stream has finished with the old buffer; the new one zeroed on the stream (the counters must be
    // zero before the first split call, cheapconv.h).
    private MemoryBuffer1D<byte, Stride1D.Dense> Grow(nuint bytes, AcceleratorStream stream)
    {
        if (_workspace is null || (ulong)_workspace.Length < bytes)
        {
            stream.Synchronize();
            _workspace?.Dispose();
            _workspace = null;
            var grown = Accelerator.Allocate1D<byte>(Math.Max((long)bytes, CheapConvNative.SplitCounterBytes));
            grown.MemSetToZero(stream);
            _workspace = grown;
        }

        return _workspace;
    }

    private static long PoolInput(PoolProblem problem) => (long)problem.N * problem.C * problem.H * problem.W;

    private static long PaddedOutput(PoolProblem problem) =>
        (long)problem.N * problem.C * (problem.H + problem.PadTop + problem.PadBottom) * (problem.W + problem.PadLeft + problem.PadRight);

    private static long Logits(LossProblem problem) => (long)problem.N * problem.Classes;

    private static long Activations(LossProblem problem) => (long)problem.N * problem.C * problem.H * problem.W;

    private static long Maps(LossProblem problem) => (long)problem.N * problem.H * problem.W;
}
