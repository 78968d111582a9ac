using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using CheapConv.Kernels;
using static CheapConv.Devices.CudaDriver;

namespace CheapConv.Devices;

/// <summary>What <see cref="CudaDevice.Probe"/> learned about one GPU.</summary>
/// <param name="Ordinal">The CUDA device ordinal (cuda:N).</param>
/// <param name="Name">The driver's device name, e.g. "NVIDIA H100 80GB HBM3".</param>
/// <param name="ComputeCapabilityMajor">e.g. 9 for an H100.</param>
/// <param name="ComputeCapabilityMinor">e.g. 0 for an H100.</param>
/// <param name="TotalMemoryBytes">Global memory.</param>
/// <param name="MultiprocessorCount">Number of SMs.</param>
/// <param name="MaxSharedMemoryPerBlockOptIn">Largest shared memory a block may use after opting in
/// (<see cref="CudaDevice.SetMaxDynamicSharedBytes"/>), e.g. 232448 on an H100.</param>
/// <param name="L2CacheBytes">L2 cache size.</param>
/// <param name="PciBusId">PCI bus number, to match the device with nvidia-smi's list.</param>
/// <param name="ClockRateKHz">Peak SM clock (0 where the driver no longer reports it).</param>
/// <param name="MemoryClockRateKHz">Peak memory clock (0 where the driver no longer reports it).</param>
/// <param name="MemoryBusWidthBits">Global memory bus width.</param>
public sealed record CudaDeviceInfo(
    int Ordinal,
    string Name,
    int ComputeCapabilityMajor,
    int ComputeCapabilityMinor,
    long TotalMemoryBytes,
    int MultiprocessorCount,
    int MaxSharedMemoryPerBlockOptIn,
    int L2CacheBytes,
    int PciBusId,
    int ClockRateKHz,
    int MemoryClockRateKHz,
    int MemoryBusWidthBits)
{
    /// <summary>
    /// Peak fp32 rate in FLOP/s (an FMA counts 2): SMs × fp32 lanes per SM × 2 × clock. Lanes per SM by
    /// architecture: 64 on sm_60/sm_70/sm_80 (A100), 128 on sm_61, sm_86, sm_89 and sm_90 (H100).
    /// Null when the clock is unknown. The roofline of the benchmarks.
    /// </summary>
    public double? PeakFp32Flops => ClockRateKHz <= 0 ? null
        : MultiprocessorCount * (double)Fp32LanesPerSm * 2 * ClockRateKHz * 1e3;

    /// <summary>Peak DRAM bandwidth in bytes/s: 2 transfers per memory clock × bus width. Null when unknown.</summary>
    public double? PeakMemoryBytesPerSecond => MemoryClockRateKHz <= 0 || MemoryBusWidthBits <= 0 ? null
        : 2.0 * MemoryClockRateKHz * 1e3 * MemoryBusWidthBits / 8;

    private int Fp32LanesPerSm => (ComputeCapabilityMajor, ComputeCapabilityMinor) switch
    {
        (6, 0) or (7, _) or (8, 0) => 64,
        _ => 128,
    };

    /// <summary>"9.0".</summary>
    public string ComputeCapability => $"{ComputeCapabilityMajor}.{ComputeCapabilityMinor}";

    /// <summary>"sm_90": the architecture the driver JIT-compiles our PTX for.</summary>
    public string Architecture => $"sm_{ComputeCapabilityMajor}{ComputeCapabilityMinor}";

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"cuda:{Ordinal} {Name}: compute capability {ComputeCapability} ({Architecture}), " +
        $"{TotalMemoryBytes / (1024.0 * 1024 * 1024):F1} GiB, {MultiprocessorCount} SMs, " +
        $"{L2CacheBytes / (1024 * 1024)} MiB L2, {MaxSharedMemoryPerBlockOptIn / 1024} KiB shared memory per block (opt-in), " +
        $"PCI bus {PciBusId:x2}");
}

