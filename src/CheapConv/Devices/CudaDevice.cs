using System.Runtime.InteropServices;
using CheapConv.Interop;
using static CheapConv.Devices.CudaDriver;

namespace CheapConv.Devices;

/// <summary>
/// A real NVIDIA GPU: memory and copies through our own CUDA driver imports (<see cref="CudaDriver"/>), kernels
/// through <c>libcheapconv.so</c>'s C ABI with a handle bound to the device's context. Copies to the host wait for
/// the stream; kernels and device-to-device copies do not.
/// </summary>
/// <remarks>
/// <para>
/// Contexts and streams: <see cref="Open"/> uses the device's primary context (the one the CUDA runtime, PyTorch and
/// ILGPU use), retained while the device lives and released by <see cref="Device.Dispose()"/>;
/// <see cref="FromContext"/> uses a context the caller created and keeps alive. Work goes to the stream given, which
/// the device neither creates nor destroys; <see cref="Open"/> without one creates a non-blocking stream of its own (and
/// destroys it when disposed), because a graph capture (<see cref="Device.BeginCapture"/>) refuses the legacy default
/// stream; <see cref="FromContext"/> without one uses the caller's context's default stream (0), ordered with the
/// caller's work there.
/// A CUDA context is current per OS thread, and xunit, async code and the thread pool move work between threads,
/// so every method makes the context current on the calling thread before its first driver call
/// (cuCtxSetCurrent is a thread-local store).
/// </para>
/// <para>
/// Errors: a kernel that faults (illegal address, misaligned access, trap) is reported by whichever call comes
/// next — <see cref="Synchronize"/>, a copy to the host, a later kernel — and leaves the context unusable. Those
/// reports are <see cref="KernelLaunchException"/>s that name the last call queued (<see cref="Device.Queued"/>) and how many
/// were pending; set <see cref="SynchronizeAfterEachLaunch"/> (or CHEAPCONV_CUDA_SYNC=1) to pin a fault on its call.
/// </para>
/// <para>
/// Lifetime: disposing the device frees every buffer it allocated that is still alive, destroys the kernel handle
/// and releases the primary context. Buffers disposed after their device are a no-op, never a crash; wrapped
/// (foreign) memory is never freed.
/// </para>
/// <para>
/// Thread safety: calls may come from any thread, one at a time; concurrent calls on one device are not supported
/// (they would share one stream with no ordering between them).
/// </para>
/// </remarks>
public sealed unsafe class CudaDevice : Device
{
    /// <summary>Set to 1 to synchronize after every kernel call, so a faulting kernel is reported by its own call.</summary>
    public const string SynchronizeEnvironmentVariable = "CHEAPCONV_CUDA_SYNC";

    private readonly Dictionary<nint, long> _allocations = [];
    private readonly Lock _allocationsLock = new();
    private nint _stream;
    private bool _ownsStream;
    private nint _context;
    private CheapConvHandle? _handle;
    private int _disposed;

    // Asynchronous errors surface later than the call that caused them; these say which call that was.
    private string? _lastCall;
    private object? _lastProblem;
    private int _callsSinceSync;
    private CudaStaging? _staging;

    private CudaDevice(int ordinal, int device, CudaDeviceInfo info, string driverVersion, nint context, bool primary, nint stream)
    {
        Ordinal = ordinal;
        DeviceHandle = device;
        Info = info;
        DriverVersion = driverVersion;
        Name = $"{info.Name} (cuda:{ordinal})";
        _context = context;
        IsPrimaryContext = primary;
        _stream = stream;
        SynchronizeAfterEachLaunch = Environment.GetEnvironmentVariable(SynchronizeEnvironmentVariable) == "1";
    }

    public override DeviceKind Kind => DeviceKind.Cuda;

    /// <summary>"NVIDIA H100 80GB HBM3 (cuda:0)".</summary>
    public override string Name { get; }

    /// <summary>The CUDA device ordinal (cuda:N).</summary>
    public int Ordinal { get; }

