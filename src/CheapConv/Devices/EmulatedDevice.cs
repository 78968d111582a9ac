using System.Runtime.InteropServices;
using System.Text;
using CheapConv.Interop;

namespace CheapConv.Devices;

/// <summary>
/// Runs the CUDA kernels on the CPU: the same native/kernels sources compiled as host C++ into the emulator
/// library. Memory is host memory; the kernels run through the library's C ABI (<see cref="Device.Handle"/>), every
/// call finished when it returns. For correctness only — never for timing.
/// </summary>
/// <remarks>
/// <para>
/// The library also exports the emulator's own C API (native/emu/cc_emu.h): <see cref="Launch"/> runs any kernel
/// it holds by name with hand-packed arguments, which is how the diagnostics tests run the deliberately faulty
/// kernels of libcheapconv_emu_test.so. Its exports are bound per instance, so one process can use both files.
/// </para>
/// <para>
/// Warnings: by default the emulator lets a launch succeed with a warning where a GPU would run it but the code is
/// fragile (threads that returned while others wait at a barrier). <see cref="TakeWarnings"/> collects them, from
/// <see cref="Launch"/> and from the C ABI's calls alike; <see cref="SetStrict"/> turns them into failed calls.
/// </para>
/// </remarks>
public sealed unsafe class EmulatedDevice : Device
{
    /// <summary>The production emulator library, copied beside this assembly by the build.</summary>
    public const string LibraryFileName = CheapConvNative.EmulatorFileName;

    /// <summary>Environment variable that overrides where the emulator library is loaded from.</summary>
    public const string LibraryEnvironmentVariable = CheapConvNative.EmulatorEnvironmentVariable;

    private const int MessageCapacity = 8192;

    private readonly nint _library;
    private readonly delegate* unmanaged<byte*, Dim3, Dim3, uint, void**, byte*, int, int> _launch;
    private readonly delegate* unmanaged<int, byte*> _statusName;
    private readonly delegate* unmanaged<int, int> _setWorkerThreads;
    private readonly delegate* unmanaged<int, int> _setStrict;
    private readonly delegate* unmanaged<int, int> _setClusterKernels;
    private readonly delegate* unmanaged<byte*, nuint, nuint> _takeWarnings;
    private readonly Lock _warningsLock = new();
    private readonly List<string> _warnings = [];
    private readonly Lock _handleLock = new();
    private CheapConvHandle? _handle;
    private bool _disposed;

    private EmulatedDevice(nint library, string path)
    {
        _library = library;
        LibraryPath = path;
        _launch = (delegate* unmanaged<byte*, Dim3, Dim3, uint, void**, byte*, int, int>)Export("cc_emu_launch");
        _statusName = (delegate* unmanaged<int, byte*>)Export("cc_emu_status_name");
        _setWorkerThreads = (delegate* unmanaged<int, int>)Export("cc_emu_set_worker_threads");
        _setStrict = (delegate* unmanaged<int, int>)Export("cc_emu_set_strict");
        _setClusterKernels = (delegate* unmanaged<int, int>)Export("cc_emu_set_cluster_kernels");
        _takeWarnings = (delegate* unmanaged<byte*, nuint, nuint>)Export("cc_emu_take_warnings");
        Version = ((delegate* unmanaged<int>)Export("cc_emu_version"))();

        var count = ((delegate* unmanaged<int>)Export("cc_emu_kernel_count"))();
        var name = (delegate* unmanaged<int, byte*>)Export("cc_emu_kernel_name");
        KernelNames = Enumerable.Range(0, count).Select(i => Marshal.PtrToStringUTF8((nint)name(i)) ?? "").Order().ToList();
    }

    /// <summary>
    /// Opens the emulator. Without <paramref name="libraryPath"/>, loads $CHEAPCONV_EMU_LIBRARY or the library beside
    /// this assembly (see <see cref="CheapConvNative.Load"/> for every place tried).
    /// </summary>
    public static EmulatedDevice Open(string? libraryPath = null)
    {
        var (library, path) = CheapConvNative.LoadLibrary(LibraryFileName, LibraryEnvironmentVariable, libraryPath);
        try
        {
            return new EmulatedDevice(library, path);
        }
        catch (EntryPointNotFoundException e)
        {
            throw new DeviceUnavailableException(e.Message);
        }
    }

