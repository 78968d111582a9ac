using CheapConv.Devices;
using CheapConv.Interop;
using CheapConv.Problems;

namespace CheapConv.Backends;

/// <summary>
/// The op level over a <see cref="Device"/>: every op is one call of the C ABI (native/include/cheapconv.h) with
/// the device's handle and stream. Which kernel runs, its grid, block, shared memory and the split of a weight
/// gradient are the native launcher's business; this class checks that the buffers fit the problem (the ABI takes
/// bare pointers), and owns what a call needs besides its tensors: the workspace, the labels on the device and the
/// count of correct predictions. The same code drives a GPU and the emulator, so CI exercises the real launcher
/// without a GPU. One file per op family (GpuBackend.Gemm.cs, .Norm.cs, .Loss.cs); this one holds memory, the
/// workspace and the convolution.
/// </summary>
/// <remarks>
/// Not thread-safe: the workspace and the labels are reused from call to call (safely, since calls on one stream
/// run in order). Give each thread its own backend, as each its own stream.
/// </remarks>
public sealed unsafe partial class GpuBackend(Device device) : IBackend, IDisposable
{
    // Grows to the largest *_workspace_size asked and stays: freeing it on a GPU would wait for the stream. Its first
    // CheapConvNative.SplitCounterBytes are the split weight gradients' arrival counters: zeroed once when allocated,
    // left zero by every call that uses them (SplitWorkspace), never given to scratch-only calls (Workspace).
    private DeviceBuffer<byte>? _workspace;

    public Device Device { get; } = device;

    public string Name => Device.Name;

    /// <summary>
    /// The kernels <see cref="Conv2dForward"/>, <see cref="Conv2dBackwardData"/> and <see cref="Conv2dBackwardWeight"/>
    /// ask for (<see cref="KernelOptions.Algorithm"/>): <see cref="KernelAlgorithm.Auto"/> (the default) lets the launcher
    /// choose; another value forces that variant, so tests and benchmarks can run e.g. the direct kernels on every problem
    /// (a problem the variant does not implement is then refused with <see cref="CheapConvStatus.NotSupported"/>).
    /// </summary>
    public KernelAlgorithm ConvAlgorithm { get; init; } = KernelAlgorithm.Auto;

    /// <summary>
    /// What the convolutions may use (<see cref="KernelOptions.Precision"/>). <see cref="KernelPrecision.Fp32"/> here, the
    /// exact path the trainer and its tests are held to; <see cref="KernelPrecision.Tf32"/> (the C library's default) lets
    /// the launcher run the tensor-core kernels on 1×1 and many-channel 3×3 convolutions.
    /// </summary>
    public KernelPrecision ConvPrecision { get; init; } = KernelPrecision.Fp32;

    /// <summary>Bytes of the workspace kept between calls (0 until an op needed one).</summary>
    public long WorkspaceBytes => _workspace?.Length ?? 0;

    /// <summary>
    /// Changes whenever a buffer this backend keeps between calls — the workspace, the labels — is replaced (grown or
    /// freed). A captured graph holds their addresses: it may be replayed only while this is what it was at the capture.
    /// </summary>
    internal long BufferGeneration { get; private set; }

    public Storage Allocate(long length) => new DeviceStorage(Device.Allocate<float>(length));

    public Storage Upload(ReadOnlySpan<float> data) => new DeviceStorage(Device.Upload(data));

    public void Download(Storage source, Span<float> destination) => Buffer(source).CopyTo(destination);

    public void Copy(Storage source, Storage destination)
    {
        CpuBackend.CheckSameLength(source, destination);
        Device.CopyDeviceToDevice(Buffer(destination).Pointer, Buffer(source).Pointer, source.Length * sizeof(float));
    }

    /// <summary>Frees what the ops keep between calls (workspace, labels, the correct count). The device and the
    /// storages handed out stay valid; the backend may be used again (the buffers come back on demand).</summary>
    public void Dispose()
    {
        ReleaseLossBuffers();
        _workspace?.Dispose();
        _workspace = null;
        BufferGeneration++;
    }