    /// <summary>What the driver says about the GPU.</summary>
    public CudaDeviceInfo Info { get; }

    /// <summary>The CUDA version the driver supports, e.g. "12.4".</summary>
    public string DriverVersion { get; }

    /// <summary>True when the device retained the primary context (<see cref="Open"/>); false for a caller's
    /// context (<see cref="FromContext"/>).</summary>
    public bool IsPrimaryContext { get; }

    /// <summary>The CUcontext, for handing our buffers to other CUDA code (ILGPU, a PyTorch extension).</summary>
    public nint ContextHandle => _context;

    /// <summary>The CUstream all kernels, copies and fills go to (0: the context's legacy default stream).</summary>
    public nint StreamHandle => _stream;

    public override nint Stream => _stream;

    /// <summary>The CUdevice handle.</summary>
    public int DeviceHandle { get; }

    public override CheapConvHandle Handle => _handle ?? throw new ObjectDisposedException(Name);

    /// <summary>Which binary the kernels run, in libcheapconv.so's words (cc_describe), e.g. "cuda: NVIDIA H100 80GB
    /// HBM3 (device 0, sm_90), kernels: SASS sm_90 from the fatbin" or "... kernels: PTX sm_80 (JIT)"; on a device from
    /// <see cref="FromContext"/> the parenthesis ends with ", the caller's context".</summary>
    public string KernelBinary { get; private set; } = "";

    /// <summary>Synchronize after every kernel call, so that a kernel fault is reported by the call that caused it
    /// instead of a later one. Slower; for debugging. Defaults to $CHEAPCONV_CUDA_SYNC == "1".</summary>
    public bool SynchronizeAfterEachLaunch { get; set; }

    /// <summary>Bytes currently allocated through this device (wrapped memory not counted).</summary>
    public long AllocatedBytes
    {
        get
        {
            lock (_allocationsLock)
            {
                return _allocations.Values.Sum();
            }
        }
    }

    /// <summary>
    /// Says whether CUDA can be used here and lists the GPUs. Never throws: a missing driver, a failed cuInit or no
    /// device gives <see cref="CudaProbe.IsAvailable"/> false and a one-line reason.
    /// </summary>
    public static CudaProbe Probe()
    {
        string? library = null;
        string? version = null;
        var devices = new List<CudaDeviceInfo>();
        try
        {
            EnsureResolver();
            if (LoadError is { } loadError)
            {
                return new CudaProbe(false, loadError, null, null, devices);
            }

            library = LibraryName;
            // cuDriverGetVersion works before cuInit, so the version is reported even when cuInit fails.
            version = cuDriverGetVersion(out var raw) == CUDA_SUCCESS ? FormatVersion(raw) : null;
            if (InitReason() is { } reason)
            {
                return new CudaProbe(false, reason, library, version, devices);
            }

            var status = cuDeviceGetCount(out var count);
            if (status != CUDA_SUCCESS)
            {
                return new CudaProbe(false, $"cuDeviceGetCount failed: {Describe(status)}", library, version, devices);
            }

            for (var ordinal = 0; ordinal < count; ordinal++)
            {
                devices.Add(QueryDevice(ordinal, out _));
            }

            return devices.Count == 0
                ? new CudaProbe(false, "the NVIDIA driver reports no CUDA device (cuDeviceGetCount returned 0)", library, version, devices)
                : new CudaProbe(true, null, library, version, devices);
        }
        catch (Exception e)
        {
            // EntryPointNotFoundException (a driver older than CUDA 4), DeviceException from a query: all one line.
            var line = e.Message.ReplaceLineEndings(" ");
            return new CudaProbe(false, $"CUDA driver probe failed: {e.GetType().Name}: {line}", library, version, devices);
        }
    }