/// <summary>
/// Whether CUDA can be used on this machine, and what it has. <see cref="CudaDevice.Probe"/> never throws:
/// everything it could not do ends up in <see cref="Reason"/>.
/// </summary>
/// <param name="IsAvailable">True when the driver loaded, initialised and reports at least one device.</param>
/// <param name="Reason">One line saying why CUDA cannot be used; null when <paramref name="IsAvailable"/>.</param>
/// <param name="Library">The driver library that was loaded ("libcuda.so.1"), or null.</param>
/// <param name="DriverVersion">The CUDA version the driver supports (cuDriverGetVersion), e.g. "12.4"; null
/// when the driver could not be loaded. This is not the display-driver version nvidia-smi prints
/// (e.g. 550.54.15), which the driver API does not expose.</param>
/// <param name="Devices">One entry per device, in ordinal order.</param>
public sealed record CudaProbe(
    bool IsAvailable,
    string? Reason,
    string? Library,
    string? DriverVersion,
    IReadOnlyList<CudaDeviceInfo> Devices)
{
    /// <summary>Lines for <c>cheapconv info</c>.</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        if (IsAvailable)
        {
            text.Append(CultureInfo.InvariantCulture, $"CUDA: driver {Library}, CUDA {DriverVersion}, {Devices.Count} device(s)");
        }
        else
        {
            text.Append(CultureInfo.InvariantCulture, $"CUDA: unavailable: {Reason}");
        }

        foreach (var device in Devices)
        {
            text.Append('\n').Append("  ").Append(device);
        }

        return text.ToString();
    }
}

/// <summary>Resource use of one compiled kernel, as the driver reports it after JIT compilation.</summary>
/// <param name="Module">The PTX module (native/kernels file) it came from.</param>
/// <param name="Registers">Registers per thread.</param>
/// <param name="StaticSharedBytes">Statically declared <c>__shared__</c> memory per block.</param>
/// <param name="LocalBytes">Local memory (register spills, stack) per thread.</param>
/// <param name="MaxThreadsPerBlock">Largest block this kernel can be launched with (fewer than 1024 when
/// it needs many registers).</param>
/// <param name="MaxDynamicSharedBytes">Current limit for the launch's dynamic shared memory.</param>
public sealed record CudaKernelAttributes(
    string Module, int Registers, int StaticSharedBytes, int LocalBytes, int MaxThreadsPerBlock, int MaxDynamicSharedBytes);

/// <summary>
/// A real NVIDIA GPU driven through the CUDA driver API: the embedded PTX modules are JIT-compiled by the
/// driver when the device opens, launches go to the device's own stream, copies to the host wait for them.
/// </summary>
/// <remarks>
/// <para>
/// Contexts: the device creates its own context (cuCtxCreate) and falls back to retaining the device's
/// primary context when that fails. A CUDA context is current per OS thread, and xunit, async code and
/// the thread pool move work between threads, so every method makes the context current on the calling
/// thread before its first driver call (cuCtxSetCurrent is a thread-local store).
/// </para>
/// <para>
/// Errors: a kernel that faults (illegal address, misaligned access, trap) is reported by whichever call
/// comes next — <see cref="Synchronize"/>, a copy to the host, a later launch — and leaves the context
/// unusable. Those reports are <see cref="KernelLaunchException"/>s that name the last kernel launched and
/// how many launches were pending; set <see cref="SynchronizeAfterEachLaunch"/> (or the environment variable
/// CHEAPCONV_CUDA_SYNC=1) to pin a fault on the exact launch.
/// </para>
/// <para>
/// Lifetime: disposing the device frees every buffer still allocated on it, unloads the modules and
/// destroys the stream and the context. Buffers disposed after their device are a no-op, never a crash.
/// There is no finalizer: a device that is never disposed is released when the process exits.
/// </para>
/// <para>
/// Thread safety: launches, copies and frees may come from any thread, one at a time; concurrent calls on
/// one device are not supported (they would share one stream with no ordering between them).
/// </para>
/// </remarks>
public sealed unsafe class CudaDevice : Device
{
    /// <summary>Set to 1 to synchronize after every launch, so a faulting kernel is reported by its own launch.</summary>
    public const string SynchronizeEnvironmentVariable = "CHEAPCONV_CUDA_SYNC";

    /// <summary>Set to 1 to ignore fatbin files and always JIT-compile the embedded PTX.</summary>
    public const string PtxOnlyEnvironmentVariable = "CHEAPCONV_CUDA_PTX_ONLY";

    /// <summary>What a block may use without opting in (the CUDA default for every kernel).</summary>
    public const int DefaultDynamicSharedLimit = 48 * 1024;

    private const int JitLogBytes = 64 * 1024;