    void IBackend.Conv2dForward(ConvProblem problem, Storage x, Storage w, Storage y) =>
        Conv2dForward(problem, Buffer(x), Buffer(w), Buffer(y));

    void IBackend.Conv2dBackwardData(ConvProblem problem, Storage dy, Storage w, Storage dx, bool accumulate) =>
        Conv2dBackwardData(problem, Buffer(dy), Buffer(w), Buffer(dx), accumulate);

    void IBackend.Conv2dBackwardWeight(ConvProblem problem, Storage x, Storage dy, Storage dw) =>
        Conv2dBackwardWeight(problem, Buffer(x), Buffer(dy), Buffer(dw));

    void IBackend.Conv2dBackward(ConvProblem problem, Storage x, Storage dy, Storage w, Storage? dx, Storage? dw, bool accumulate)
    {
        if (dx is null && dw is null)
        {
            throw new ArgumentException("Conv2dBackward: neither dx nor dw: nothing to write");
        }

        Check(problem, ("x", Buffer(x), problem.InputElements), ("dy", Buffer(dy), problem.OutputElements), ("w", Buffer(w), problem.WeightElements));
        OptionalCheck(problem, "dx", dx, problem.InputElements);
        OptionalCheck(problem, "dw", dw, problem.WeightElements);
        var options = ConvOptions with { Accumulate = accumulate ? 1 : 0 };
        var (workspace, bytes) = SplitWorkspace(Device.Native.ConvWorkspaceSize(problem, ConvPass.Backward, options));
        Device.Native.ConvBackward(Device.Handle, problem, options, Buffer(x).Pointer, Buffer(dy).Pointer, Buffer(w).Pointer, Address(dx), Address(dw),
            workspace, bytes, Device.Stream);
        Device.Queued(AbiFunctions.Name(AbiFunction.ConvBackward), problem);
    }

    void IBackend.Conv2dForwardFused(ConvProblem problem, Storage x, Storage w, Storage? y, Storage? residual, EvalBatchNormRelu? activation)
    {
        var output = problem.OutputElements;
        Check(problem, ("x", Buffer(x), problem.InputElements), ("w", Buffer(w), problem.WeightElements));
        OptionalCheck(problem, "y", y, output);
        OptionalCheck(problem, "residual", residual, output);
        var epilogue = new ConvEpilogue { Residual = Address(residual) };
        if (activation is { } a)
        {
            foreach (var (name, parameter) in new[] { ("gamma", a.Gamma), ("beta", a.Beta), ("running mean", a.RunningMean), ("running var", a.RunningVar) })
            {
                OptionalCheck(problem, name, parameter, problem.K);
            }

            OptionalCheck(problem, "activated", a.Output, output);
            epilogue = epilogue with
            {
                BnGamma = Address(a.Gamma), BnBeta = Address(a.Beta), BnMean = Address(a.RunningMean), BnVar = Address(a.RunningVar),
                Activated = Address(a.Output), BnEps = a.Eps,
            };
        }

        var (workspace, bytes) = SplitWorkspace(Device.Native.ConvWorkspaceSize(problem, ConvPass.Forward, ConvOptions));
        Device.Native.ConvForwardFused(Device.Handle, problem, ConvOptions, epilogue, Buffer(x).Pointer, Buffer(w).Pointer, Address(y), workspace, bytes,
            Device.Stream);
        Device.Queued(AbiFunctions.Name(AbiFunction.ConvForwardFused), problem);
    }

