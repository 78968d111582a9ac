using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using CheapConv.Devices;
using CheapConv.Problems;

namespace CheapConv.Interop;

/// <summary>
/// The C ABI of native/include/cheapconv.h, bound to one loaded library: <c>libcheapconv.so</c> (CUDA) or
/// <c>libcheapconv_emu.so</c> (the emulator). Every call checks its status: a failure is a
/// <see cref="CheapConvException"/> with the status name and the library's message. Pointers are device addresses
/// of the library's kind (CUDA device pointers, or host pointers for the emulator); streams are CUstreams
/// (0 = the context's default stream; the emulator ignores them).
/// </summary>
/// <remarks>
/// <para>
/// Why an instance per library with function pointers instead of <c>[LibraryImport]</c>: both libraries export
/// exactly the same symbol names, and a process must be able to use both at once (the tests run the emulator
/// beside a GPU; an ILGPU program may hold a CPU and a CUDA accelerator). A <c>[LibraryImport]</c> method is bound
/// to one library name for the life of the process, so the emulator would need a second, identical set of
/// declarations under another name (or a resolver that can only ever answer one of them). Here each export is
/// looked up once per library with <see cref="NativeLibrary.GetExport"/> and called through a typed
/// <c>delegate* unmanaged</c>, declared once, at its only call site. The structs are blittable, so no
/// marshalling code runs either way.
/// </para>
/// <para>
/// Libraries are loaded once per process and never unloaded (a library with worker threads cannot be unloaded
/// safely). <see cref="Load"/> reports every path it tried when none loads.
/// </para>
/// </remarks>
public sealed unsafe class CheapConvNative
{
    /// <summary>The CUDA library's file name.</summary>
    public const string CudaFileName = "libcheapconv.so";

    /// <summary>The emulator library's file name.</summary>
    public const string EmulatorFileName = "libcheapconv_emu.so";

    /// <summary>Overrides where <see cref="CudaFileName"/> is loaded from.</summary>
    public const string CudaEnvironmentVariable = "CHEAPCONV_LIBRARY";

    /// <summary>Overrides where <see cref="EmulatorFileName"/> is loaded from.</summary>
    public const string EmulatorEnvironmentVariable = "CHEAPCONV_EMU_LIBRARY";

    /// <summary>CC_VERSION_MAJOR of the header this class mirrors: a library of another major version is refused.</summary>
    public const int AbiMajorVersion = 3;

    /// <summary>
    /// CC_SPLIT_COUNTER_BYTES: the arrival counters at the start of a split weight gradient's workspace (cc_conv_backward_weight,
    /// cc_linear_backward_weight), which must be zero when the call starts; the call leaves them zero. Zero a workspace
    /// once when allocating it, and keep calls that use their workspace as plain scratch (cc_sum, the losses) off them.
    /// </summary>
    public const int SplitCounterBytes = 65536;

    /// <summary>CC_BN_STATS_FLOATS_PER_SLOT: a batch-norm statistics slot of <see cref="ConvForwardBatchNormStats"/> is {count,
    /// mean, sum of squared deviations from that mean}.</summary>
    public const int BatchNormStatsFloatsPerSlot = 3;

    /// <summary>CC_BN_SUMS_FLOATS_PER_SLOT: a batch-norm backward slot of <see cref="ConvBackwardDataBnSums"/> is {Σ g, Σ g·x̂}.</summary>
    public const int BatchNormSumsFloatsPerSlot = 2;

    /// <summary>CC_CURRENT_CONTEXT: <see cref="Create"/> binds to the context current on the calling thread.</summary>
    public const int CurrentContext = -1;

    private const int TextCapacity = 4096;

    private static readonly ConcurrentDictionary<string, Lazy<CheapConvNative>> Instances = new(StringComparer.Ordinal);

    private readonly nint _library;
    private readonly nint[] _exports = new nint[AbiFunctions.Count];

    private CheapConvNative(nint library, string path)
    {
        _library = library;
        LibraryPath = path;
        Version = ((delegate* unmanaged<int>)Export(AbiFunction.Version))();
        if (Version / 10000 != AbiMajorVersion)
        {
            throw new DeviceUnavailableException(
                $"{path} implements cheapconv.h version {FormatVersion(Version)}, but this assembly was built for major version {AbiMajorVersion}: use a matching library");
        }

        Backend = (CheapConvBackend)((delegate* unmanaged<int>)Export(AbiFunction.BackendKind))();
    }

    /// <summary>Where the library was loaded from.</summary>
    public string LibraryPath { get; }

    /// <summary>The library's file name, for messages.</summary>
    public string FileName => Path.GetFileName(LibraryPath);

    /// <summary>cc_version(): MAJOR·10000 + MINOR·100 + PATCH.</summary>
    public int Version { get; }

    /// <summary>"1.0.0".</summary>
    public string VersionText => FormatVersion(Version);

    /// <summary>cc_backend_kind().</summary>
    public CheapConvBackend Backend { get; }

    /// <summary>
    /// Loads the library of <paramref name="backend"/> (once per process and path). Without
    /// <paramref name="path"/> it tries, in order: the environment variable (<see cref="CudaEnvironmentVariable"/> or
    /// <see cref="EmulatorEnvironmentVariable"/>), the application folder, this assembly's folder, their
    /// runtimes/&lt;rid&gt;/native folders (where a NuGet consumer's build puts the package's libraries), and the
    /// system's library search path. Throws <see cref="DeviceUnavailableException"/> listing every place tried and why
    /// each failed.
    /// </summary>
    public static CheapConvNative Load(CheapConvBackend backend, string? path = null)
    {
        var (library, loaded) = backend == CheapConvBackend.Cuda
            ? LoadLibrary(CudaFileName, CudaEnvironmentVariable, path)
            : LoadLibrary(EmulatorFileName, EmulatorEnvironmentVariable, path);
        var instance = Instances.GetOrAdd(loaded, p => new Lazy<CheapConvNative>(() => new CheapConvNative(library, p)));
        CheapConvNative native;
        try
        {
            native = instance.Value;
        }
        catch
        {
            // A refused library (wrong version, missing exports) is refused again next time, with the same words.
            Instances.TryRemove(new KeyValuePair<string, Lazy<CheapConvNative>>(loaded, instance));
            throw;
        }

        return native.Backend == backend
            ? native
            : throw new DeviceUnavailableException($"{loaded} runs its kernels on {native.Backend}, not on {backend}: it is the other CheapConv library");
    }