    private readonly Dictionary<string, Kernel> _kernels = new(StringComparer.Ordinal);
    private readonly List<nint> _modules = [];
    private readonly List<string> _moduleSources = [];
    private readonly List<string> _kernelNames = [];
    private readonly Dictionary<nint, long> _allocations = [];
    private readonly Lock _allocationsLock = new();
    private readonly int _maxThreadsPerBlock;
    private readonly (int X, int Y, int Z) _maxBlock;
    private readonly (int X, int Y, int Z) _maxGrid;
    private nint _context;
    private nint _stream;
    private int _disposed;

    // Asynchronous errors surface later than the launch that caused them; these say which launch that was.
    private string? _lastKernel;
    private LaunchConfig _lastConfig;
    private string _lastProblem = "";
    private int _launchesSinceSync;

    private CudaDevice(int ordinal, int device, CudaDeviceInfo info, string driverVersion)
    {
        Ordinal = ordinal;
        DeviceHandle = device;
        Info = info;
        DriverVersion = driverVersion;
        Name = $"{info.Name} (cuda:{ordinal})";
        _maxThreadsPerBlock = Attribute(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, device);
        _maxBlock = (Attribute(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, device), Attribute(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, device),
            Attribute(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, device));
        _maxGrid = (Attribute(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, device), Attribute(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, device),
            Attribute(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, device));
        SynchronizeAfterEachLaunch = Environment.GetEnvironmentVariable(SynchronizeEnvironmentVariable) == "1";
    }

    public override DeviceKind Kind => DeviceKind.Cuda;

    /// <summary>"NVIDIA H100 80GB HBM3 (cuda:0)".</summary>
    public override string Name { get; }

    /// <summary>The CUDA device ordinal this device was opened with.</summary>
    public int Ordinal { get; }

    /// <summary>What the driver says about the GPU.</summary>
    public CudaDeviceInfo Info { get; }

    /// <summary>The CUDA version the driver supports, e.g. "12.4".</summary>
    public string DriverVersion { get; }

    /// <summary>True when the device created its own context; false when it fell back to the primary
    /// context (see <see cref="ContextNote"/>).</summary>
    public bool OwnsContext { get; private set; }

    /// <summary>How the context was obtained, e.g. "own context" or "primary context (cuCtxCreate_v2 failed with ...)".</summary>
    public string ContextNote { get; private set; } = "";

    /// <summary>The CUcontext, for handing our buffers to other CUDA code (ILGPU, a PyTorch extension).</summary>
    public nint ContextHandle => _context;

    /// <summary>The CUstream all launches, copies and fills go to.</summary>
    public nint StreamHandle => _stream;

    /// <summary>The CUdevice handle.</summary>
    public int DeviceHandle { get; }

    /// <summary>One line per module: where its code came from (PTX JIT or a fatbin file).</summary>
    public IReadOnlyList<string> ModuleSources => _moduleSources;

    public override IReadOnlyList<string> KernelNames => _kernelNames;

    /// <summary>Synchronize after every launch, so that a kernel fault is reported by the launch that caused
    /// it instead of a later call. Slower; for debugging. Defaults to $CHEAPCONV_CUDA_SYNC == "1".</summary>
    public bool SynchronizeAfterEachLaunch { get; set; }

    /// <summary>Bytes currently allocated through this device.</summary>
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
    /// Says whether CUDA can be used here and lists the GPUs. Never throws: a missing driver, a failed
    /// cuInit or no device gives <see cref="CudaProbe.IsAvailable"/> false and a one-line reason.
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
    /// Opens GPU <paramref name="ordinal"/>: creates a context and a stream and JIT-compiles every embedded
    /// PTX module. Throws <see cref="DeviceUnavailableException"/> (with <see cref="Probe"/>'s reason) when
    /// there is no usable GPU, and <see cref="DeviceException"/> when a module does not compile.
    /// </summary>
    public static CudaDevice Open(int ordinal = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ordinal);
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

