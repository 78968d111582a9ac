using System.Runtime.InteropServices;

namespace CheapConv.Devices;

/// <summary>
/// The emulator's memory-traffic profile (native/include/cheapconv/profile.h): the kernels run in the
/// profiling emulator library, every global and shared memory access is recorded, grouped into warp-level
/// instructions and counted with Nsight Compute's definitions (requests, 32-byte sectors, shared-memory
/// wavefronts and bank conflicts, unique bytes, atomics), per launch and per static instruction.
/// </summary>
/// <remarks>
/// <para>
/// The profiling library is a whole emulator library (it also exports the C ABI and the <c>cc_emu_*</c> API),
/// so <see cref="Device"/> runs anything the production emulator runs — a single kernel, a
/// <see cref="Backends.GpuBackend"/> op, a training step — and every launch between <see cref="Begin"/> and
/// <see cref="End"/> is recorded, whoever makes it.
/// </para>
/// <para>
/// Sampling: with a sample of S blocks per launch only S evenly spaced blocks are recorded and the counts
/// are scaled by total / S (<see cref="LaunchProfile.Scaled"/>). The other blocks are skipped — the
/// launch's outputs are then partial, and so is everything computed from them — unless
/// <c>executeAllBlocks</c> runs them unrecorded (<see cref="LaunchProfile.OutputsComplete"/> says which).
/// Profiles measure memory traffic, never time.
/// </para>
/// </remarks>
internal sealed unsafe class EmulatorProfile : IDisposable
{
    /// <summary>The profiling library, copied beside this assembly by the build (make -C native profile).</summary>
    public const string LibraryFileName = "libcheapconv_emu_profile.so";

    /// <summary>Environment variable that overrides where the profiling library is loaded from.</summary>
    public const string LibraryEnvironmentVariable = "CHEAPCONV_EMU_PROFILE_LIBRARY";

    /// <summary>CC_PROF_VERSION of the profile.h this wrapper follows.</summary>
    public const int ExpectedVersion = 2;

    private const int InvalidValue = 1; // CUDA_ERROR_INVALID_VALUE
    private const uint ExecuteAllBlocksFlag = 1; // CC_PROF_EXECUTE_ALL_BLOCKS

    private readonly delegate* unmanaged<ulong, uint, int> _begin;
    private readonly delegate* unmanaged<int> _end;
    private readonly delegate* unmanaged<int> _launchCount;
    private readonly delegate* unmanaged<int, NativeLaunch*, int> _launch;
    private readonly delegate* unmanaged<int, int, NativeInstruction*, int> _instruction;

    private EmulatorProfile(nint library, EmulatedDevice device)
    {
        Device = device;
        _begin = (delegate* unmanaged<ulong, uint, int>)Export(library, "cc_prof_begin");
        _end = (delegate* unmanaged<int>)Export(library, "cc_prof_end");
        _launchCount = (delegate* unmanaged<int>)Export(library, "cc_prof_launch_count");
        _launch = (delegate* unmanaged<int, NativeLaunch*, int>)Export(library, "cc_prof_launch");
        _instruction = (delegate* unmanaged<int, int, NativeInstruction*, int>)Export(library, "cc_prof_instruction");
        Version = ((delegate* unmanaged<int>)Export(library, "cc_prof_version"))();
        if (Version != ExpectedVersion)
        {
            throw new DeviceUnavailableException(
                $"profiling library {device.LibraryPath} has profile API version {Version}, this CheapConv expects {ExpectedVersion}: rebuild it with 'make -C native profile'");
        }
    }

