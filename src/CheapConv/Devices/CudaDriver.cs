using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace CheapConv.Devices;

/// <summary>
/// The CUDA driver API calls <see cref="CudaDevice"/> makes for memory, copies, contexts, events and the probe,
/// imported by us from <c>libcuda</c>. Kernels are libcheapconv.so's business: it loads the driver on its own.
/// </summary>
/// <remarks>
/// <para>
/// We import every call ourselves instead of going through ILGPU's <c>CudaAPI.CurrentAPI</c>, although
/// ILGPU covers about half of them: ILGPU collapses every start-up failure into a "not supported" object
/// whose methods throw <see cref="NotSupportedException"/> (its <c>Init()</c> returns a bool and loses the
/// driver's error code, which is exactly what <see cref="CudaDevice.Probe"/> must report), it resolves the
/// library as <c>libcuda.so</c> (absent on driver-only machines, and on toolkit machines possibly the
/// link-time stub), and it lacks streams and raw copies. One import table keeps the error handling and the
/// library resolution in one place (and the core free of package references).
/// </para>
/// <para>
/// Handles are <c>nint</c>, <c>CUresult</c> is <c>int</c>, <c>size_t</c> is <c>nuint</c>. The versioned
/// entry points (<c>_v2</c>) are the ones <c>cuda.h</c> maps the plain names to since CUDA 4; drivers keep
/// exporting them for binaries built against older headers, so they are stable across CUDA 11–13.
/// </para>
/// </remarks>
internal static unsafe partial class CudaDriver
{
    /// <summary>The library name every import below uses; <see cref="Resolve"/> maps it to the driver.</summary>
    private const string Library = "cuda";

    public const int CUDA_SUCCESS = 0;
    public const int CUDA_ERROR_INVALID_VALUE = 1;
    public const int CUDA_ERROR_OUT_OF_MEMORY = 2;
    public const int CUDA_ERROR_NOT_INITIALIZED = 3;
    public const int CUDA_ERROR_NO_DEVICE = 100;
    public const int CUDA_ERROR_INVALID_DEVICE = 101;
    public const int CUDA_ERROR_NOT_READY = 600;

    // CUevent_flags.
    public const uint CU_EVENT_DEFAULT = 0;

    // CUstream_flags: a stream that does not synchronise with the legacy default stream (stream 0).
    public const uint CU_STREAM_NON_BLOCKING = 0x1;

    // CUdevice_attribute (cuda.h).
    public const int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    public const int CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13;
    public const int CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33;
    public const int CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36;
    public const int CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37;
    public const int CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38;
    public const int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    public const int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    public const int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;

    /// <summary>
    /// Names the driver library to load instead of the system's: the variable libcheapconv.so reads too, so the
    /// device's memory and copies and the library's kernels always go to the same driver (a fake one in tests).
    /// </summary>
    public const string DriverEnvironmentVariable = "CHEAPCONV_CUDA_DRIVER";

    /// <summary>The file names tried for the driver, in order: $CHEAPCONV_CUDA_DRIVER alone when set, else the
    /// versioned name first: it is what the driver package installs, while a bare <c>libcuda.so</c> may be the CUDA
    /// toolkit's link-time stub (which fails every call with CUDA_ERROR_STUB_LIBRARY).</summary>
    private static string[] Candidates => Environment.GetEnvironmentVariable(DriverEnvironmentVariable) is { Length: > 0 } chosen
        ? [chosen]
        : OperatingSystem.IsWindows() ? ["nvcuda.dll"] : ["libcuda.so.1", "libcuda.so"];

    private static readonly Lazy<(nint Handle, string? Name, string? Error)> Loaded = new(LoadDriver);