    void IBackend.Conv2dForwardBatchNormTrain(ConvProblem problem, Storage x, Storage w, Storage y, Storage? residual, TrainBatchNorm bn)
    {
        // The statistics need the tensor-core forward kernels (the launcher's choice for the problem and ConvPrecision), and
        // their slots live in the scratch part of the workspace from the convolution to the batch norm: that forward pass
        // takes no workspace of its own, so nothing else is in it meanwhile.
        var slots = Device.Native.ConvBatchNormStatsSlots(problem, ConvOptions);
        if (slots is not { } count || Device.Native.ConvWorkspaceSize(problem, ConvPass.ForwardBatchNormStats, ConvOptions) != 0)
        {
            IBackend backend = this;
            backend.Conv2dForwardFused(problem, x, w, y, residual, activation: null);
            bn.RunOn(this, problem.N, problem.K, problem.P, problem.Q, y);
            return;
        }

        var output = problem.OutputElements;
        Check(problem, ("x", Buffer(x), problem.InputElements), ("w", Buffer(w), problem.WeightElements), ("y", Buffer(y), output));
        OptionalCheck(problem, "residual", residual, output);
        CpuBackend.CheckBatchNormTraining(problem.N, problem.K, problem.P, problem.Q, y.Length, bn.Output.Length, bn.Gamma.Length, bn.Beta.Length,
            bn.RunningMean.Length, bn.RunningVar.Length, bn.SaveMean.Length, bn.SaveInvStd.Length);
        var statsBytes = (nuint)((long)problem.K * count * CheapConvNative.BatchNormStatsFloatsPerSlot * sizeof(float));
        var (stats, _) = Workspace(statsBytes);
        Device.Native.ConvForwardBatchNormStats(Device.Handle, problem, ConvOptions, Address(residual), Buffer(x).Pointer, Buffer(w).Pointer,
            Buffer(y).Pointer, stats, statsBytes, 0, 0, Device.Stream);
        Device.Queued(AbiFunctions.Name(AbiFunction.ConvForwardBnStats), problem);
        var norm = new BatchNormProblem(problem.N, problem.K, problem.P, problem.Q, bn.Eps, bn.Momentum, bn.Relu ? 1 : 0);
        Device.Native.BatchNormTrainForwardFromStats(Device.Handle, norm, stats, count, Buffer(y).Pointer, Buffer(bn.Gamma).Pointer,
            Buffer(bn.Beta).Pointer, Buffer(bn.RunningMean).Pointer, Buffer(bn.RunningVar).Pointer, Buffer(bn.Output).Pointer,
            Buffer(bn.SaveMean).Pointer, Buffer(bn.SaveInvStd).Pointer, Device.Stream);
        Device.Queued(AbiFunctions.Name(AbiFunction.BatchnormTrainForwardFromStats), norm);
    }

    // A storage the fused call may leave out: its device address, or 0 when absent (the C ABI's NULL).
    private nint Address(Storage? storage) => storage is null ? 0 : Buffer(storage).Pointer;

    private void OptionalCheck(ConvProblem problem, string name, Storage? storage, long expected)
    {
        if (storage is not null)
        {
            Check(problem, (name, Buffer(storage), expected));
        }
    }

    /// <summary>The device buffer behind a storage of this backend.</summary>
    internal DeviceBuffer<float> Buffer(Storage storage) => storage is DeviceStorage { Buffer: var buffer } && buffer.Device == Device
        ? buffer
        : throw new ArgumentException($"a {storage.GetType().Name} not on {Device.Name} was given to its backend");

    /// <summary>y = conv(x, w).</summary>
    public void Conv2dForward(ConvProblem problem, DeviceBuffer<float> x, DeviceBuffer<float> w, DeviceBuffer<float> y) =>
        Conv(ConvPass.Forward, problem, ConvOptions, x, w, y);

    /// <summary>dx = ∂L/∂x given dy = ∂L/∂y; with <paramref name="accumulate"/>, dx += it in the same kernel (cc_options.accumulate).</summary>
    public void Conv2dBackwardData(ConvProblem problem, DeviceBuffer<float> dy, DeviceBuffer<float> w, DeviceBuffer<float> dx, bool accumulate = false) =>
        Conv(ConvPass.BackwardData, problem, ConvOptions with { Accumulate = accumulate ? 1 : 0 }, dy, w, dx);