    /// <summary>
    /// Opens the profiling library. Without <paramref name="libraryPath"/>, uses $CHEAPCONV_EMU_PROFILE_LIBRARY
    /// or the library beside this assembly.
    /// </summary>
    public static EmulatorProfile Open(string? libraryPath = null)
    {
        var path = libraryPath
            ?? Environment.GetEnvironmentVariable(LibraryEnvironmentVariable)
            ?? Path.Combine(AppContext.BaseDirectory, LibraryFileName);
        if (!File.Exists(path))
        {
            throw new DeviceUnavailableException(
                $"profiling library not found at {path}: build it with 'make -C native profile' (dotnet build does this) or set {LibraryEnvironmentVariable}");
        }

        var device = EmulatedDevice.Open(path);
        try
        {
            // The same handle EmulatedDevice holds (the loader counts references); never unloaded.
            return new EmulatorProfile(NativeLibrary.Load(path), device);
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>The emulator inside the profiling library: launches through it (or through the C ABI of the same library) are profiled.</summary>
    public EmulatedDevice Device { get; }

    /// <summary>The profile API version of the loaded library (cc_prof_version).</summary>
    public int Version { get; }

    /// <summary>
    /// Starts a session, discarding the last one's records. <paramref name="sampleBlocks"/>: blocks recorded per
    /// launch, 0 for all. <paramref name="executeAllBlocks"/>: run the blocks outside the sample too (unrecorded),
    /// so outputs stay complete, at the cost of an unsampled run's time.
    /// </summary>
    public void Begin(long sampleBlocks = 0, bool executeAllBlocks = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sampleBlocks);
        var status = _begin((ulong)sampleBlocks, executeAllBlocks ? ExecuteAllBlocksFlag : 0);
        if (status != 0)
        {
            throw new InvalidOperationException($"cc_prof_begin failed with status {status}");
        }
    }

    /// <summary>Ends the session (later launches run normally, unrecorded) and returns its launches, in the order they finished.</summary>
    public IReadOnlyList<LaunchProfile> End()
    {
        _end();
        return Read();
    }

    /// <summary>Begins a session, runs <paramref name="work"/>, ends the session and returns what it recorded.</summary>
    public IReadOnlyList<LaunchProfile> Profile(Action work, long sampleBlocks = 0, bool executeAllBlocks = false)
    {
        ArgumentNullException.ThrowIfNull(work);
        Begin(sampleBlocks, executeAllBlocks);
        try
        {
            work();
        }
        finally
        {
            _end();
        }

        return Read();
    }

    /// <summary>The launches of the current or last session.</summary>
    public IReadOnlyList<LaunchProfile> Read()
    {
        var launches = new List<LaunchProfile>();
        var count = _launchCount();
        for (var i = 0; i < count; i++)
        {
            NativeLaunch launch;
            Check(_launch(i, &launch), $"launch {i}");
            var instructions = new List<InstructionProfile>(launch.InstructionCount);
            for (var j = 0; j < launch.InstructionCount; j++)
            {
                NativeInstruction instruction;
                Check(_instruction(i, j, &instruction), $"instruction {j} of launch {i}");
                instructions.Add(new InstructionProfile(
                    instruction.Id, Text(instruction.Function), Text(instruction.File), (int)instruction.Line,
                    (MemoryAccessKind)instruction.Kind, (int)instruction.Width, (long)instruction.Requests,
                    (long)instruction.LaneAccesses, (long)instruction.Bytes, (long)instruction.Sectors,
                    (long)instruction.Wavefronts, (long)instruction.IdealWavefronts));
            }

            launches.Add(new LaunchProfile(
                Text(launch.Kernel), launch.Grid, launch.Block, launch.DynamicSharedBytes, launch.Status,
                (long)launch.BlocksTotal, (long)launch.BlocksSampled, (long)launch.BlocksExecuted, launch.OutputsComplete != 0,
                launch.Scale, launch.Raw, launch.Scaled, instructions));
        }

        return launches;
    }

    public void Dispose() => Device.Dispose();

    private static void Check(int status, string what)
    {
        if (status != 0)
        {
            throw new InvalidOperationException($"the profiling library refused to return {what} (status {status}{(status == InvalidValue ? ", out of range: a session began meanwhile?" : "")})");
        }
    }

    private static string Text(nint utf8) => Marshal.PtrToStringUTF8(utf8) ?? "";

    private static nint Export(nint library, string name) =>
        NativeLibrary.TryGetExport(library, name, out var address)
            ? address
            : throw new DeviceUnavailableException($"the profiling library lacks the export {name}: rebuild it with 'make -C native profile'");

    /// <summary>cc_prof_launch_info (profile.h), field for field.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeLaunch
    {
        public nint Kernel;
        public Dim3 Grid;
        public Dim3 Block;
        public uint DynamicSharedBytes;
        public int Status;
        public ulong BlocksTotal;
        public ulong BlocksSampled;
        public ulong BlocksExecuted;
        public int OutputsComplete;
        public int InstructionCount;
        public double Scale;
        public MemoryCounters Raw;
        public MemoryCounters Scaled;
    }

    /// <summary>cc_prof_instruction_info (profile.h), field for field.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeInstruction
    {
        public ulong Id;
        public nint Function;
        public nint File;
        public uint Line;
        public int Kind;
        public uint Width;
        public uint Reserved;
        public ulong Requests;
        public ulong LaneAccesses;
        public ulong Bytes;
        public ulong Sectors;
        public ulong Wavefronts;
        public ulong IdealWavefronts;
    }
}

/// <summary>What a static memory instruction does, and where (cc_prof_kind).</summary>
internal enum MemoryAccessKind
{
    GlobalLoad = 0,
    GlobalStore = 1,
    GlobalAtomic = 2,
    SharedLoad = 3,
    SharedStore = 4,
    SharedAtomic = 5,