    /// <summary>
    /// Loads <paramref name="fileName"/> from <paramref name="explicitPath"/> alone, or else from the places
    /// <see cref="Load"/> lists. Returns the OS handle and the path it came from. For the emulator's own C API
    /// (cc_emu_*), which lives in the same files.
    /// </summary>
    internal static (nint Library, string Path) LoadLibrary(string fileName, string environmentVariable, string? explicitPath)
    {
        var tried = new List<string>();
        foreach (var candidate in Candidates(fileName, environmentVariable, explicitPath))
        {
            var isPath = candidate.Contains(Path.DirectorySeparatorChar);
            if (isPath && !File.Exists(candidate))
            {
                tried.Add($"{candidate}: no such file");
                continue;
            }

            try
            {
                var library = NativeLibrary.Load(candidate);
                return (library, isPath ? Path.GetFullPath(candidate) : candidate);
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                tried.Add($"{candidate}: {e.Message.ReplaceLineEndings(" ")}");
            }
        }

        throw new DeviceUnavailableException(
            $"{fileName} could not be loaded (build it with 'make -C native', which dotnet build runs, or set {environmentVariable}); tried:\n  " +
            string.Join("\n  ", tried));
    }

    private static IEnumerable<string> Candidates(string fileName, string environmentVariable, string? explicitPath)
    {
        if (explicitPath is not null)
        {
            yield return explicitPath;
            yield break;
        }

        if (Environment.GetEnvironmentVariable(environmentVariable) is { Length: > 0 } fromEnvironment)
        {
            yield return fromEnvironment;
        }

        var directories = new List<string> { AppContext.BaseDirectory };
        if (Path.GetDirectoryName(typeof(CheapConvNative).Assembly.Location) is { Length: > 0 } assemblyDirectory)
        {
            directories.Add(assemblyDirectory);
        }

        foreach (var directory in directories.Select(d => Path.TrimEndingDirectorySeparator(Path.GetFullPath(d))).Distinct(StringComparer.Ordinal))
        {
            yield return Path.Combine(directory, fileName);
            foreach (var rid in RuntimeIdentifiers())
            {
                yield return Path.Combine(directory, "runtimes", rid, "native", fileName);
            }
        }

        yield return fileName; // the system's search: LD_LIBRARY_PATH, the ldconfig cache
    }

    /// <summary>
    /// The runtimes/&lt;rid&gt;/native folders a NuGet consumer's build may hold the libraries in (a RID-less app gets
    /// the package's runtimes/linux-x64/native/ copied below its output folder): this runtime's own RID and, where that
    /// is a distribution's (a source-built .NET reports e.g. ubuntu.24.04-x64), the portable one the package ships.
    /// </summary>
    private static IEnumerable<string> RuntimeIdentifiers()
    {
        yield return RuntimeInformation.RuntimeIdentifier;
        var portable = $"linux-{RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()}";
        if (OperatingSystem.IsLinux() && portable != RuntimeInformation.RuntimeIdentifier)
        {
            yield return portable;
        }
    }

    // ----- errors and exports -----

    /// <summary>The address of an export of this library, looked up on its first use and then read from a slot (the
    /// per-call cost of a launch is one array read); an <see cref="EntryPointNotFoundException"/> that says the library
    /// is older than this assembly when it lacks one.</summary>
    internal nint Export(AbiFunction function)
    {
        var address = _exports[(int)function];
        return address != 0 ? address : Resolve(function);
    }

    private nint Resolve(AbiFunction function)
    {
        var name = AbiFunctions.Name(function);
        if (!NativeLibrary.TryGetExport(_library, name, out var address))
        {
            throw new EntryPointNotFoundException($"{LibraryPath} does not export {name}: it was built from an older cheapconv.h; rebuild it with 'make -C native'");
        }

        // A race resolves the same address twice: harmless.
        _exports[(int)function] = address;
        return address;
    }

    /// <summary>Throws the <see cref="CheapConvException"/> of a failed call; reads cc_last_error on this thread.</summary>
    private void Check(int status, AbiFunction call)
    {
        if (status == (int)CheapConvStatus.Success)
        {
            return;
        }

        // First the message: any other call into the library may replace it.
        var detail = Text(((delegate* unmanaged<byte*>)Export(AbiFunction.LastError))());
        var name = Text(((delegate* unmanaged<int, byte*>)Export(AbiFunction.StatusString))(status));
        throw new CheapConvException(FileName, AbiFunctions.Name(call), (CheapConvStatus)status, name, detail);
    }

    /// <summary>cc_status_string: "CC_ERROR_INVALID_VALUE", ...; "CC_ERROR_UNKNOWN" outside the enum.</summary>
    public string StatusName(CheapConvStatus status) => Text(((delegate* unmanaged<int, byte*>)Export(AbiFunction.StatusString))((int)status));

    private static string Text(byte* text) => text == null ? "" : Marshal.PtrToStringUTF8((nint)text) ?? "";

    private static string FormatVersion(int version) => $"{version / 10000}.{version / 100 % 100}.{version % 100}";

    /// <summary>Holds a reference on a handle for the duration of a call, so a concurrent Dispose cannot destroy it
    /// under the call; and refuses a handle of the other library, whose identical symbols would take it.</summary>
    private HandleUse Use(CheapConvHandle handle) => new(this, handle);