            var info = QueryDevice(ordinal, out var handle);
            var driverVersion = cuDriverGetVersion(out var raw) == CUDA_SUCCESS ? FormatVersion(raw) : "unknown";
            device = new CudaDevice(ordinal, handle, info, driverVersion);
        }
        catch (EntryPointNotFoundException e)
        {
            throw new DeviceUnavailableException($"the NVIDIA driver lacks a CUDA entry point CheapConv needs (driver too old?): {e.Message}");
        }

        try
        {
            device.CreateContextAndStream();
            device.LoadModules();
            return device;
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Raises the dynamic shared memory <paramref name="kernel"/> may be launched with beyond the default
    /// 48 KiB (cuFuncSetAttribute MAX_DYNAMIC_SHARED_SIZE_BYTES), up to the device's opt-in limit minus the
    /// kernel's static shared memory.
    /// </summary>
    public void SetMaxDynamicSharedBytes(string kernel, int bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        var function = _kernels.TryGetValue(kernel, out var found)
            ? found
            : throw new ArgumentException($"no kernel named '{kernel}' on {Name}", nameof(kernel));
        var limit = Info.MaxSharedMemoryPerBlockOptIn - function.StaticSharedBytes;
        if (bytes > limit)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes,
                $"{kernel} has {function.StaticSharedBytes} B of static shared memory; {Name} allows at most {Info.MaxSharedMemoryPerBlockOptIn} B per block, so at most {limit} B dynamic");
        }

        Bind();
        Check(cuFuncSetAttribute(function.Handle, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes), $"{Name}: raising {kernel}'s dynamic shared memory to {bytes} B");
        function.MaxDynamicSharedBytes = bytes;
    }

    /// <summary>Registers, shared and local memory of a kernel as compiled for this GPU.</summary>
    public CudaKernelAttributes GetKernelAttributes(string kernel)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var k = _kernels.TryGetValue(kernel, out var found)
            ? found
            : throw new ArgumentException($"no kernel named '{kernel}' on {Name}", nameof(kernel));
        return new CudaKernelAttributes(k.Module, k.Registers, k.StaticSharedBytes, k.LocalBytes, k.MaxThreadsPerBlock, k.MaxDynamicSharedBytes);
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

    public override void Launch(string kernel, LaunchConfig config, void** args, string problem)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (!_kernels.TryGetValue(kernel, out var function))
        {
            throw new KernelLaunchException(Name, kernel, config, problem, "CUDA_ERROR_NOT_FOUND",
                $"no kernel of that name in the loaded PTX modules; known kernels: {string.Join(", ", KernelNames)}");
        }

        if (Validate(function, config) is { } invalid)
        {
            throw new KernelLaunchException(Name, kernel, config, problem, "CUDA_ERROR_INVALID_VALUE", invalid);
        }

        Bind();
        var status = cuLaunchKernel(function.Handle, config.Grid.X, config.Grid.Y, config.Grid.Z,
            config.Block.X, config.Block.Y, config.Block.Z, config.DynamicSharedBytes, _stream, args, null);
        if (status != CUDA_SUCCESS)
        {
            if (IsSticky(status) && _lastKernel is not null)
            {
                // The launch itself is fine: an earlier kernel faulted and poisoned the context.
                throw AsynchronousFailure(status, "cuLaunchKernel", $"launching {kernel} ({config}; problem: {problem})");
            }

            throw new KernelLaunchException(Name, kernel, config, problem, ErrorName(status), LaunchDetail(status, function));
        }

        _lastKernel = kernel;
        _lastConfig = config;
        _lastProblem = problem;
        _launchesSinceSync++;
        if (SynchronizeAfterEachLaunch)
        {
            Synchronize();
        }
    }

    /// <summary>Waits for the stream (cuStreamSynchronize). A kernel fault since the last synchronization is
    /// reported here as a <see cref="KernelLaunchException"/> naming the last launch.</summary>
    public override void Synchronize()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        Bind();
        SynchronizeStream("synchronizing");
    }

    protected internal override nint AllocateBytes(long bytes)
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

    /// <summary>Frees a buffer. A no-op once the device is disposed (its memory went with the context), and
    /// silent when the context was poisoned by a kernel fault, because it runs from Dispose.</summary>
    protected internal override void Free(nint pointer)
    {
        if (_disposed != 0 || pointer == 0)
        {
            return;
        }

        lock (_allocationsLock)
        {
            if (!_allocations.Remove(pointer))
            {
                throw new ArgumentException($"0x{pointer:x} is not a live allocation of {Name}", nameof(pointer));
            }
        }

        Bind();
        // A kernel still running on the stream may read this memory; cuMemFree is not documented to wait
        // for our non-blocking stream, so wait here when work is pending. Errors surface at the next sync.
        if (_launchesSinceSync > 0 && cuStreamSynchronize(_stream) == CUDA_SUCCESS)
        {
            _launchesSinceSync = 0;
        }

        var status = cuMemFree_v2(pointer);
        if (status != CUDA_SUCCESS && !IsSticky(status))
        {
            throw new DeviceException(Message(status, $"{Name}: freeing 0x{pointer:x}", "cuMemFree_v2"));
        }
    }

    protected internal override void CopyHostToDevice(nint destination, void* source, long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (bytes == 0)
        {
            return;
        }

        Bind();
        // Asynchronous on our stream, so it is ordered after earlier launches; then wait, because the caller
        // unpins the host memory as soon as we return.
        var status = cuMemcpyHtoDAsync_v2(destination, source, (nuint)bytes, _stream);
        if (status != CUDA_SUCCESS)
        {
            throw CopyFailure(status, "cuMemcpyHtoDAsync_v2", $"copying {bytes} bytes to the device at 0x{destination:x}");
        }

        SynchronizeStream($"copying {bytes} bytes to the device");
    }

    protected internal override void CopyDeviceToDevice(nint destination, nint source, long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (bytes == 0)
        {
            return;
        }

        Bind();
        // Stays on the stream: ordered with the launches around it, nothing to wait for.
        var status = cuMemcpyDtoDAsync_v2(destination, source, (nuint)bytes, _stream);
        if (status != CUDA_SUCCESS)
        {
            throw CopyFailure(status, "cuMemcpyDtoDAsync_v2", $"copying {bytes} bytes from 0x{source:x} to 0x{destination:x}");
        }
    }

    protected internal override void CopyDeviceToHost(void* destination, nint source, long bytes)
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

        SynchronizeStream($"copying {bytes} bytes to the host");
    }

    protected internal override void FillBytes(nint destination, byte value, long bytes)
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
    }

    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0 || _context == 0)
        {
            return;
        }

        // Errors are ignored from here on: after a kernel fault every call fails with the same sticky error,
        // and the point of disposing is to release what can be released.
        _ = cuCtxSetCurrent(_context);
        if (_stream != 0)
        {
            _ = cuStreamSynchronize(_stream);
        }

        // Our own context takes its memory with it, but the primary context may outlive us (others retain it).
        lock (_allocationsLock)
        {
            foreach (var pointer in _allocations.Keys)
            {
                _ = cuMemFree_v2(pointer);
            }

            _allocations.Clear();
        }

        foreach (var module in _modules)
        {
            _ = cuModuleUnload(module);
        }

        _modules.Clear();
        if (_stream != 0)
        {
            _ = cuStreamDestroy_v2(_stream);
            _stream = 0;
        }

        if (OwnsContext)
        {
            _ = cuCtxDestroy_v2(_context);
        }
        else
        {
            _ = cuCtxSetCurrent(0);
            _ = cuDevicePrimaryCtxRelease_v2(DeviceHandle);
        }

        _context = 0;
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

    private void CreateContextAndStream()
    {
        var status = cuCtxCreate_v2(out var context, CU_CTX_SCHED_AUTO, DeviceHandle);
        if (status == CUDA_SUCCESS)
        {
            _context = context;
            OwnsContext = true;
            ContextNote = "own context";
        }
        else
        {
            // DESIGN.md: ILGPU reported context-creation trouble on H100; the primary context (the one the
            // CUDA runtime and PyTorch use) is the fallback that always exists.
            var primary = cuDevicePrimaryCtxRetain(out context, DeviceHandle);
            if (primary != CUDA_SUCCESS)
            {
                throw new DeviceUnavailableException(
                    $"{Name}: cannot get a CUDA context: cuCtxCreate_v2 failed with {Describe(status)} and cuDevicePrimaryCtxRetain with {Describe(primary)}");
            }

            _context = context;
            OwnsContext = false;
            ContextNote = $"primary context (cuCtxCreate_v2 failed with {ErrorName(status)})";
        }

        Bind();
        // Non-blocking: our stream does not wait for (or hold up) the legacy default stream that other CUDA
        // code in the process may use. Everything of ours is ordered on this one stream.
        Check(cuStreamCreate(out var stream, CU_STREAM_NON_BLOCKING), $"{Name}: creating a stream");
        _stream = stream;
    }

    private void LoadModules()
    {
        var ptxOnly = Environment.GetEnvironmentVariable(PtxOnlyEnvironmentVariable) == "1";
        foreach (var module in PtxModules.All)
        {
            var (handle, source) = ptxOnly ? (LoadPtx(module), "") : LoadFatbinOrPtx(module);
            _modules.Add(handle);
            _moduleSources.Add(source.Length > 0
                ? source
                : $"{module.Name}: PTX {module.Version} {module.Target}, JIT-compiled by the driver for {Info.Architecture}");
            foreach (var entry in module.Entries)
            {
                if (_kernels.TryGetValue(entry, out var existing))
                {
                    throw new DeviceException($"{Name}: kernel {entry} is defined by two PTX modules, {existing.Module} and {module.Name}; kernel names must be unique");
                }

                var function = GetFunction(handle, entry);
                if (function == 0)
                {
                    throw new DeviceException($"{Name}: module {module.Name} lists the entry {entry} but the driver does not find it (cuModuleGetFunction returned CUDA_ERROR_NOT_FOUND)");
                }

                _kernels.Add(entry, ReadKernel(module.Name, function));
            }
        }

        _kernelNames.AddRange(_kernels.Keys.Order(StringComparer.Ordinal));
    }

    /// <summary>The function, or 0 when the module lacks it; other errors throw.</summary>
    private nint GetFunction(nint module, string entry)
    {
        var name = Encoding.UTF8.GetBytes(entry + "\0");
        fixed (byte* pointer = name)
        {
            var status = cuModuleGetFunction(out var function, module, pointer);
            if (status == CUDA_ERROR_NOT_FOUND)
            {
                return 0;
            }

            Check(status, $"{Name}: looking up kernel {entry}");
            return function;
        }
    }

    private Kernel ReadKernel(string module, nint function)
    {
        int Get(int attribute)
        {
            Check(cuFuncGetAttribute(out var value, attribute, function), $"{Name}: reading kernel attribute {attribute}");
            return value;
        }

        return new Kernel(module, function)
        {
            Registers = Get(CU_FUNC_ATTRIBUTE_NUM_REGS),
            StaticSharedBytes = Get(CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES),
            LocalBytes = Get(CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES),
            MaxThreadsPerBlock = Get(CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK),
            MaxDynamicSharedBytes = Get(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES),
        };
    }

    private nint LoadPtx(PtxModule module)
    {
        var image = Encoding.UTF8.GetBytes(module.Text + "\0");
        var (status, handle, log) = LoadImage(image);
        if (status == CUDA_SUCCESS)
        {
            return handle;
        }

        var hint = status == 222 // CUDA_ERROR_UNSUPPORTED_PTX_VERSION
            ? $" The driver supports CUDA {DriverVersion}, older than PTX ISA {module.Version} needs: update the NVIDIA driver."
            : "";
        throw new DeviceException(
            $"{Name}: the CUDA driver could not JIT-compile PTX module '{module.Name}' (.version {module.Version}, .target {module.Target}) " +
            $"for {Info.Architecture}: cuModuleLoadDataEx failed with {Describe(status)}.{hint}" +
            (log.Length > 0 ? $"\nJIT log:\n{log}" : " The JIT log is empty."));
    }

    /// <summary>
    /// Prefers a fatbin/cubin built by nvcc on a GPU machine (fatbin/&lt;module&gt;.fatbin or &lt;module&gt;.cubin
    /// beside the assembly) when it loads and defines every entry of the PTX module; otherwise the PTX.
    /// </summary>
    private (nint Handle, string Source) LoadFatbinOrPtx(PtxModule module)
    {
        var directory = AppContext.BaseDirectory;
        var candidates = new[]
        {
            Path.Combine(directory, "fatbin", module.Name + ".fatbin"),
            Path.Combine(directory, module.Name + ".fatbin"),
            Path.Combine(directory, "fatbin", $"{module.Name}.{Info.Architecture}.cubin"),
        };
        var path = candidates.FirstOrDefault(File.Exists);
        if (path is null)
        {
            return (LoadPtx(module), "");
        }

        var (status, handle, _) = LoadImage(File.ReadAllBytes(path));
        string why;
        if (status == CUDA_SUCCESS)
        {
            var missing = module.Entries.FirstOrDefault(entry => GetFunction(handle, entry) == 0);
            if (missing is null)
            {
                return (handle, $"{module.Name}: {path} (nvcc binary; the PTX is not used)");
            }

            _ = cuModuleUnload(handle);
            why = $"it lacks the entry {missing}";
        }
        else
        {
            why = $"cuModuleLoadDataEx failed with {ErrorName(status)}";
        }

        return (LoadPtx(module), $"{module.Name}: PTX {module.Version} {module.Target}, JIT-compiled for {Info.Architecture} ({path} not used: {why})");
    }

    private (int Status, nint Handle, string Log) LoadImage(byte[] image)
    {
        var log = new byte[JitLogBytes];
        int* options = stackalloc int[2] { CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES };
        void** values = stackalloc void*[2];
        fixed (byte* imagePointer = image)
        fixed (byte* logPointer = log)
        {
            values[0] = logPointer;
            values[1] = (void*)(nint)log.Length; // an integer option travels in the pointer slot
            Bind();
            var status = cuModuleLoadDataEx(out var handle, imagePointer, 2, options, values);
            var length = Array.IndexOf(log, (byte)0);
            var text = Encoding.UTF8.GetString(log, 0, length < 0 ? log.Length : length).Trim();
            return (status, status == CUDA_SUCCESS ? handle : 0, text);
        }
    }

    private string? Validate(Kernel function, LaunchConfig config)
    {
        var (grid, block) = (config.Grid, config.Block);
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0 || block.X == 0 || block.Y == 0 || block.Z == 0)
        {
            return "grid and block dimensions must all be at least 1";
        }

        if (block.X > _maxBlock.X || block.Y > _maxBlock.Y || block.Z > _maxBlock.Z)
        {
            return $"block {block} exceeds the device's maximum block dimensions ({_maxBlock.X},{_maxBlock.Y},{_maxBlock.Z})";
        }

        if (block.Volume > _maxThreadsPerBlock)
        {
            return $"{block.Volume} threads per block exceeds the device's limit of {_maxThreadsPerBlock}";
        }

        if (block.Volume > function.MaxThreadsPerBlock)
        {
            return $"{block.Volume} threads per block exceeds this kernel's limit of {function.MaxThreadsPerBlock} " +
                $"(it needs {function.Registers} registers per thread)";
        }

        if (grid.X > _maxGrid.X || grid.Y > _maxGrid.Y || grid.Z > _maxGrid.Z)
        {
            return $"grid {grid} exceeds the device's maximum grid dimensions ({_maxGrid.X},{_maxGrid.Y},{_maxGrid.Z})";
        }

        if (config.DynamicSharedBytes > function.MaxDynamicSharedBytes)
        {
            return $"{config.DynamicSharedBytes} B of dynamic shared memory exceeds this kernel's limit of {function.MaxDynamicSharedBytes} B " +
                $"(static shared {function.StaticSharedBytes} B); more than {DefaultDynamicSharedLimit / 1024} KiB needs " +
                $"{nameof(SetMaxDynamicSharedBytes)} first, up to {Info.MaxSharedMemoryPerBlockOptIn} B per block in all on this GPU";
        }

        return null;
    }

    private static string LaunchDetail(int status, Kernel function)
    {
        var detail = ErrorString(status);
        return status == 701 // CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES
            ? $"{detail}; the kernel uses {function.Registers} registers and {function.LocalBytes} B of local memory per thread"
            : detail;
    }

    /// <summary>cuStreamSynchronize; a failure is reported against the launches it was waiting for.</summary>
    private void SynchronizeStream(string what)
    {
        var status = cuStreamSynchronize(_stream);
        if (status != CUDA_SUCCESS)
        {
            throw AsynchronousFailure(status, "cuStreamSynchronize", what);
        }

        _launchesSinceSync = 0;
    }

    private DeviceException CopyFailure(int status, string call, string what) =>
        IsSticky(status) && _lastKernel is not null
            ? AsynchronousFailure(status, call, what)
            : new DeviceException(Message(status, $"{Name}: {what}", call));

    /// <summary>
    /// An error reported by a later call than the one that caused it. Kernel faults are blamed on the last
    /// launch, saying how many launches were pending, since any of them may be the culprit.
    /// </summary>
    private DeviceException AsynchronousFailure(int status, string call, string what)
    {
        if (_lastKernel is null || (!IsSticky(status) && _launchesSinceSync == 0))
        {
            return new DeviceException(Message(status, $"{Name}: {what}", call));
        }

        var culprit = _launchesSinceSync switch
        {
            0 => "it was launched before the last successful synchronization, so the fault is in a later copy or fill, or was already reported",
            1 => "it was the only launch since the last synchronization, so it is the kernel that faulted",
            _ => $"it was the last of {_launchesSinceSync} launches since the last synchronization and the fault may be in any of them " +
                $"(set {SynchronizeEnvironmentVariable}=1 to synchronize after each launch)",
        };
        var sticky = IsSticky(status)
            ? "; the CUDA context is now unusable: dispose this device and open a new one"
            : "";
        return new KernelLaunchException(Name, _lastKernel, _lastConfig, _lastProblem, ErrorName(status),
            $"{ErrorString(status)}; reported by {call} while {what}; {culprit}{sticky}");
    }

    /// <summary>A loaded kernel and what the driver says about it.</summary>
    private sealed class Kernel(string module, nint handle)
    {
        public string Module { get; } = module;

        public nint Handle { get; } = handle;

        public int Registers { get; init; }

        public int StaticSharedBytes { get; init; }

        public int LocalBytes { get; init; }

        public int MaxThreadsPerBlock { get; init; }

        public int MaxDynamicSharedBytes { get; set; }
    }
}

