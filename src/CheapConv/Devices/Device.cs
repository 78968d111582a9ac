using CheapConv.Interop;

namespace CheapConv.Devices;

/// <summary>What a device is, for messages and for choosing code paths in tests.</summary>
public enum DeviceKind
{
    /// <summary>The CUDA kernels compiled as host C++ and run by the emulator (native/emu).</summary>
    Emulated,

    /// <summary>A real NVIDIA GPU driven through the CUDA driver API.</summary>
    Cuda,
}

/// <summary>
/// Memory, copies and the kernel library for one device: <see cref="CudaDevice"/> (a GPU through the CUDA driver,
/// kernels through <c>libcheapconv.so</c>) or <see cref="EmulatedDevice"/> (host memory, kernels through the
/// emulator's <c>libcheapconv_emu.so</c>). Both libraries export the same C ABI (native/include/cheapconv.h);
/// <see cref="Handle"/> is this device's handle of it and <see cref="Stream"/> the stream its work is ordered on.
/// </summary>
public abstract unsafe class Device : IDisposable
{
    // Only this assembly's devices (CudaDevice, EmulatedDevice) derive from Device: its memory operations are internal.
    private protected Device()
    {
    }

    public abstract DeviceKind Kind { get; }

    /// <summary>Human-readable name, e.g. "NVIDIA H100 80GB HBM3 (cuda:0)" or "emulator".</summary>
    public abstract string Name { get; }

    /// <summary>The C ABI handle the kernels of this device run through (bound to its CUDA context).</summary>
    public abstract CheapConvHandle Handle { get; }

    /// <summary>The library <see cref="Handle"/> belongs to.</summary>
    public CheapConvNative Native => Handle.Library;

    /// <summary>The CUstream copies and kernels are ordered on; 0 is the context's default stream (always 0 on the emulator).</summary>
    public abstract nint Stream { get; }

    /// <summary>What the kernels run on, in the library's words (cc_describe): the GPU and whether the kernels are
    /// SASS from the fatbin or JIT-compiled PTX, or the emulator's worker threads.</summary>
    public string DescribeKernels() => Native.Describe(Handle);