    /// <summary>
    /// Opens GPU <paramref name="ordinal"/> on its primary context (retained until disposed) and binds
    /// libcheapconv.so to it; work goes to <paramref name="stream"/> (a CUstream of that context, which the caller
    /// keeps alive), or with 0 to a non-blocking stream the device creates and destroys (the legacy default stream on a
    /// driver without cuStreamCreate). Throws <see cref="DeviceUnavailableException"/> (with
    /// <see cref="Probe"/>'s reason) when there is no usable GPU or no libcheapconv.so.
    /// </summary>
    public static CudaDevice Open(int ordinal = 0, nint stream = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ordinal);
        return Start(() =>
        {
            var status = cuDeviceGetCount(out var count);
            if (status != CUDA_SUCCESS)
            {
                throw new DeviceUnavailableException($"cuDeviceGetCount failed: {Describe(status)}");
            }

            if (ordinal >= count)
            {
                throw new DeviceUnavailableException(count == 0
                    ? "the NVIDIA driver reports no CUDA device (cuDeviceGetCount returned 0)"
                    : $"cuda:{ordinal} does not exist: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}");
            }

            var info = QueryDevice(ordinal, out var device);
            var retained = cuDevicePrimaryCtxRetain(out var context, device);
            if (retained != CUDA_SUCCESS)
            {
                throw new DeviceUnavailableException($"cuda:{ordinal}: cuDevicePrimaryCtxRetain failed with {Describe(retained)}");
            }

            return new CudaDevice(ordinal, device, info, DriverVersionText(), context, primary: true, stream);
        });
    }

    /// <summary>
    /// A device over a CUDA context the caller created and keeps alive (e.g. another engine's), with work on
    /// <paramref name="stream"/> (a CUstream of that context; 0 = its default stream). Disposing the device leaves the
    /// context and the stream alone. Buffers of the caller's allocations come from <see cref="DeviceBuffer{T}.Wrap"/>.
    /// </summary>
    public static CudaDevice FromContext(nint context, nint stream = 0)
    {
        if (context == 0)
        {
            throw new ArgumentException("a null CUcontext: pass the context the caller's memory and stream belong to", nameof(context));
        }

        return Start(() =>
        {
            Check(cuCtxSetCurrent(context), $"making the CUcontext 0x{context:x} current");
            Check(cuCtxGetDevice(out var device), $"asking the CUcontext 0x{context:x} for its device");
            Check(cuDeviceGetCount(out var count), "counting devices");
            for (var ordinal = 0; ordinal < count; ordinal++)
            {
                Check(cuDeviceGet(out var candidate, ordinal), $"cuda:{ordinal}");
                if (candidate == device)
                {
                    return new CudaDevice(ordinal, device, QueryDevice(ordinal, out _), DriverVersionText(), context, primary: false, stream);
                }
            }

            throw new DeviceException($"the CUcontext 0x{context:x} belongs to CUdevice {device}, which no ordinal names");
        });
    }

    /// <summary>The start-up both constructors share: the driver, then <paramref name="create"/>, then the kernel handle.</summary>
    private static CudaDevice Start(Func<CudaDevice> create)
    {
        CudaDevice device;
        try
        {
            EnsureResolver();
            if (LoadError is { } loadError)
            {
                throw new DeviceUnavailableException(loadError);
            }

            if (InitReason() is { } reason)
            {
                throw new DeviceUnavailableException(reason);
            }

            device = create();
        }
        catch (EntryPointNotFoundException e)
        {
            throw new DeviceUnavailableException($"the NVIDIA driver lacks a CUDA entry point CheapConv needs (driver too old?): {e.Message}");
        }

        try
        {
            device.Bind();
            if (device.IsPrimaryContext && device._stream == 0)
            {
                device.CreateOwnStream();
            }

            // On the primary context the handle is created for the device (cc_create(ordinal)), which retains that same
            // context once more and lets cc_describe say it is the device's own; on a foreign one it binds to the context
            // now current on this thread, the caller's, which it does not retain (the caller keeps it alive).
            var native = CheapConvNative.Load(CheapConvBackend.Cuda);
            device._handle = native.Create(device.IsPrimaryContext ? device.Ordinal : CheapConvNative.CurrentContext);
            device.KernelBinary = device.DescribeKernels();
            return device;
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>Creates a timer that measures GPU time between two points of this device's stream.</summary>
    public CudaEventTimer CreateTimer()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return new CudaEventTimer(this);
    }

    /// <summary>Free and total device memory (cuMemGetInfo), in bytes.</summary>
    public (long Free, long Total) GetMemoryInfo()
    {
        Bind();
        Check(cuMemGetInfo_v2(out var free, out var total), Name);
        return ((long)free, (long)total);
    }

    private protected override bool RemembersQueuedCalls => true;

    private protected override void OnQueued(string call, object? problem)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        _lastCall = call;
        _lastProblem = problem;
        _callsSinceSync++;
        // A launch queued during a capture is recorded, not run: there is nothing to wait for (and a capture refuses it).
        if (SynchronizeAfterEachLaunch && !Capturing)
        {
            Synchronize();
        }
    }

    /// <summary>Waits for the stream (cuStreamSynchronize). A kernel fault since the last synchronization is reported
    /// here as a <see cref="KernelLaunchException"/> naming the last call queued.</summary>
    public override void Synchronize()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        Bind();
        SynchronizeStream("synchronizing", HostWaitReason.Synchronize);
    }

    internal override nint AllocateBytes(long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        Bind();
        var status = cuMemAlloc_v2(out var pointer, (nuint)bytes);
        if (status != CUDA_SUCCESS)
        {
            var memory = cuMemGetInfo_v2(out var free, out var total) == CUDA_SUCCESS
                ? $" ({(long)free} of {(long)total} bytes free)"
                : "";
            throw new DeviceException(Message(status, $"{Name}: allocating {bytes} bytes{memory}", "cuMemAlloc_v2"));
        }

        lock (_allocationsLock)
        {
            _allocations.Add(pointer, bytes);
        }

        return pointer;
    }

    /// <summary>Frees an allocation. A no-op once the device is disposed (it freed everything then), false for a
    /// pointer it did not allocate, and silent when a kernel fault poisoned the context.</summary>
    internal override bool Release(nint pointer, bool byFinalizer)
    {
        lock (_allocationsLock)
        {
            if (_disposed != 0 || !_allocations.Remove(pointer))
            {
                return _disposed != 0;
            }
        }

        if (cuCtxSetCurrent(_context) != CUDA_SUCCESS)
        {
            return false;
        }

        // A kernel, copy or fill still running on the stream may read or write this memory, and cuMemFree is not
        // documented to wait for work on a non-default stream: wait here when any is queued. Errors surface at the
        // next sync.
        if (WorkQueued && cuStreamSynchronize(_stream) == CUDA_SUCCESS)
        {
            _callsSinceSync = 0;
            HostWaited(FreeWaitReason(byFinalizer), canThrow: false);
        }

        var status = cuMemFree_v2(pointer);
        return status == CUDA_SUCCESS || IsSticky(status);
    }

    internal override void CopyHostToDevice(nint destination, void* source, long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (bytes == 0)
        {
            return;
        }

        Bind();
        // Asynchronous on our stream, so it is ordered after earlier kernels; then wait, because the caller unpins
        // the host memory as soon as we return.
        var status = cuMemcpyHtoDAsync_v2(destination, source, (nuint)bytes, _stream);
        if (status != CUDA_SUCCESS)
        {
            throw CopyFailure(status, "cuMemcpyHtoDAsync_v2", $"copying {bytes} bytes to the device at 0x{destination:x}");
        }

        SynchronizeStream($"copying {bytes} bytes to the device", HostWaitReason.CopyFromHost);
    }

    internal override void CopyHostToDeviceStaged(nint destination, void* source, long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (bytes == 0)
        {
            return;
        }

        RefuseWhileCapturing("an upload");
        Bind();
        _staging ??= new CudaStaging(this, reason => HostWaited(reason));
        _staging.Upload(destination, source, bytes, _stream);
        WorkQueued = true;
    }

    internal override HostReadback CreateReadback(long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return new CudaReadback(this, bytes, reason => HostWaited(reason));
    }

    /// <summary>Throws what a failed stream-ordered call means (a fault of an earlier kernel when the error is sticky).</summary>
    internal void CheckStreamCall(int status, string call, string what)
    {
        if (status != CUDA_SUCCESS)
        {
            throw CopyFailure(status, call, what);
        }
    }

    internal override void CopyDeviceToDevice(nint destination, nint source, long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (bytes == 0)
        {
            return;
        }

        Bind();
        // Stays on the stream: ordered with the kernels around it, nothing to wait for.
        var status = cuMemcpyDtoDAsync_v2(destination, source, (nuint)bytes, _stream);
        if (status != CUDA_SUCCESS)
        {
            throw CopyFailure(status, "cuMemcpyDtoDAsync_v2", $"copying {bytes} bytes from 0x{source:x} to 0x{destination:x}");
        }

        WorkQueued = true;
    }

    internal override void CopyDeviceToHost(void* destination, nint source, long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (bytes == 0)
        {
            return;
        }

        Bind();
        var status = cuMemcpyDtoHAsync_v2(destination, source, (nuint)bytes, _stream);
        if (status != CUDA_SUCCESS)
        {
            throw CopyFailure(status, "cuMemcpyDtoHAsync_v2", $"copying {bytes} bytes from the device at 0x{source:x}");
        }

        SynchronizeStream($"copying {bytes} bytes to the host", HostWaitReason.CopyToHost);
    }

    internal override void FillBytes(nint destination, byte value, long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (bytes == 0)
        {
            return;
        }

        Bind();
        var status = cuMemsetD8Async(destination, value, (nuint)bytes, _stream);
        if (status != CUDA_SUCCESS)
        {
            throw CopyFailure(status, "cuMemsetD8Async", $"filling {bytes} bytes at 0x{destination:x} with 0x{value:x2}");
        }

        WorkQueued = true;
    }

    private protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0 || _context == 0)
        {
            return;
        }

        // Errors are ignored from here on: after a kernel fault every call fails with the same sticky error, and the
        // point of disposing is to release what can be released.
        _ = cuCtxSetCurrent(_context);
        _ = cuStreamSynchronize(_stream);
        _staging?.Release();

        // The primary context outlives us (others retain it), and a foreign one belongs to the caller: free ours.
        lock (_allocationsLock)
        {
            foreach (var pointer in _allocations.Keys)
            {
                _ = cuMemFree_v2(pointer);
            }

            _allocations.Clear();
        }

        if (_ownsStream)
        {
            _ = cuStreamDestroy_v2(_stream);
            (_stream, _ownsStream) = (0, false);
        }

        // cc_destroy unloads the kernels from the context, which must still be alive.
        _handle?.Dispose();
        _handle = null;
        if (IsPrimaryContext)
        {
            if (cuCtxGetCurrent(out var current) == CUDA_SUCCESS && current == _context)
            {
                _ = cuCtxSetCurrent(0);
            }

            _ = cuDevicePrimaryCtxRelease_v2(DeviceHandle);
        }

        _context = 0;
    }

    /// <summary>
    /// Makes a non-blocking stream of the device's own the one all its work goes to (context current). A driver without
    /// cuStreamCreate (the entry points are optional) leaves the legacy default stream, on which only a capture is refused.
    /// </summary>
    private void CreateOwnStream()
    {
        try
        {
            Check(cuStreamCreate(out var stream, CU_STREAM_NON_BLOCKING), $"{Name}: creating the device's stream");
            (_stream, _ownsStream) = (stream, true);
        }
        catch (EntryPointNotFoundException)
        {
        }
    }

    /// <summary>Makes our context current on the calling thread (contexts are per OS thread).</summary>
    internal void Bind()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        Check(cuCtxSetCurrent(_context), Name);
    }

    private static int Attribute(int attribute, int device)
    {
        Check(cuDeviceGetAttribute(out var value, attribute, device), $"cuda device {device}: reading attribute {attribute}");
        return value;
    }

    /// <summary>Null when cuInit succeeds, else why not.</summary>
    private static string? InitReason()
    {
        var status = cuInit(0);
        return status == CUDA_SUCCESS ? null : $"cuInit failed: {Describe(status)}";
    }

    private static string DriverVersionText() => cuDriverGetVersion(out var raw) == CUDA_SUCCESS ? FormatVersion(raw) : "unknown";

    private static string FormatVersion(int raw) => $"{raw / 1000}.{raw % 1000 / 10}";

    private static CudaDeviceInfo QueryDevice(int ordinal, out int device)
    {
        var context = $"cuda:{ordinal}";
        Check(cuDeviceGet(out device, ordinal), context);
        const int NameCapacity = 256;
        var name = stackalloc byte[NameCapacity];
        Check(cuDeviceGetName(name, NameCapacity, device), context);
        Check(cuDeviceTotalMem_v2(out var total, device), context);
        return new CudaDeviceInfo(
            ordinal,
            Marshal.PtrToStringUTF8((nint)name) ?? "unknown GPU",
            Attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
            Attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
            (long)total,
            Attribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device),
            Attribute(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, device),
            Attribute(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, device),
            Attribute(CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, device),
            OptionalAttribute(CU_DEVICE_ATTRIBUTE_CLOCK_RATE, device),
            OptionalAttribute(CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, device),
            OptionalAttribute(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, device));
    }

    // Clock attributes are deprecated in recent CUDA versions: 0 (unknown) rather than a failed probe.
    private static int OptionalAttribute(int attribute, int device) =>
        cuDeviceGetAttribute(out var value, attribute, device) == CUDA_SUCCESS ? value : 0;

    /// <summary>cuStreamSynchronize, counted as a host wait for <paramref name="reason"/>; a failure is reported against
    /// the calls it was waiting for.</summary>
    private void SynchronizeStream(string what, string reason)
    {
        var status = cuStreamSynchronize(_stream);
        if (status != CUDA_SUCCESS)
        {
            throw AsynchronousFailure(status, "cuStreamSynchronize", what);
        }

        _callsSinceSync = 0;
        HostWaited(reason);
    }

    private DeviceException CopyFailure(int status, string call, string what) =>
        IsSticky(status) && _lastCall is not null
            ? AsynchronousFailure(status, call, what)
            : new DeviceException(Message(status, $"{Name}: {what}", call));

    /// <summary>
    /// An error reported by a later call than the one that caused it. Kernel faults are blamed on the last call
    /// queued, saying how many were pending, since any of them may be the culprit.
    /// </summary>
    private DeviceException AsynchronousFailure(int status, string call, string what)
    {
        if (_lastCall is null || (!IsSticky(status) && _callsSinceSync == 0))
        {
            return new DeviceException(Message(status, $"{Name}: {what}", call));
        }

        var culprit = _callsSinceSync switch
        {
            0 => "it was queued before the last successful synchronization, so the fault is in a later copy or fill, or was already reported",
            1 => "it was the only kernel call since the last synchronization, so it is the one that faulted",
            _ => $"it was the last of {_callsSinceSync} kernel calls since the last synchronization and the fault may be in any of them " +
                $"(set {SynchronizeEnvironmentVariable}=1 to synchronize after each call)",
        };
        var sticky = IsSticky(status)
            ? "; the CUDA context is now unusable: dispose this device and open a new one"
            : "";
        return new KernelLaunchException(Name, _lastCall, _lastProblem is null ? "" : $"problem: {_lastProblem}", ErrorName(status),
            $"{ErrorString(status)}; reported by {call} while {what}; {culprit}{sticky}");
    }
}
