using System.Runtime.InteropServices;
using System.Text;

namespace CheapConv.Devices;

/// <summary>
/// Runs the CUDA kernels on the CPU: the same native/kernels sources compiled as host C++ into the emulator
/// library (native/emu), launched by name with the same <c>void**</c> arguments a GPU gets. Memory is host
/// memory. For correctness only — never for timing.
/// </summary>
/// <remarks>
/// The library is loaded with <see cref="NativeLibrary"/> and its exports bound per instance, so tests can
/// load the variant that also holds the deliberately faulty diagnostic kernels.
/// </remarks>
public sealed unsafe class EmulatedDevice : Device
{
    /// <summary>The production emulator library, copied beside this assembly by the build.</summary>
    public const string LibraryFileName = "libcheapconv_emu.so";

    /// <summary>Environment variable that overrides where the emulator library is loaded from.</summary>
    public const string LibraryEnvironmentVariable = "CHEAPCONV_EMU_LIBRARY";

    private const int MessageCapacity = 8192;

    private readonly nint _library;
    private readonly delegate* unmanaged<byte*, Dim3, Dim3, uint, void**, byte*, int, int> _launch;
    private readonly delegate* unmanaged<int, byte*> _statusName;
    private readonly delegate* unmanaged<int, int> _setWorkerThreads;
    private readonly delegate* unmanaged<int, int> _setStrict;
    private readonly Lock _warningsLock = new();
    private readonly List<string> _warnings = [];
    private bool _disposed;

    private EmulatedDevice(nint library, string path)
    {
        _library = library;
        LibraryPath = path;
        _launch = (delegate* unmanaged<byte*, Dim3, Dim3, uint, void**, byte*, int, int>)Export("cc_emu_launch");
        _statusName = (delegate* unmanaged<int, byte*>)Export("cc_emu_status_name");
        _setWorkerThreads = (delegate* unmanaged<int, int>)Export("cc_emu_set_worker_threads");
        _setStrict = (delegate* unmanaged<int, int>)Export("cc_emu_set_strict");
        Version = ((delegate* unmanaged<int>)Export("cc_emu_version"))();

        var count = ((delegate* unmanaged<int>)Export("cc_emu_kernel_count"))();
        var name = (delegate* unmanaged<int, byte*>)Export("cc_emu_kernel_name");
        KernelNames = Enumerable.Range(0, count).Select(i => Marshal.PtrToStringUTF8((nint)name(i)) ?? "").Order().ToList();
    }

    /// <summary>
    /// Opens the emulator. Without <paramref name="libraryPath"/>, uses $CHEAPCONV_EMU_LIBRARY or the
    /// library beside this assembly.
    /// </summary>
    public static EmulatedDevice Open(string? libraryPath = null)
    {
        var path = libraryPath
            ?? Environment.GetEnvironmentVariable(LibraryEnvironmentVariable)
            ?? Path.Combine(AppContext.BaseDirectory, LibraryFileName);
        if (!File.Exists(path))
        {
            throw new DeviceUnavailableException(
                $"emulator library not found at {path}: build it with 'make -C native' (dotnet build does this) or set {LibraryEnvironmentVariable}");
        }

        try
        {
            return new EmulatedDevice(NativeLibrary.Load(path), path);
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException or EntryPointNotFoundException)
        {
            throw new DeviceUnavailableException($"emulator library {path} could not be loaded: {e.Message}");
        }
    }

    public string LibraryPath { get; }

    /// <summary>The emulator library's version number (cc_emu_version).</summary>
    public int Version { get; }

    public override DeviceKind Kind => DeviceKind.Emulated;

    public override string Name => "emulator";

    public override IReadOnlyList<string> KernelNames { get; }

    /// <summary>
    /// Diagnostics the emulator reported for launches that still succeeded (e.g. threads that returned
    /// while others waited at a barrier). Cleared by <see cref="TakeWarnings"/>.
    /// </summary>
    public IReadOnlyList<string> TakeWarnings()
    {
        lock (_warningsLock)
        {
            var result = _warnings.ToList();
            _warnings.Clear();
            return result;
        }
    }

    /// <summary>Number of OS threads that run blocks; 0 means one per core.</summary>
    public void SetWorkerThreads(int count) => _setWorkerThreads(count);

    /// <summary>In strict mode, what is a warning by default (threads that left before a barrier) fails the launch.</summary>
    public void SetStrict(bool strict) => _setStrict(strict ? 1 : 0);

    public override void Launch(string kernel, LaunchConfig config, void** args, string problem)
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
            throw new KernelLaunchException(Name, kernel, config, problem, statusName, text);
        }

        if (text.Length > 0)
        {
            lock (_warningsLock)
            {
                _warnings.Add($"{kernel}: {text}");
            }
        }
    }

    /// <summary>Launches are synchronous in the emulator: nothing is ever pending.</summary>
    public override void Synchronize() => ObjectDisposedException.ThrowIf(_disposed, this);

    protected internal override nint AllocateBytes(long bytes) => (nint)NativeMemory.AlignedAlloc((nuint)bytes, 256);

    protected internal override void Free(nint pointer) => NativeMemory.AlignedFree((void*)pointer);

    protected internal override void CopyHostToDevice(nint destination, void* source, long bytes) =>
        Buffer.MemoryCopy(source, (void*)destination, bytes, bytes);

    protected internal override void CopyDeviceToHost(void* destination, nint source, long bytes) =>
        Buffer.MemoryCopy((void*)source, destination, bytes, bytes);

    protected internal override void CopyDeviceToDevice(nint destination, nint source, long bytes) =>
        Buffer.MemoryCopy((void*)source, (void*)destination, bytes, bytes);

    protected internal override void FillBytes(nint destination, byte value, long bytes) =>
        NativeMemory.Fill((void*)destination, (nuint)bytes, value);

    // The library stays loaded for the life of the process: other EmulatedDevice instances share it, and
    // unloading a library whose worker threads may still exist is unsafe.
    protected override void Dispose(bool disposing) => _disposed = true;

    private nint Export(string name) =>
        NativeLibrary.TryGetExport(_library, name, out var address)
            ? address
            : throw new DeviceUnavailableException($"emulator library {LibraryPath} lacks the export {name}: rebuild it with 'make -C native'");
}