    public string LibraryPath { get; }

    /// <summary>The version of the emulator's own C API (cc_emu_version; the ABI's is <c>Native.Version</c>).</summary>
    public int Version { get; }

    public override DeviceKind Kind => DeviceKind.Emulated;

    public override string Name => "emulator";

    /// <summary>The kernels the library holds, for <see cref="Launch"/>.</summary>
    public IReadOnlyList<string> KernelNames { get; }

    /// <summary>
    /// The handle of the library's C ABI, created on first use (cc_create; the emulator has one "device"). A C ABI call
    /// returns only a status: what the emulator warns about in it is kept by the library for <see cref="TakeWarnings"/>
    /// (or fails the call with CC_ERROR_EMULATOR in strict mode, see <see cref="SetStrict"/>).
    /// </summary>
    public override CheapConvHandle Handle
    {
        get
        {
            lock (_handleLock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                return _handle ??= CheapConvNative.Load(CheapConvBackend.Emulator, LibraryPath).Create(0);
            }
        }
    }

    /// <summary>The emulator ignores streams: every call has finished when it returns.</summary>
    public override nint Stream => 0;

    /// <summary>
    /// Diagnostics the emulator reported for launches that still succeeded (e.g. threads that returned while others
    /// waited at a barrier), since the last call, each once: those of this device's <see cref="Launch"/>es
    /// ("KERNEL: warning: ..."), then those of the C ABI's calls ("KERNEL (grid (x,y,z), block (x,y,z)): warning: ...",
    /// cc_emu_take_warnings). The latter are kept by the library file, so they include the ABI calls of every
    /// device and handle of the same file in the process.
    /// </summary>
    public IReadOnlyList<string> TakeWarnings()
    {
        List<string> result;
        lock (_warningsLock)
        {
            result = [.. _warnings];
            _warnings.Clear();
        }

        result.AddRange(TakeLibraryWarnings().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        return result;
    }

    /// <summary>Number of OS threads that run blocks; 0 means one per core.</summary>
    public void SetWorkerThreads(int count) => _setWorkerThreads(count);

    /// <summary>In strict mode, what is a warning by default (threads that left before a barrier) fails the launch. The
    /// setting belongs to the library file, for every device and handle of it in the process. Returns the previous one.</summary>
    public bool SetStrict(bool strict) => _setStrict(strict ? 1 : 0) != 0;

    /// <summary>
    /// Whether the library's launchers may pick the thread-block-cluster kernels (true by default: the emulator stands for an
    /// H100 running the fatbin's sm_90 SASS); false makes them take the paths of a GPU without clusters (the two-launch
    /// training batch norm), for every handle of the library. Returns the previous setting.
    /// </summary>
    public bool SetClusterKernels(bool enabled) => _setClusterKernels(enabled ? 1 : 0) != 0;

    /// <summary>
    /// Runs <paramref name="kernel"/> by name with <paramref name="args"/> (args[i] points at the i-th argument's
    /// value, as for cuLaunchKernel), outside the C ABI: for diagnostics and the emulator's own tests.
    /// <paramref name="problem"/> only serves error messages.
    /// </summary>
    internal void Launch(string kernel, LaunchConfig config, void** args, string problem)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var name = Encoding.UTF8.GetBytes(kernel + "\0");
        var message = stackalloc byte[MessageCapacity];
        message[0] = 0;
        int status;
        fixed (byte* namePointer = name)
        {
            status = _launch(namePointer, config.Grid, config.Block, config.DynamicSharedBytes, args, message, MessageCapacity);
        }

        var text = Marshal.PtrToStringUTF8((nint)message) ?? "";
        if (status != 0)
        {
            var statusName = Marshal.PtrToStringUTF8((nint)_statusName(status)) ?? $"status {status}";
            throw new KernelLaunchException(Name, kernel, $"{config}; problem: {problem}", statusName, text);
        }

        if (text.Length > 0)
        {
            lock (_warningsLock)
            {
                _warnings.Add($"{kernel}: {text}");
            }
        }
    }