    /// <summary>Registers the import resolver before any import below can run (a static constructor makes
    /// the type not <c>beforefieldinit</c>, so it runs before the first call of any method).</summary>
    static CudaDriver()
    {
        try
        {
            // Only one resolver per assembly is allowed; this is CheapConv's. It answers "cuda" and defers
            // every other name to the default probing by returning 0.
            NativeLibrary.SetDllImportResolver(typeof(CudaDriver).Assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // Someone registered a resolver for this assembly first; the ALC fallback below still maps
            // "cuda" when the default probing does not find it.
        }

        // Fallback for every assembly (ILGPU's own "cuda" imports included): runs only after the default
        // probing failed, e.g. on a driver-only machine that has libcuda.so.1 but no libcuda.so.
        AssemblyLoadContext.Default.ResolvingUnmanagedDll += (_, name) => Resolve(name, null!, null);
    }

    /// <summary>Makes sure the resolver is registered (runs the static constructor).</summary>
    public static void EnsureResolver()
    {
    }

    /// <summary>The file name the driver was loaded from, or null when it could not be loaded.</summary>
    public static string? LibraryName => Loaded.Value.Name;

    /// <summary>Why the driver library could not be loaded (one line), or null when it was.</summary>
    public static string? LoadError => Loaded.Value.Error;

    private static nint Resolve(string name, System.Reflection.Assembly assembly, DllImportSearchPath? searchPath) =>
        name == Library ? Loaded.Value.Handle : 0;

    private static (nint Handle, string? Name, string? Error) LoadDriver()
    {
        var errors = new List<string>();
        var candidates = Candidates;
        foreach (var candidate in candidates)
        {
            try
            {
                return (NativeLibrary.Load(candidate), candidate, null);
            }
            catch (DllNotFoundException e)
            {
                errors.Add(LoaderDetail(e.Message));
            }
            catch (BadImageFormatException e)
            {
                errors.Add(LoaderDetail(e.Message));
            }
        }

        // "No such file" is the normal case on a machine without the NVIDIA driver; anything else (a file
        // for another architecture, a missing dependency) is worth quoting.
        var broken = errors.FirstOrDefault(e => !e.Contains("No such file", StringComparison.OrdinalIgnoreCase));
        var error = Environment.GetEnvironmentVariable(DriverEnvironmentVariable) is { Length: > 0 } chosen
            ? $"${DriverEnvironmentVariable} names {chosen}, which could not be loaded: {errors[0]}"
            : broken is null
                ? $"{candidates[0]} not found: no NVIDIA driver on this machine"
                : $"the NVIDIA driver library could not be loaded: {broken}";
        return (0, null, error);
    }

    /// <summary>
    /// The loader's own words from a <see cref="DllNotFoundException"/>: .NET puts a generic first line
    /// ("Unable to load shared library ... consider setting the LD_DEBUG environment variable:") before
    /// the dlerror text ("libcuda.so.1: cannot open shared object file: No such file or directory").
    /// </summary>
    private static string LoaderDetail(string message)
    {
        var lines = message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var detail = lines.Where(line => !line.StartsWith("Unable to load", StringComparison.Ordinal)).ToList();
        return detail.Count > 0 ? string.Join("; ", detail) : lines.FirstOrDefault() ?? message;
    }

    // ----- errors -----

    /// <summary>The driver's name for <paramref name="status"/> ("CUDA_ERROR_ILLEGAL_ADDRESS"); never throws.</summary>
    public static string ErrorName(int status)
    {
        try
        {
            if (LoadError is null && cuGetErrorName(status, out var text) == CUDA_SUCCESS && text != 0)
            {
                return Marshal.PtrToStringUTF8(text) ?? Fallback();
            }
        }
        catch (EntryPointNotFoundException)
        {
        }

        return Fallback();

        // Without a driver (or for a code it does not know) the names from cuda.h that our messages meet most.
        string Fallback() => KnownErrors.TryGetValue(status, out var name) ? name : $"CUresult {status}";
    }

    /// <summary>CUresult names from cuda.h: what <see cref="ErrorName"/> says when the driver cannot.</summary>
    private static readonly Dictionary<int, string> KnownErrors = new()
    {
        [0] = "CUDA_SUCCESS",
        [1] = "CUDA_ERROR_INVALID_VALUE",
        [2] = "CUDA_ERROR_OUT_OF_MEMORY",
        [3] = "CUDA_ERROR_NOT_INITIALIZED",
        [4] = "CUDA_ERROR_DEINITIALIZED",
        [34] = "CUDA_ERROR_STUB_LIBRARY",
        [100] = "CUDA_ERROR_NO_DEVICE",
        [101] = "CUDA_ERROR_INVALID_DEVICE",
        [200] = "CUDA_ERROR_INVALID_IMAGE",
        [201] = "CUDA_ERROR_INVALID_CONTEXT",
        [209] = "CUDA_ERROR_NO_BINARY_FOR_GPU",
        [214] = "CUDA_ERROR_ECC_UNCORRECTABLE",
        [218] = "CUDA_ERROR_INVALID_PTX",
        [222] = "CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
        [400] = "CUDA_ERROR_INVALID_HANDLE",
        [500] = "CUDA_ERROR_NOT_FOUND",
        [600] = "CUDA_ERROR_NOT_READY",
        [700] = "CUDA_ERROR_ILLEGAL_ADDRESS",
        [701] = "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
        [702] = "CUDA_ERROR_LAUNCH_TIMEOUT",
        [709] = "CUDA_ERROR_CONTEXT_IS_DESTROYED",
        [710] = "CUDA_ERROR_ASSERT",
        [714] = "CUDA_ERROR_HARDWARE_STACK_ERROR",
        [715] = "CUDA_ERROR_ILLEGAL_INSTRUCTION",
        [716] = "CUDA_ERROR_MISALIGNED_ADDRESS",
        [717] = "CUDA_ERROR_INVALID_ADDRESS_SPACE",
        [718] = "CUDA_ERROR_INVALID_PC",
        [719] = "CUDA_ERROR_LAUNCH_FAILED",
        [803] = "CUDA_ERROR_SYSTEM_NOT_READY",
        [804] = "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
        [999] = "CUDA_ERROR_UNKNOWN",
    };

    /// <summary>The driver's description of <paramref name="status"/> ("an illegal memory access was
    /// encountered"); never throws, empty when unknown.</summary>
    public static string ErrorString(int status)
    {
        try
        {
            if (LoadError is null && cuGetErrorString(status, out var text) == CUDA_SUCCESS && text != 0)
            {
                return Marshal.PtrToStringUTF8(text) ?? "";
            }
        }
        catch (EntryPointNotFoundException)
        {
        }

        return "";
    }

    /// <summary>"CUDA_ERROR_X (description)" for messages.</summary>
    public static string Describe(int status)
    {
        var description = ErrorString(status);
        return description.Length == 0 ? ErrorName(status) : $"{ErrorName(status)} ({description})";
    }

    /// <summary>
    /// Errors after which the context is unusable: every later call returns the same error until the
    /// context is destroyed (the CUDA documentation calls them sticky). They are reported asynchronously,
    /// by whichever call comes after the faulting kernel.
    /// </summary>
    public static bool IsSticky(int status) => status is
        214 // CUDA_ERROR_ECC_UNCORRECTABLE
        or 700 // CUDA_ERROR_ILLEGAL_ADDRESS
        or 702 // CUDA_ERROR_LAUNCH_TIMEOUT
        or 710 // CUDA_ERROR_ASSERT
        or 714 // CUDA_ERROR_HARDWARE_STACK_ERROR
        or 715 // CUDA_ERROR_ILLEGAL_INSTRUCTION
        or 716 // CUDA_ERROR_MISALIGNED_ADDRESS
        or 717 // CUDA_ERROR_INVALID_ADDRESS_SPACE
        or 718 // CUDA_ERROR_INVALID_PC
        or 719; // CUDA_ERROR_LAUNCH_FAILED

    /// <summary>Throws a <see cref="DeviceException"/> naming the call and the driver's error when
    /// <paramref name="status"/> is not CUDA_SUCCESS.</summary>
    /// <param name="status">What the driver call returned.</param>
    /// <param name="context">Who was calling and why, e.g. "cuda:0 (NVIDIA H100): allocating 4096 bytes".</param>
    /// <param name="call">Filled in by the compiler with the call's source text.</param>
    public static void Check(int status, string? context = null, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status != CUDA_SUCCESS)
        {
            throw new DeviceException(Message(status, context, call));
        }
    }