    /// <summary>A tensor-core mma.sync (no memory); its requests are warp-level executions.</summary>
    TensorMma = 6,
}

/// <summary>
/// One launch's totals (cc_prof_counters, field for field). Requests are warp-level; sectors are 32-byte
/// global-memory sectors summed over requests; wavefronts are shared-memory wavefronts (the ideal count is what
/// the same request would cost without bank conflicts); unique bytes and sectors are the launch's distinct
/// global footprint (compulsory traffic); atomics are counted apart from loads and stores.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly record struct MemoryCounters
{
    public long GlobalLoadRequests { get; init; }
    public long GlobalLoadSectors { get; init; }
    public long GlobalLoadBytes { get; init; }
    public long GlobalStoreRequests { get; init; }
    public long GlobalStoreSectors { get; init; }
    public long GlobalStoreBytes { get; init; }
    public long GlobalAtomicRequests { get; init; }
    public long GlobalAtomicSectors { get; init; }
    public long GlobalAtomicOps { get; init; }
    public long UniqueReadBytes { get; init; }
    public long UniqueReadSectors { get; init; }
    public long UniqueWriteBytes { get; init; }
    public long UniqueWriteSectors { get; init; }
    public long SharedLoadRequests { get; init; }
    public long SharedLoadWavefronts { get; init; }
    public long SharedLoadIdealWavefronts { get; init; }
    public long SharedLoadBytes { get; init; }
    public long SharedStoreRequests { get; init; }
    public long SharedStoreWavefronts { get; init; }
    public long SharedStoreIdealWavefronts { get; init; }
    public long SharedStoreBytes { get; init; }
    public long SharedAtomicRequests { get; init; }
    public long SharedAtomicOps { get; init; }

    /// <summary>Warp-level mma.sync m16n8k8 tf32 executions: 2048 FLOPs each, on the tensor cores.</summary>
    public long TensorMmaRequests { get; init; }

    /// <summary>Size of the native struct: 24 64-bit counters.</summary>
    public const int NativeSize = 24 * sizeof(long);

    /// <summary>Sectors per global load request (4 for coalesced fp32, 16 for float4); 0 without loads.</summary>
    public double SectorsPerLoadRequest => Ratio(GlobalLoadSectors, GlobalLoadRequests);

    /// <summary>Sectors per global store request; 0 without stores.</summary>
    public double SectorsPerStoreRequest => Ratio(GlobalStoreSectors, GlobalStoreRequests);

    /// <summary>Shared-memory bank conflicts of loads and stores: wavefronts beyond the ideal (Nsight's l1tex__data_bank_conflicts_pipe_lsu_mem_shared).</summary>
    public long SharedBankConflicts =>
        SharedLoadWavefronts - SharedLoadIdealWavefronts + SharedStoreWavefronts - SharedStoreIdealWavefronts;

    private static double Ratio(long a, long b) => b == 0 ? 0 : (double)a / b;
}

/// <summary>
/// One recorded kernel launch. <see cref="Raw"/> counts the recorded blocks exactly; <see cref="Scaled"/> is
/// Raw × <see cref="Scale"/> (total / sampled blocks), where the unique bytes become an estimate (exact when
/// blocks touch disjoint data of equal size, too high when they share inputs).
/// </summary>
/// <param name="Status">The emulator's status for the launch (0: success).</param>
/// <param name="BlocksExecuted">Blocks that ran: the sample, or all of them when the session executed every block.</param>
/// <param name="OutputsComplete">Whether every block ran, so the launch's outputs are whole.</param>
internal sealed record LaunchProfile(
    string Kernel,
    Dim3 Grid,
    Dim3 Block,
    uint DynamicSharedBytes,
    int Status,
    long BlocksTotal,
    long BlocksSampled,
    long BlocksExecuted,
    bool OutputsComplete,
    double Scale,
    MemoryCounters Raw,
    MemoryCounters Scaled,
    IReadOnlyList<InstructionProfile> Instructions);

/// <summary>
/// One static memory instruction of a launch, raw counts over the recorded blocks (scale by the launch's
/// <see cref="LaunchProfile.Scale"/>).
/// </summary>
/// <param name="Id">The instruction's offset in the profiling library: stable for one build.</param>
/// <param name="Function">The function its code was compiled into: the kernel, or a __device__ function the host compiler did not inline; empty if unknown.</param>
/// <param name="File">Source file of the access, relative to native/ (through inlined functions, past cuda_shim.h); empty if addr2line was not available.</param>
/// <param name="Width">Bytes one lane accesses.</param>
/// <param name="Requests">Warp-level executions with at least one active lane.</param>
/// <param name="LaneAccesses">Thread-level executions.</param>
/// <param name="Sectors">Global: 32-byte sectors summed over requests; 0 for shared memory.</param>
/// <param name="Wavefronts">Shared loads and stores: wavefronts; 0 otherwise.</param>
/// <param name="IdealWavefronts">Shared loads and stores: wavefronts without bank conflicts; 0 otherwise.</param>
internal sealed record InstructionProfile(
    ulong Id,
    string Function,
    string File,
    int Line,
    MemoryAccessKind Kind,
    int Width,
    long Requests,
    long LaneAccesses,
    long Bytes,
    long Sectors,
    long Wavefronts,
    long IdealWavefronts)
{
    /// <summary>Sectors per request (global instructions).</summary>
    public double SectorsPerRequest => Requests == 0 ? 0 : (double)Sectors / Requests;

    /// <summary>Wavefronts beyond the ideal (shared loads and stores).</summary>
    public long BankConflicts => Wavefronts - IdealWavefronts;
}