    /// <summary>cc_emu_take_warnings' text: asks for its length, then takes it with room for it (again if more warnings came
    /// in between: the library hands out nothing that does not fit).</summary>
    private string TakeLibraryWarnings()
    {
        var length = _takeWarnings(null, 0);
        while (length > 0)
        {
            var text = new byte[checked((int)length + 1)];
            fixed (byte* pointer = text)
            {
                var taken = _takeWarnings(pointer, (nuint)text.Length);
                if (taken < (nuint)text.Length)
                {
                    return Encoding.UTF8.GetString(text, 0, (int)taken);
                }

                length = taken;
            }
        }

        return "";
    }

    /// <summary>
    /// Launches are synchronous in the emulator: nothing is ever pending. The calls that would make the host wait on a
    /// GPU count as waits all the same (see <see cref="HostWaits"/>), so tests here see the GPU's count.
    /// </summary>
    public override void Synchronize()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        HostWaited(HostWaitReason.Synchronize);
    }

    internal override nint AllocateBytes(long bytes) => (nint)NativeMemory.AlignedAlloc((nuint)bytes, 256);

    internal override bool Release(nint pointer, bool byFinalizer)
    {
        if (WorkQueued)
        {
            HostWaited(FreeWaitReason(byFinalizer), canThrow: false);
        }

        NativeMemory.AlignedFree((void*)pointer);
        return true;
    }

    internal override void CopyHostToDevice(nint destination, void* source, long bytes)
    {
        Buffer.MemoryCopy(source, (void*)destination, bytes, bytes);
        HostWaited(HostWaitReason.CopyFromHost);
    }

    /// <summary>The emulator's device memory is host memory: the copy is done on return, and no GPU would have waited.</summary>
    internal override void CopyHostToDeviceStaged(nint destination, void* source, long bytes)
    {
        RefuseWhileCapturing("an upload");
        Buffer.MemoryCopy(source, (void*)destination, bytes, bytes);
        WorkQueued = true;
    }

    internal override void CopyDeviceToHost(void* destination, nint source, long bytes)
    {
        Buffer.MemoryCopy((void*)source, destination, bytes, bytes);
        HostWaited(HostWaitReason.CopyToHost);
    }

    /// <summary>The copy is done when <see cref="HostReadback.Start"/> returns: nothing a GPU would wait for.</summary>
    internal override HostReadback CreateReadback(long bytes) => new EmulatedReadback(this, bytes);

    // Copies and fills go through the C ABI (cc_memcpy_async, cc_memset8_async), as a GPU's go through the driver, so that
    // a capture records them with the kernels around them.
    internal override void CopyDeviceToDevice(nint destination, nint source, long bytes)
    {
        Native.MemcpyAsync(Handle, destination, source, (nuint)bytes, Stream);
        WorkQueued = true;
    }

    internal override void FillBytes(nint destination, byte value, long bytes)
    {
        Native.Memset8Async(Handle, destination, value, (nuint)bytes, Stream);
        WorkQueued = true;
    }

    // The library stays loaded for the life of the process: other EmulatedDevice instances share it, and
    // unloading a library whose worker threads may still exist is unsafe.
    private protected override void Dispose(bool disposing)
    {
        lock (_handleLock)
        {
            _disposed = true;
            _handle?.Dispose();
            _handle = null;
        }
    }

    private nint Export(string name) =>
        NativeLibrary.TryGetExport(_library, name, out var address)
            ? address
            : throw new EntryPointNotFoundException($"emulator library {LibraryPath} lacks the export {name}: rebuild it with 'make -C native'");

    private sealed class EmulatedReadback(Device device, long bytes) : HostReadback(device, bytes)
    {
        private nint _host = (nint)NativeMemory.Alloc((nuint)Math.Max(bytes, 1));

        public override bool IsDone => true;

        private protected override nint Buffer => _host;

        public override void Wait()
        {
        }

        public override void Dispose()
        {
            NativeMemory.Free((void*)_host);
            _host = 0;
        }

        private protected override void StartCopy(nint source, long length) => System.Buffer.MemoryCopy((void*)source, (void*)_host, length, length);
    }
}