    /// <summary>The message <see cref="Check"/> throws with.</summary>
    public static string Message(int status, string? context, string call)
    {
        // "cuMemAlloc_v2(out var pointer, (nuint)bytes)" → "cuMemAlloc_v2": the arguments are C# noise.
        var paren = call.IndexOf('(');
        var name = paren > 0 ? call[..paren].Trim() : call;
        var prefix = string.IsNullOrEmpty(context) ? "" : context + ": ";
        var sticky = IsSticky(status)
            ? "; a previous kernel faulted and the CUDA context is now unusable: dispose the device and open a new one"
            : "";
        return $"{prefix}{name} failed with {Describe(status)}{sticky}";
    }

    // ----- imports (cuda.h) -----

    [LibraryImport(Library)]
    public static partial int cuInit(uint flags);

    [LibraryImport(Library)]
    public static partial int cuDriverGetVersion(out int version);

    [LibraryImport(Library)]
    public static partial int cuGetErrorName(int error, out nint name);

    [LibraryImport(Library)]
    public static partial int cuGetErrorString(int error, out nint description);

    [LibraryImport(Library)]
    public static partial int cuDeviceGetCount(out int count);

    [LibraryImport(Library)]
    public static partial int cuDeviceGet(out int device, int ordinal);

    [LibraryImport(Library)]
    public static partial int cuDeviceGetName(byte* name, int length, int device);