    /// <summary>Allocates an uninitialised buffer of <paramref name="length"/> elements, owned by the buffer.</summary>
    public DeviceBuffer<T> Allocate<T>(long length) where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        var pointer = length == 0 ? 0 : AllocateBytes(length * sizeof(T));
        return new DeviceBuffer<T>(this, pointer, length, owns: true);
    }

    /// <summary>Allocates a buffer holding a copy of <paramref name="data"/>.</summary>
    public DeviceBuffer<T> Upload<T>(ReadOnlySpan<T> data) where T : unmanaged
    {
        var buffer = Allocate<T>(data.Length);
        buffer.CopyFrom(data);
        return buffer;
    }

    /// <summary>Waits for all queued work to finish and reports any asynchronous error.</summary>
    public abstract void Synchronize();

    /// <summary>Every host wait on this device, with its reason; the strict mode that forbids them (see <see cref="Devices.HostWaits"/>).</summary>
    internal HostWaits HostWaits { get; } = new();

    /// <summary>
    /// Whether work was queued on <see cref="Stream"/> — a kernel, a device-to-device copy, a fill — since the host last
    /// waited for it. A free must wait for such work (it may still read the memory); the emulator tracks it too, so it
    /// counts the same waits as a GPU.
    /// </summary>
    private protected bool WorkQueued { get; set; }

    /// <summary>
    /// Says that <paramref name="call"/> (e.g. "cc_conv_forward") has just queued work on <see cref="Stream"/> for
    /// <paramref name="problem"/> (a descriptor, formatted only if a fault is reported), so that a fault reported later,
    /// by a copy or a synchronization, names it. Generic so that a device that remembers nothing (the emulator, which
    /// finishes every call before it returns) costs a launch no boxing.
    /// </summary>
    internal void Queued<TProblem>(string call, TProblem problem) where TProblem : struct
    {
        WorkQueued = true;
        if (RemembersQueuedCalls)
        {
            OnQueued(call, problem);
        }
    }

    /// <summary>As <see cref="Queued{TProblem}"/>, for a call without a descriptor.</summary>
    internal void Queued(string call)
    {
        WorkQueued = true;
        if (RemembersQueuedCalls)
        {
            OnQueued(call, null);
        }
    }

    /// <summary>Whether <see cref="OnQueued"/> keeps anything (a CUDA device keeps the last call for fault messages).</summary>
    private protected virtual bool RemembersQueuedCalls => false;

    /// <summary>What a device remembers of a queued call.</summary>
    private protected virtual void OnQueued(string call, object? problem)
    {
    }

    /// <summary>Whether a capture (<see cref="BeginCapture"/>) is under way: the work queued on <see cref="Stream"/> is
    /// recorded, not run.</summary>
    internal bool Capturing { get; private set; }

    /// <summary>
    /// Starts recording the kernels, device-to-device copies and fills queued on <see cref="Stream"/> instead of running
    /// them (the C ABI's stream capture); <see cref="EndCapture"/> makes the recording a <see cref="DeviceGraph"/>.
    /// Nothing that makes the host wait or crosses to the host may be queued meanwhile (it could not be replayed): such a
    /// call throws <see cref="InvalidOperationException"/>. On a GPU the stream must be one the caller created.
    /// </summary>
    internal void BeginCapture()
    {
        Native.CaptureBegin(Handle, Stream);
        Capturing = true;
    }

    /// <summary>Ends the capture <see cref="BeginCapture"/> started and returns what it recorded.</summary>
    internal DeviceGraph EndCapture()
    {
        var graph = Native.CaptureEnd(Handle, Stream);
        Capturing = false;
        return new DeviceGraph(this, graph);
    }

    /// <summary>Throws when a capture is under way: <paramref name="what"/> cannot be part of a graph.</summary>
    private protected void RefuseWhileCapturing(string what)
    {
        if (Capturing)
        {
            throw new InvalidOperationException($"{Name}: {what} while a capture is under way: a graph cannot replay it; do it before or after the capture");
        }
    }

    /// <summary>
    /// Records that the host has just waited for everything queued (<paramref name="reason"/>: what made it wait, e.g.
    /// "copy to the host"). <paramref name="canThrow"/> false for frees, which must never throw (see <see cref="HostWaits"/>).
    /// </summary>
    private protected void HostWaited(string reason, bool canThrow = true)
    {
        if (canThrow)
        {
            RefuseWhileCapturing($"a host wait ({reason})");
        }

        WorkQueued = false;
        HostWaits.Waited(reason, canThrow);
    }

    internal abstract nint AllocateBytes(long bytes);

    /// <summary>Frees an allocation of <see cref="AllocateBytes"/>. Runs from a SafeHandle, on the finalizer thread when
    /// <paramref name="byFinalizer"/> (a buffer dropped without <c>Dispose</c>): never throws; false when the memory could
    /// not be freed.</summary>
    internal abstract bool Release(nint pointer, bool byFinalizer);

    /// <summary>The host wait a free with work queued makes: its own reason when the finalizer frees a dropped buffer.</summary>
    private protected static string FreeWaitReason(bool byFinalizer) =>
        byFinalizer ? HostWaitReason.FreeByFinalizer : HostWaitReason.FreeWithWorkQueued;

    internal abstract void CopyHostToDevice(nint destination, void* source, long bytes);

    /// <summary>
    /// Copies host memory to the device without making the host wait (unlike <see cref="CopyHostToDevice"/>, which waits
    /// until the source may be reused): the bytes are staged in memory the device owns, so the caller's memory is free
    /// again on return, and the copy is ordered with the kernels on <see cref="Stream"/>. For what a training step uploads.
    /// </summary>
    internal abstract void CopyHostToDeviceStaged(nint destination, void* source, long bytes);

    internal abstract void CopyDeviceToHost(void* destination, nint source, long bytes);

    /// <summary>A host buffer of <paramref name="bytes"/> the device copies into without the host waiting
    /// (<see cref="HostReadback"/>).</summary>
    internal abstract HostReadback CreateReadback(long bytes);

    /// <summary>Copies between two buffers of this device, ordered with the kernels.</summary>
    internal abstract void CopyDeviceToDevice(nint destination, nint source, long bytes);

    internal abstract void FillBytes(nint destination, byte value, long bytes);

    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    private protected abstract void Dispose(bool disposing);

    public override string ToString() => Name;
}