    /// <summary>dw = ∂L/∂w given x and dy = ∂L/∂y (overwrites dw; no accumulation).</summary>
    public void Conv2dBackwardWeight(ConvProblem problem, DeviceBuffer<float> x, DeviceBuffer<float> dy, DeviceBuffer<float> dw) =>
        Conv(ConvPass.BackwardWeight, problem, ConvOptions, x, dy, dw);

    private KernelOptions ConvOptions => new(ConvAlgorithm) { Precision = ConvPrecision };

    /// <summary>
    /// One pass: (x, w → y), (dy, w → dx) or (x, dy → dw), with the workspace the launcher asks for these options.
    /// </summary>
    private void Conv(ConvPass pass, ConvProblem problem, KernelOptions options, DeviceBuffer<float> first, DeviceBuffer<float> second,
        DeviceBuffer<float> output)
    {
        var (firstName, secondName, outputName) = pass.Names();
        var (firstLength, secondLength, outputLength) = pass.Elements(problem);
        Check(problem, (firstName, first, firstLength), (secondName, second, secondLength), (outputName, output, outputLength));
        var (workspace, bytes) = SplitWorkspace(Device.Native.ConvWorkspaceSize(problem, pass, options));
        Device.Native.Conv(pass, Device.Handle, problem, options, first.Pointer, second.Pointer, output.Pointer, workspace, bytes, Device.Stream);
        Device.Queued(AbiFunctions.Name(CheapConvNative.ConvCall(pass)), problem);
    }

    /// <summary>
    /// The reused workspace for a call that may split a weight gradient (the convolutions, the linear weight gradient):
    /// all of it, grown to at least <paramref name="bytes"/>, its arrival counters zero; or (0, 0) when none is needed.
    /// Calls on one stream run in order, so a call cannot overwrite what an earlier one still reads.
    /// </summary>
    private (nint Pointer, nuint Bytes) SplitWorkspace(nuint bytes) =>
        bytes == 0 ? (0, 0) : (Grow(bytes).Pointer, (nuint)_workspace!.Length);

    /// <summary>
    /// The reused workspace for a call that uses it as plain scratch (cc_sum, the losses): the part after the split
    /// counters, at least <paramref name="bytes"/>; or (0, 0) when none is needed.
    /// </summary>
    private (nint Pointer, nuint Bytes) Workspace(nuint bytes) =>
        bytes == 0
            ? (0, 0)
            : (Grow(bytes + CheapConvNative.SplitCounterBytes).Pointer + CheapConvNative.SplitCounterBytes,
                (nuint)(_workspace!.Length - CheapConvNative.SplitCounterBytes));

    private DeviceBuffer<byte> Grow(nuint bytes)
    {
        if (_workspace is null || (ulong)_workspace.Length < bytes)
        {
            _workspace?.Dispose();
            _workspace = null;
            BufferGeneration++;
            var grown = Device.Allocate<byte>(Math.Max((long)bytes, CheapConvNative.SplitCounterBytes));
            // On the stream, before any call that counts in them (cheapconv.h: zero before the first split call).
            Device.FillBytes(grown.Pointer, 0, CheapConvNative.SplitCounterBytes);
            _workspace = grown;
        }

        return _workspace;
    }

    private void Check(ConvProblem problem, params ReadOnlySpan<(string Name, DeviceBuffer<float> Buffer, long Expected)> tensors)
    {
        foreach (var (name, buffer, expected) in tensors)
        {
            if (buffer.Device != Device)
            {
                throw new ArgumentException($"{name} lives on {buffer.Device.Name}, not on {Device.Name}");
            }

            if (buffer.Length != expected)
            {
                throw new ArgumentException($"{name} has {buffer.Length} elements but the problem ({problem}) needs {expected}");
            }
        }
    }
}