    private readonly ref struct HandleUse
    {
        private readonly CheapConvHandle _handle;

        public HandleUse(CheapConvNative library, CheapConvHandle handle)
        {
            ArgumentNullException.ThrowIfNull(handle);
            if (handle.Library != library)
            {
                throw new ArgumentException($"a handle of {handle.Library.LibraryPath} was passed to {library.LibraryPath}", nameof(handle));
            }

            var added = false;
            handle.DangerousAddRef(ref added);
            _handle = handle;
            Value = handle.DangerousGetHandle();
        }

        public nint Value { get; }

        public void Dispose() => _handle.DangerousRelease();
    }

    // ----- handle -----

    /// <summary>
    /// cc_create: device ≥ 0 binds to that device's primary context (retained until the handle is disposed);
    /// <see cref="CurrentContext"/> to the context current on the calling thread (the caller keeps it alive). The
    /// emulator ignores the device.
    /// </summary>
    public CheapConvHandle Create(int device)
    {
        nint handle;
        Check(((delegate* unmanaged<nint*, int, int>)Export(AbiFunction.Create))(&handle, device), AbiFunction.Create);
        return new CheapConvHandle(this, handle);
    }

    /// <summary>cc_destroy, for <see cref="CheapConvHandle"/>; false when it failed (a SafeHandle must not throw).</summary>
    internal bool Destroy(nint handle) => ((delegate* unmanaged<nint, int>)Export(AbiFunction.Destroy))(handle) == 0;

    /// <summary>cc_describe: what the handle runs on, e.g. "cuda: NVIDIA H100 80GB HBM3 (device 0, sm_90), kernels: SASS
    /// sm_90 from the fatbin" or "emulator: 2 worker threads".</summary>
    public string Describe(CheapConvHandle handle)
    {
        using var h = Use(handle);
        var text = stackalloc byte[TextCapacity];
        text[0] = 0;
        Check(((delegate* unmanaged<nint, byte*, nuint, int>)Export(AbiFunction.Describe))(h.Value, text, TextCapacity), AbiFunction.Describe);
        return Text(text);
    }

    // ----- convolution -----

    /// <summary>cc_conv_init: the library's own descriptor for these sizes (p and q derived, layout NCHW, fp32).</summary>
    public ConvProblem ConvInit(int n, int c, int h, int w, int k, int r, int s, int padH, int padW, int strideH, int strideW, int groups)
    {
        ConvProblem problem;
        Check(((delegate* unmanaged<ConvProblem*, int, int, int, int, int, int, int, int, int, int, int, int, int>)Export(AbiFunction.ConvInit))(
            &problem, n, c, h, w, k, r, s, padH, padW, strideH, strideW, groups), AbiFunction.ConvInit);
        return problem;
    }

    /// <summary>cc_conv_validate.</summary>
    public void ConvValidate(ConvProblem problem) =>
        Validate(AbiFunction.ConvValidate, problem);

    /// <summary>cc_conv_workspace_size: bytes of workspace <paramref name="pass"/> needs with these options.</summary>
    public nuint ConvWorkspaceSize(ConvProblem problem, ConvPass pass, KernelOptions options)
    {
        nuint bytes;
        Check(((delegate* unmanaged<ConvProblem*, int, KernelOptions*, nuint*, int>)Export(AbiFunction.ConvWorkspaceSize))(&problem, (int)pass, &options, &bytes),
            AbiFunction.ConvWorkspaceSize);
        return bytes;
    }

    /// <summary>cc_conv_kernel_names: the kernel(s) the pass would run, e.g. "cc_conv2d_forward_kernel".</summary>
    public string ConvKernelNames(ConvProblem problem, ConvPass pass, KernelOptions options)
    {
        var text = stackalloc byte[TextCapacity];
        text[0] = 0;
        Check(((delegate* unmanaged<ConvProblem*, int, KernelOptions*, byte*, nuint, int>)Export(AbiFunction.ConvKernelNames))(
            &problem, (int)pass, &options, text, TextCapacity), AbiFunction.ConvKernelNames);
        return Text(text);
    }

    /// <summary>cc_conv_forward: y = conv(x, w).</summary>
    public void ConvForward(CheapConvHandle handle, ConvProblem problem, KernelOptions options, nint x, nint w, nint y,
        nint workspace, nuint workspaceBytes, nint stream) =>
        WorkspaceCall(AbiFunction.ConvForward, handle, problem, options, x, w, y, workspace, workspaceBytes, stream);