/// <summary>
/// Measures GPU time on a <see cref="CudaDevice"/>'s stream with a pair of CUDA events: <see cref="Start"/>,
/// launch work, <see cref="Stop"/>, then read <see cref="ElapsedMilliseconds"/> (which waits for the stop
/// event). Resolution is about half a microsecond. Reusable: Start again for another measurement.
/// </summary>
public sealed class CudaEventTimer : IDisposable
{
    private readonly CudaDevice _device;
    private nint _start;
    private nint _stop;
    private bool _started;
    private bool _stopped;

    internal CudaEventTimer(CudaDevice device)
    {
        _device = device;
        device.Bind();
        Check(cuEventCreate(out _start, CU_EVENT_DEFAULT), $"{device.Name}: creating a timing event");
        var status = cuEventCreate(out _stop, CU_EVENT_DEFAULT);
        if (status != CUDA_SUCCESS)
        {
            _ = cuEventDestroy_v2(_start);
            _start = 0;
            Check(status, $"{device.Name}: creating a timing event");
        }
    }

    /// <summary>Records the start event on the device's stream (after all work launched so far).</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(_start == 0, this);
        _device.Bind();
        Check(cuEventRecord(_start, _device.StreamHandle), _device.Name);
        _started = true;
        _stopped = false;
    }

    /// <summary>Records the stop event on the device's stream (after all work launched since <see cref="Start"/>).</summary>
    public void Stop()
    {
        ObjectDisposedException.ThrowIf(_start == 0, this);
        if (!_started)
        {
            throw new InvalidOperationException("Stop before Start");
        }

        _device.Bind();
        Check(cuEventRecord(_stop, _device.StreamHandle), _device.Name);
        _stopped = true;
    }

    /// <summary>GPU milliseconds between <see cref="Start"/> and <see cref="Stop"/>; waits for the stop event.</summary>
    public float ElapsedMilliseconds
    {
        get
        {
            ObjectDisposedException.ThrowIf(_start == 0, this);
            if (!_stopped)
            {
                throw new InvalidOperationException("ElapsedMilliseconds needs Start and Stop first");
            }

            _device.Bind();
            Check(cuEventSynchronize(_stop), $"{_device.Name}: waiting for the timed work");
            Check(cuEventElapsedTime(out var milliseconds, _start, _stop), _device.Name);
            return milliseconds;
        }
    }

    /// <summary>Destroys the events; a no-op after the device was disposed (they went with its context).</summary>
    public void Dispose()
    {
        if (_start == 0)
        {
            return;
        }

        if (_device.ContextHandle != 0)
        {
            _ = cuCtxSetCurrent(_device.ContextHandle);
            _ = cuEventDestroy_v2(_start);
            _ = cuEventDestroy_v2(_stop);
        }

        _start = 0;
        _stop = 0;
    }
}