    [LibraryImport(Library)]
    public static partial int cuDeviceTotalMem_v2(out nuint bytes, int device);

    [LibraryImport(Library)]
    public static partial int cuDeviceGetAttribute(out int value, int attribute, int device);

    [LibraryImport(Library)]
    public static partial int cuDevicePrimaryCtxRetain(out nint context, int device);

    [LibraryImport(Library)]
    public static partial int cuDevicePrimaryCtxRelease_v2(int device);

    [LibraryImport(Library)]
    public static partial int cuCtxSetCurrent(nint context);

    [LibraryImport(Library)]
    public static partial int cuCtxGetCurrent(out nint context);

    [LibraryImport(Library)]
    public static partial int cuCtxGetDevice(out int device);

    [LibraryImport(Library)]
    public static partial int cuMemGetInfo_v2(out nuint free, out nuint total);

    [LibraryImport(Library)]
    public static partial int cuStreamSynchronize(nint stream);

    // Optional: CudaDevice.Open makes a stream of its own with them, and without them (EntryPointNotFoundException) works
    // on the legacy default stream, where everything but a graph capture still works.
    [LibraryImport(Library)]
    public static partial int cuStreamCreate(out nint stream, uint flags);

    [LibraryImport(Library)]
    public static partial int cuStreamDestroy_v2(nint stream);

    [LibraryImport(Library)]
    public static partial int cuMemAlloc_v2(out nint pointer, nuint bytes);

    [LibraryImport(Library)]
    public static partial int cuMemFree_v2(nint pointer);

    [LibraryImport(Library)]
    public static partial int cuMemcpyHtoDAsync_v2(nint destination, void* source, nuint bytes, nint stream);

    [LibraryImport(Library)]
    public static partial int cuMemcpyDtoHAsync_v2(void* destination, nint source, nuint bytes, nint stream);

    [LibraryImport(Library)]
    public static partial int cuMemcpyDtoDAsync_v2(nint destination, nint source, nuint bytes, nint stream);

    // cuMemsetD8Async has no _v2: its signature has taken size_t since it was introduced.
    [LibraryImport(Library)]
    public static partial int cuMemsetD8Async(nint destination, byte value, nuint count, nint stream);

    [LibraryImport(Library)]
    public static partial int cuEventCreate(out nint @event, uint flags);

    [LibraryImport(Library)]
    public static partial int cuEventDestroy_v2(nint @event);

    [LibraryImport(Library)]
    public static partial int cuEventRecord(nint @event, nint stream);

    [LibraryImport(Library)]
    public static partial int cuEventSynchronize(nint @event);

    [LibraryImport(Library)]
    public static partial int cuEventElapsedTime(out float milliseconds, nint start, nint end);

    /// <summary>CUDA_SUCCESS when the work before the event's record is done, CUDA_ERROR_NOT_READY while it runs; never waits.</summary>
    [LibraryImport(Library)]
    public static partial int cuEventQuery(nint @event);

    // Page-locked host memory: the only host memory an asynchronous copy leaves the host free during (from pageable
    // memory the driver copies through its own staging and the call returns only when the source may be reused).
    // cuMemHostAlloc has no _v2: its signature has taken size_t since it was introduced.
    [LibraryImport(Library)]
    public static partial int cuMemHostAlloc(out nint pointer, nuint bytes, uint flags);

    [LibraryImport(Library)]
    public static partial int cuMemFreeHost(nint pointer);
}