    /// <summary>cc_conv_forward_fused: y = conv(x, w) + the epilogue's residual, and/or relu(eval batch norm(that)) into its
    /// activated output, in the convolution's store where the tensor-core kernels run it (otherwise by the separate calls);
    /// <paramref name="y"/> may be 0 when the epilogue has an activated output.</summary>
    public void ConvForwardFused(CheapConvHandle handle, ConvProblem problem, KernelOptions options, ConvEpilogue epilogue, nint x, nint w,
        nint y, nint workspace, nuint workspaceBytes, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, ConvProblem*, KernelOptions*, ConvEpilogue*, nint, nint, nint, nint, nuint, nint, int>)Export(
            AbiFunction.ConvForwardFused))(h.Value, &problem, &options, &epilogue, x, w, y, workspace, workspaceBytes, stream), AbiFunction.ConvForwardFused);
    }

    /// <summary>cc_conv_bn_stats_slots: the statistics slots per output channel <see cref="ConvForwardBatchNormStats"/> writes
    /// for the problem with these options, or null where the forward pass's kernels cannot write them (CC_ERROR_NOT_SUPPORTED:
    /// run the convolution and <see cref="BatchNormTrainForward"/> instead).</summary>
    public int? ConvBatchNormStatsSlots(ConvProblem problem, KernelOptions options)
    {
        int slots;
        var status = ((delegate* unmanaged<ConvProblem*, KernelOptions*, int*, int>)Export(AbiFunction.ConvBnStatsSlots))(&problem, &options, &slots);
        if (status == (int)CheapConvStatus.NotSupported)
        {
            return null;
        }

        Check(status, AbiFunction.ConvBnStatsSlots);
        return slots;
    }

    /// <summary>cc_conv_forward_bn_stats: y = conv(x, w) [+ residual; 0: none] and the statistics slots of y into
    /// <paramref name="stats"/> (K × slots × <see cref="BatchNormStatsFloatsPerSlot"/> floats), for
    /// <see cref="BatchNormTrainForwardFromStats"/>.</summary>
    public void ConvForwardBatchNormStats(CheapConvHandle handle, ConvProblem problem, KernelOptions options, nint residual, nint x, nint w,
        nint y, nint stats, nuint statsBytes, nint workspace, nuint workspaceBytes, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, ConvProblem*, KernelOptions*, nint, nint, nint, nint, nint, nuint, nint, nuint, nint, int>)Export(
            AbiFunction.ConvForwardBnStats))(h.Value, &problem, &options, residual, x, w, y, stats, statsBytes, workspace, workspaceBytes, stream),
            AbiFunction.ConvForwardBnStats);
    }

    /// <summary>cc_conv_backward_data: dx given dy.</summary>
    public void ConvBackwardData(CheapConvHandle handle, ConvProblem problem, KernelOptions options, nint dy, nint w, nint dx,
        nint workspace, nuint workspaceBytes, nint stream) =>
        WorkspaceCall(AbiFunction.ConvBackwardData, handle, problem, options, dy, w, dx, workspace, workspaceBytes, stream);

    /// <summary>cc_conv_backward_weight: dw given x and dy (overwritten).</summary>
    public void ConvBackwardWeight(CheapConvHandle handle, ConvProblem problem, KernelOptions options, nint x, nint dy, nint dw,
        nint workspace, nuint workspaceBytes, nint stream) =>
        WorkspaceCall(AbiFunction.ConvBackwardWeight, handle, problem, options, x, dy, dw, workspace, workspaceBytes, stream);

    /// <summary>cc_conv_backward: dx (added into with <see cref="KernelOptions.Accumulate"/>) and dw given x, dy and w, in one launch
    /// where the launcher's two variants share a grid; <paramref name="dx"/> or <paramref name="dw"/> may be 0 (then exactly the
    /// other pass's call). The workspace is <see cref="ConvWorkspaceSize"/>'s for <see cref="ConvPass.Backward"/>.</summary>
    public void ConvBackward(CheapConvHandle handle, ConvProblem problem, KernelOptions options, nint x, nint dy, nint w, nint dx, nint dw,
        nint workspace, nuint workspaceBytes, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, ConvProblem*, KernelOptions*, nint, nint, nint, nint, nint, nint, nuint, nint, int>)Export(
            AbiFunction.ConvBackward))(h.Value, &problem, &options, x, dy, w, dx, dw, workspace, workspaceBytes, stream), AbiFunction.ConvBackward);
    }

    /// <summary>cc_conv_input_bn_supported: whether <see cref="ConvForwardInputBn"/> and <see cref="ConvBackwardInputBn"/> run the
    /// problem with these options (false: CC_ERROR_NOT_SUPPORTED, the batch norm must run on its own).</summary>
    public bool ConvInputBnSupported(ConvProblem problem, KernelOptions options)
    {
        var status = ((delegate* unmanaged<ConvProblem*, KernelOptions*, int>)Export(AbiFunction.ConvInputBnSupported))(&problem, &options);
        if (status == (int)CheapConvStatus.NotSupported)
        {
            return false;
        }

        Check(status, AbiFunction.ConvInputBnSupported);
        return true;
    }

    /// <summary>cc_conv_forward_input_bn: y = conv(bn(z), w) [+ residual; 0: none], the batch norm applied as the kernel reads z,
    /// and with <paramref name="stats"/> (0: none) y's statistics slots as <see cref="ConvForwardBatchNormStats"/> writes them.</summary>
    public void ConvForwardInputBn(CheapConvHandle handle, ConvProblem problem, KernelOptions options, ConvInputBn bn, nint residual, nint z,
        nint w, nint y, nint stats, nuint statsBytes, nint workspace, nuint workspaceBytes, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, ConvProblem*, KernelOptions*, ConvInputBn*, nint, nint, nint, nint, nint, nuint, nint, nuint, nint, int>)Export(
            AbiFunction.ConvForwardInputBn))(h.Value, &problem, &options, &bn, residual, z, w, y, stats, statsBytes, workspace, workspaceBytes, stream),
            AbiFunction.ConvForwardInputBn);
    }

    /// <summary>cc_conv_backward_input_bn: da (the gradient of bn(z), as <see cref="ConvBackwardData"/> computes it) and dw (as
    /// <see cref="ConvBackwardWeight"/> on bn(z), applied as the kernel reads z), one launch; either may be 0.</summary>
    public void ConvBackwardInputBn(CheapConvHandle handle, ConvProblem problem, KernelOptions options, ConvInputBn bn, nint z, nint dy, nint w,
        nint da, nint dw, nint workspace, nuint workspaceBytes, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, ConvProblem*, KernelOptions*, ConvInputBn*, nint, nint, nint, nint, nint, nint, nuint, nint, int>)Export(
            AbiFunction.ConvBackwardInputBn))(h.Value, &problem, &options, &bn, z, dy, w, da, dw, workspace, workspaceBytes, stream),
            AbiFunction.ConvBackwardInputBn);
    }

    /// <summary>cc_conv_bn_sum_slots: the slots per input channel <see cref="ConvBackwardDataBnSums"/> writes, or null where the data
    /// gradient's kernels cannot (CC_ERROR_NOT_SUPPORTED: run the data gradient and <see cref="BatchNormBackward"/> instead).</summary>
    public int? ConvBnSumSlots(ConvProblem problem, KernelOptions options)
    {
        int slots;
        var status = ((delegate* unmanaged<ConvProblem*, KernelOptions*, int*, int>)Export(AbiFunction.ConvBnSumSlots))(&problem, &options, &slots);
        if (status == (int)CheapConvStatus.NotSupported)
        {
            return null;
        }

        Check(status, AbiFunction.ConvBnSumSlots);
        return slots;
    }

    /// <summary>cc_conv_backward_data_bn_sums: da as <see cref="ConvBackwardData"/> computes it, and per block and input channel the
    /// batch norm's backward sums {Σ g, Σ g·x̂} of the positions it stored (<see cref="BatchNormSumsFloatsPerSlot"/> floats a slot),
    /// for <see cref="BatchNormBackwardFromSums"/>.</summary>
    public void ConvBackwardDataBnSums(CheapConvHandle handle, ConvProblem problem, KernelOptions options, ConvInputBn bn, nint z, nint dy, nint w,
        nint da, nint sums, nuint sumsBytes, nint workspace, nuint workspaceBytes, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, ConvProblem*, KernelOptions*, ConvInputBn*, nint, nint, nint, nint, nint, nuint, nint, nuint, nint, int>)Export(
            AbiFunction.ConvBackwardDataBnSums))(h.Value, &problem, &options, &bn, z, dy, w, da, sums, sumsBytes, workspace, workspaceBytes, stream),
            AbiFunction.ConvBackwardDataBnSums);
    }

    /// <summary>One of the three passes: <see cref="ConvForward"/>, <see cref="ConvBackwardData"/> or
    /// <see cref="ConvBackwardWeight"/>, with the operands in the order <see cref="ConvPassOperands"/> names them.</summary>
    public void Conv(ConvPass pass, CheapConvHandle handle, ConvProblem problem, KernelOptions options, nint first, nint second, nint output,
        nint workspace, nuint workspaceBytes, nint stream) =>
        WorkspaceCall(ConvCall(pass), handle, problem, options, first, second, output, workspace, workspaceBytes, stream);

    /// <summary>"cc_conv_forward", "cc_conv_backward_data" or "cc_conv_backward_weight".</summary>
    internal static AbiFunction ConvCall(ConvPass pass) => pass switch
    {
        ConvPass.Forward => AbiFunction.ConvForward,
        ConvPass.BackwardData => AbiFunction.ConvBackwardData,
        _ => AbiFunction.ConvBackwardWeight,
    };

    // ----- linear layer -----

    /// <summary>cc_linear_validate.</summary>
    public void LinearValidate(LinearProblem problem) =>
        Validate(AbiFunction.LinearValidate, problem);

    /// <summary>cc_linear_workspace_size: the weight gradient's workspace (the other passes need none).</summary>
    public nuint LinearWorkspaceSize(LinearProblem problem, KernelOptions options)
    {
        nuint bytes;
        Check(((delegate* unmanaged<LinearProblem*, KernelOptions*, nuint*, int>)Export(AbiFunction.LinearWorkspaceSize))(&problem, &options, &bytes),
            AbiFunction.LinearWorkspaceSize);
        return bytes;
    }

    /// <summary>cc_linear_forward: y = x·wᵀ + b.</summary>
    public void LinearForward(CheapConvHandle handle, LinearProblem problem, nint x, nint w, nint b, nint y, nint stream) =>
        Call(AbiFunction.LinearForward, handle, problem, x, w, b, y, stream);

    /// <summary>cc_linear_backward_data: dx = dy·w.</summary>
    public void LinearBackwardData(CheapConvHandle handle, LinearProblem problem, nint dy, nint w, nint dx, nint stream) =>
        Call(AbiFunction.LinearBackwardData, handle, problem, dy, w, dx, stream);

    /// <summary>cc_linear_backward_weight: dw = dyᵀ·x.</summary>
    public void LinearBackwardWeight(CheapConvHandle handle, LinearProblem problem, KernelOptions options, nint x, nint dy, nint dw,
        nint workspace, nuint workspaceBytes, nint stream) =>
        WorkspaceCall(AbiFunction.LinearBackwardWeight, handle, problem, options, x, dy, dw, workspace, workspaceBytes, stream);

    /// <summary>cc_linear_backward_bias: db = column sums of dy.</summary>
    public void LinearBackwardBias(CheapConvHandle handle, LinearProblem problem, nint dy, nint db, nint stream) =>
        Call(AbiFunction.LinearBackwardBias, handle, problem, dy, db, stream);

    // ----- batch normalisation -----

    /// <summary>cc_batchnorm_validate.</summary>
    public void BatchNormValidate(BatchNormProblem problem) =>
        Validate(AbiFunction.BatchnormValidate, problem);

    /// <summary>cc_batchnorm_train_forward: batch statistics saved, running statistics updated in place, y normalised.</summary>
    public void BatchNormTrainForward(CheapConvHandle handle, BatchNormProblem problem, nint x, nint gamma, nint beta,
        nint runningMean, nint runningVar, nint y, nint saveMean, nint saveInvStd, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, BatchNormProblem*, nint, nint, nint, nint, nint, nint, nint, nint, nint, int>)Export(AbiFunction.BatchnormTrainForward))(
            h.Value, &problem, x, gamma, beta, runningMean, runningVar, y, saveMean, saveInvStd, stream), AbiFunction.BatchnormTrainForward);
    }

    /// <summary>cc_batchnorm_train_forward_from_stats: <see cref="BatchNormTrainForward"/> with the batch statistics combined
    /// from the <paramref name="slots"/> slots per channel that <see cref="ConvForwardBatchNormStats"/> wrote for x.</summary>
    public void BatchNormTrainForwardFromStats(CheapConvHandle handle, BatchNormProblem problem, nint stats, int slots, nint x, nint gamma,
        nint beta, nint runningMean, nint runningVar, nint y, nint saveMean, nint saveInvStd, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, BatchNormProblem*, nint, int, nint, nint, nint, nint, nint, nint, nint, nint, nint, int>)Export(
            AbiFunction.BatchnormTrainForwardFromStats))(h.Value, &problem, stats, slots, x, gamma, beta, runningMean, runningVar, y, saveMean,
            saveInvStd, stream), AbiFunction.BatchnormTrainForwardFromStats);
    }

    /// <summary>cc_batchnorm_eval_forward: normalised by the running statistics.</summary>
    public void BatchNormEvalForward(CheapConvHandle handle, BatchNormProblem problem, nint x, nint gamma, nint beta,
        nint runningMean, nint runningVar, nint y, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, BatchNormProblem*, nint, nint, nint, nint, nint, nint, nint, int>)Export(AbiFunction.BatchnormEvalForward))(
            h.Value, &problem, x, gamma, beta, runningMean, runningVar, y, stream), AbiFunction.BatchnormEvalForward);
    }

    /// <summary>cc_batchnorm_backward: of the training-mode forward; <paramref name="beta"/> is read only with ReLU (0 otherwise).</summary>
    public void BatchNormBackward(CheapConvHandle handle, BatchNormProblem problem, nint x, nint dy, nint gamma, nint beta,
        nint saveMean, nint saveInvStd, nint dx, nint dgamma, nint dbeta, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, BatchNormProblem*, nint, nint, nint, nint, nint, nint, nint, nint, nint, nint, int>)Export(AbiFunction.BatchnormBackward))(
            h.Value, &problem, x, dy, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta, stream), AbiFunction.BatchnormBackward);
    }

    /// <summary>cc_batchnorm_train_statistics: the statistics part of <see cref="BatchNormTrainForward"/> (saved, running updated), no y.</summary>
    public void BatchNormTrainStatistics(CheapConvHandle handle, BatchNormProblem problem, nint x, nint runningMean, nint runningVar, nint saveMean,
        nint saveInvStd, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, BatchNormProblem*, nint, nint, nint, nint, nint, nint, int>)Export(AbiFunction.BatchnormTrainStatistics))(
            h.Value, &problem, x, runningMean, runningVar, saveMean, saveInvStd, stream), AbiFunction.BatchnormTrainStatistics);
    }

    /// <summary>cc_batchnorm_train_statistics_from_stats: <see cref="BatchNormTrainStatistics"/> from the <paramref name="slots"/> slots per
    /// channel that <see cref="ConvForwardBatchNormStats"/> wrote.</summary>
    public void BatchNormTrainStatisticsFromStats(CheapConvHandle handle, BatchNormProblem problem, nint stats, int slots, nint runningMean,
        nint runningVar, nint saveMean, nint saveInvStd, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, BatchNormProblem*, nint, int, nint, nint, nint, nint, nint, int>)Export(
            AbiFunction.BatchnormTrainStatisticsFromStats))(h.Value, &problem, stats, slots, runningMean, runningVar, saveMean, saveInvStd, stream),
            AbiFunction.BatchnormTrainStatisticsFromStats);
    }

    /// <summary>cc_batchnorm_backward_from_sums: <see cref="BatchNormBackward"/> with dβ and dγ combined from the
    /// <paramref name="slots"/> slots per channel that <see cref="ConvBackwardDataBnSums"/> wrote for dy.</summary>
    public void BatchNormBackwardFromSums(CheapConvHandle handle, BatchNormProblem problem, nint sums, int slots, nint x, nint dy, nint gamma,
        nint beta, nint saveMean, nint saveInvStd, nint dx, nint dgamma, nint dbeta, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, BatchNormProblem*, nint, int, nint, nint, nint, nint, nint, nint, nint, nint, nint, nint, int>)Export(
            AbiFunction.BatchnormBackwardFromSums))(h.Value, &problem, sums, slots, x, dy, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta,
            stream), AbiFunction.BatchnormBackwardFromSums);
    }

    // ----- element-wise -----

    /// <summary>cc_elementwise_validate.</summary>
    public void ElementwiseValidate(ElementwiseProblem problem) =>
        Validate(AbiFunction.ElementwiseValidate, problem);

    /// <summary>cc_sum_workspace_size.</summary>
    public nuint SumWorkspaceSize(ElementwiseProblem problem)
    {
        nuint bytes;
        Check(((delegate* unmanaged<ElementwiseProblem*, nuint*, int>)Export(AbiFunction.SumWorkspaceSize))(&problem, &bytes), AbiFunction.SumWorkspaceSize);
        return bytes;
    }

    /// <summary>cc_relu_forward: y = max(x, 0).</summary>
    public void ReluForward(CheapConvHandle handle, ElementwiseProblem problem, nint x, nint y, nint stream) =>
        Call(AbiFunction.ReluForward, handle, problem, x, y, stream);

    /// <summary>cc_relu_backward: dx = dy where y &gt; 0, else 0.</summary>
    public void ReluBackward(CheapConvHandle handle, ElementwiseProblem problem, nint y, nint dy, nint dx, nint stream) =>
        Call(AbiFunction.ReluBackward, handle, problem, y, dy, dx, stream);

    /// <summary>cc_add: y = a + b (y may alias a or b).</summary>
    public void Add(CheapConvHandle handle, ElementwiseProblem problem, nint a, nint b, nint y, nint stream) =>
        Call(AbiFunction.Add, handle, problem, a, b, y, stream);

    /// <summary>cc_fill: every element of x = value.</summary>
    public void Fill(CheapConvHandle handle, ElementwiseProblem problem, float value, nint x, nint stream) =>
        InPlaceCall(AbiFunction.Fill, handle, problem, value, x, stream);

    /// <summary>cc_scale: x *= alpha.</summary>
    public void Scale(CheapConvHandle handle, ElementwiseProblem problem, float alpha, nint x, nint stream) =>
        InPlaceCall(AbiFunction.Scale, handle, problem, alpha, x, stream);

    // cc_fill and cc_scale share one C signature: (handle, problem, scalar, x, stream).
    private void InPlaceCall(AbiFunction call, CheapConvHandle handle, ElementwiseProblem problem, float scalar, nint x, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, ElementwiseProblem*, float, nint, nint, int>)Export(call))(h.Value, &problem, scalar, x, stream), call);
    }

    /// <summary>cc_axpy: y += alpha·x.</summary>
    public void Axpy(CheapConvHandle handle, ElementwiseProblem problem, float alpha, nint x, nint y, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, ElementwiseProblem*, float, nint, nint, nint, int>)Export(AbiFunction.Axpy))(h.Value, &problem, alpha, x, y, stream), AbiFunction.Axpy);
    }

    /// <summary>cc_sum: result[0] = the sum of x, in a fixed order.</summary>
    public void Sum(CheapConvHandle handle, ElementwiseProblem problem, nint x, nint result, nint workspace, nuint workspaceBytes, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, ElementwiseProblem*, nint, nint, nint, nuint, nint, int>)Export(AbiFunction.Sum))(
            h.Value, &problem, x, result, workspace, workspaceBytes, stream), AbiFunction.Sum);
    }

    /// <summary>cc_first_nonfinite: result[i] = the first NaN or infinity of tensors[i] (a device array of
    /// <see cref="TensorRef"/>), or 0 when it has none; one launch for the whole list.</summary>
    public void FirstNonFinite(CheapConvHandle handle, nint tensors, int count, nint result, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, nint, int, nint, nint, int>)Export(AbiFunction.FirstNonfinite))(h.Value, tensors, count, result, stream),
            AbiFunction.FirstNonfinite);
    }

    // ----- pooling and padding -----

    /// <summary>cc_pool_validate.</summary>
    public void PoolValidate(PoolProblem problem) =>
        Validate(AbiFunction.PoolValidate, problem);

    /// <summary>cc_global_avg_pool_forward: y[n, c] = mean of x[n, c, :, :].</summary>
    public void GlobalAvgPoolForward(CheapConvHandle handle, PoolProblem problem, nint x, nint y, nint stream) =>
        Call(AbiFunction.GlobalAvgPoolForward, handle, problem, x, y, stream);

    /// <summary>cc_global_avg_pool_backward.</summary>
    public void GlobalAvgPoolBackward(CheapConvHandle handle, PoolProblem problem, nint dy, nint dx, nint stream) =>
        Call(AbiFunction.GlobalAvgPoolBackward, handle, problem, dy, dx, stream);

    /// <summary>cc_zero_pad_forward: zeros around x.</summary>
    public void ZeroPadForward(CheapConvHandle handle, PoolProblem problem, nint x, nint y, nint stream) =>
        Call(AbiFunction.ZeroPadForward, handle, problem, x, y, stream);

    /// <summary>cc_zero_pad_backward: the inner part of dy.</summary>
    public void ZeroPadBackward(CheapConvHandle handle, PoolProblem problem, nint dy, nint dx, nint stream) =>
        Call(AbiFunction.ZeroPadBackward, handle, problem, dy, dx, stream);

    // ----- losses -----

    /// <summary>cc_loss_validate.</summary>
    public void LossValidate(LossProblem problem) =>
        Validate(AbiFunction.LossValidate, problem);

    /// <summary>cc_loss_workspace_size: the workspace of every forward loss.</summary>
    public nuint LossWorkspaceSize(LossProblem problem)
    {
        nuint bytes;
        Check(((delegate* unmanaged<LossProblem*, nuint*, int>)Export(AbiFunction.LossWorkspaceSize))(&problem, &bytes), AbiFunction.LossWorkspaceSize);
        return bytes;
    }

    /// <summary>cc_cross_entropy_forward: mean −log softmax(logits)[label] into loss[0]; the probabilities kept.</summary>
    public void CrossEntropyForward(CheapConvHandle handle, LossProblem problem, nint logits, nint labels, nint loss, nint probabilities,
        nint workspace, nuint workspaceBytes, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, LossProblem*, nint, nint, nint, nint, nint, nuint, nint, int>)Export(AbiFunction.CrossEntropyForward))(
            h.Value, &problem, logits, labels, loss, probabilities, workspace, workspaceBytes, stream), AbiFunction.CrossEntropyForward);
    }

    /// <summary>cc_cross_entropy_backward: dlogits = (p − onehot) · dloss[0] / n.</summary>
    public void CrossEntropyBackward(CheapConvHandle handle, LossProblem problem, nint probabilities, nint labels, nint dloss, nint dlogits, nint stream) =>
        Call(AbiFunction.CrossEntropyBackward, handle, problem, probabilities, labels, dloss, dlogits, stream);

    /// <summary>cc_kd_forward: T²/n · Σ KL(softmax(teacher/T) ‖ softmax(student/T)); both softmaxes kept.</summary>
    public void KdForward(CheapConvHandle handle, LossProblem problem, nint student, nint teacher, nint loss, nint studentSoft, nint teacherSoft,
        nint workspace, nuint workspaceBytes, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, LossProblem*, nint, nint, nint, nint, nint, nint, nuint, nint, int>)Export(AbiFunction.KdForward))(
            h.Value, &problem, student, teacher, loss, studentSoft, teacherSoft, workspace, workspaceBytes, stream), AbiFunction.KdForward);
    }

    /// <summary>cc_kd_backward.</summary>
    public void KdBackward(CheapConvHandle handle, LossProblem problem, nint studentSoft, nint teacherSoft, nint dloss, nint dstudent, nint stream) =>
        Call(AbiFunction.KdBackward, handle, problem, studentSoft, teacherSoft, dloss, dstudent, stream);

    /// <summary>cc_at_forward: attention transfer of one activation pair; maps and the student's norms kept.</summary>
    public void AtForward(CheapConvHandle handle, LossProblem problem, nint student, nint teacher, nint loss, nint studentMap, nint teacherMap,
        nint studentNorm, nint workspace, nuint workspaceBytes, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, LossProblem*, nint, nint, nint, nint, nint, nint, nint, nuint, nint, int>)Export(AbiFunction.AtForward))(
            h.Value, &problem, student, teacher, loss, studentMap, teacherMap, studentNorm, workspace, workspaceBytes, stream), AbiFunction.AtForward);
    }

    /// <summary>cc_at_backward.</summary>
    public void AtBackward(CheapConvHandle handle, LossProblem problem, nint student, nint studentMap, nint teacherMap, nint studentNorm,
        nint dloss, nint dstudent, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, LossProblem*, nint, nint, nint, nint, nint, nint, nint, int>)Export(AbiFunction.AtBackward))(
            h.Value, &problem, student, studentMap, teacherMap, studentNorm, dloss, dstudent, stream), AbiFunction.AtBackward);
    }

    /// <summary>cc_count_correct: correct[0] = samples whose first maximal logit is the label (int32 on the device).</summary>
    public void CountCorrect(CheapConvHandle handle, LossProblem problem, nint logits, nint labels, nint correct, nint stream) =>
        Call(AbiFunction.CountCorrect, handle, problem, logits, labels, correct, stream);

    /// <summary>cc_count_correct_f32: the same count as <see cref="CountCorrect"/>, written as a float (exact below 2^24).</summary>
    public void CountCorrectF32(CheapConvHandle handle, LossProblem problem, nint logits, nint labels, nint correct, nint stream) =>
        Call(AbiFunction.CountCorrectF32, handle, problem, logits, labels, correct, stream);

    // ----- SGD -----

    /// <summary>cc_sgd_validate.</summary>
    public void SgdValidate(SgdProblem problem) =>
        Validate(AbiFunction.SgdValidate, problem);

    /// <summary>cc_sgd_step: one torch.optim.SGD step in place.</summary>
    public void SgdStep(CheapConvHandle handle, SgdProblem problem, nint parameter, nint gradient, nint momentumBuffer, nint stream) =>
        Call(AbiFunction.SgdStep, handle, problem, parameter, gradient, momentumBuffer, stream);

    // ----- stream capture and graphs; ordered copies -----

    /// <summary>cc_capture_begin: the calls made with <paramref name="handle"/> on <paramref name="stream"/> are recorded,
    /// not run, until <see cref="CaptureEnd"/>.</summary>
    public void CaptureBegin(CheapConvHandle handle, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, nint, int>)Export(AbiFunction.CaptureBegin))(h.Value, stream), AbiFunction.CaptureBegin);
    }

    /// <summary>cc_capture_end: the recording as a cc_graph (free it with <see cref="GraphDestroy"/>).</summary>
    public nint CaptureEnd(CheapConvHandle handle, nint stream)
    {
        using var h = Use(handle);
        nint graph;
        Check(((delegate* unmanaged<nint, nint, nint*, int>)Export(AbiFunction.CaptureEnd))(h.Value, stream, &graph), AbiFunction.CaptureEnd);
        return graph;
    }

    /// <summary>cc_graph_launch: runs the recording again, in order, on <paramref name="stream"/>.</summary>
    public void GraphLaunch(CheapConvHandle handle, nint graph, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, nint, nint, int>)Export(AbiFunction.GraphLaunch))(h.Value, graph, stream), AbiFunction.GraphLaunch);
    }

    /// <summary>cc_graph_destroy.</summary>
    public void GraphDestroy(CheapConvHandle handle, nint graph)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, nint, int>)Export(AbiFunction.GraphDestroy))(h.Value, graph), AbiFunction.GraphDestroy);
    }

    /// <summary>cc_memcpy_async: a device-to-device copy ordered on the stream (recorded by a capture).</summary>
    public void MemcpyAsync(CheapConvHandle handle, nint destination, nint source, nuint bytes, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, nint, nint, nuint, nint, int>)Export(AbiFunction.MemcpyAsync))(h.Value, destination, source, bytes, stream),
            AbiFunction.MemcpyAsync);
    }

    /// <summary>cc_memset8_async: a byte fill ordered on the stream (recorded by a capture).</summary>
    public void Memset8Async(CheapConvHandle handle, nint destination, byte value, nuint bytes, nint stream)
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, nint, byte, nuint, nint, int>)Export(AbiFunction.Memset8Async))(h.Value, destination, value, bytes, stream),
            AbiFunction.Memset8Async);
    }

    // ----- the call shapes several functions share -----

    // Every *_validate: (const problem*).
    private void Validate<TProblem>(AbiFunction call, TProblem problem) where TProblem : unmanaged =>
        Check(((delegate* unmanaged<TProblem*, int>)Export(call))(&problem), call);

    // (handle, const problem*, two, three or four device pointers, stream): the calls without options or workspace.
    private void Call<TProblem>(AbiFunction call, CheapConvHandle handle, TProblem problem, nint a, nint b, nint stream) where TProblem : unmanaged
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, TProblem*, nint, nint, nint, int>)Export(call))(h.Value, &problem, a, b, stream), call);
    }

    private void Call<TProblem>(AbiFunction call, CheapConvHandle handle, TProblem problem, nint a, nint b, nint c, nint stream) where TProblem : unmanaged
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, TProblem*, nint, nint, nint, nint, int>)Export(call))(h.Value, &problem, a, b, c, stream), call);
    }

    private void Call<TProblem>(AbiFunction call, CheapConvHandle handle, TProblem problem, nint a, nint b, nint c, nint d, nint stream)
        where TProblem : unmanaged
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, TProblem*, nint, nint, nint, nint, nint, int>)Export(call))(h.Value, &problem, a, b, c, d, stream), call);
    }

    // (handle, const problem*, const cc_options*, in, in, out, workspace, bytes, stream): the conv passes and the linear
    // weight gradient.
    private void WorkspaceCall<TProblem>(AbiFunction call, CheapConvHandle handle, TProblem problem, KernelOptions options, nint first, nint second,
        nint output, nint workspace, nuint workspaceBytes, nint stream) where TProblem : unmanaged
    {
        using var h = Use(handle);
        Check(((delegate* unmanaged<nint, TProblem*, KernelOptions*, nint, nint, nint, nint, nuint, nint, int>)Export(call))(
            h.Value, &problem, &options, first, second, output, workspace, workspaceBytes, stream), call);
    }

    public override string ToString() => $"{FileName} {VersionText} ({Backend})";
}
