namespace CheapConv.Profiling;

/// <summary>
/// What decides how many blocks of a kernel one SM holds at once: the inputs of NVIDIA's occupancy calculator
/// (<c>cuda_occupancy.h</c> of the CUDA toolkit, whose rules <see cref="Occupancy"/> follows).
/// </summary>
/// <param name="Arch">"sm_90", "sm_80".</param>
/// <param name="RegistersPerSm">32-bit registers per SM (the register file, split into <paramref name="SubPartitions"/> equal parts).</param>
/// <param name="MaxRegistersPerBlock">Registers one block may hold.</param>
/// <param name="MaxRegistersPerThread">The most registers a thread may use (cuda_occupancy.h: 256 for compute capability 7–9).</param>
/// <param name="RegisterAllocationUnit">Registers are allocated per warp in multiples of this.</param>
/// <param name="SubPartitions">SM sub-partitions (warp schedulers), each with a quarter of the register file.</param>
/// <param name="MaxBlocksPerSm">Resident blocks per SM.</param>
/// <param name="SharedPerSm">The largest shared-memory carveout of an SM, bytes.</param>
/// <param name="SharedPerBlockDefault">Shared memory a block may use without the opt-in attribute, bytes.</param>
/// <param name="SharedPerBlockOptIn">Shared memory a block may use with the opt-in attribute, bytes.</param>
/// <param name="ReservedSharedPerBlock">Shared memory the driver reserves per block (sm_80 and later), bytes.</param>
/// <param name="SharedAllocationUnit">Shared memory is allocated per block in multiples of this, bytes.</param>
/// <param name="SharedCarveoutsKb">The shared-memory sizes an SM can be configured to, KB, ascending.</param>
internal sealed record SmLimits(
    string Arch, int RegistersPerSm, int MaxRegistersPerBlock, int MaxRegistersPerThread, int RegisterAllocationUnit,
    int SubPartitions, int WarpSize, int MaxThreadsPerSm, int MaxThreadsPerBlock, int MaxBlocksPerSm,
    int SharedPerSm, int SharedPerBlockDefault, int SharedPerBlockOptIn, int ReservedSharedPerBlock, int SharedAllocationUnit,
    IReadOnlyList<int> SharedCarveoutsKb)
{
    /// <summary>Resident warps per SM.</summary>
    public int MaxWarpsPerSm => MaxThreadsPerSm / WarpSize;
}

/// <summary>
/// A named GPU for the roofline model: the numbers a launch's time is modelled from. Every number of every model
/// is in <see cref="GpuModels"/>, with its source.
/// </summary>
/// <param name="Key">The --gpu name: "h100", "h200", "a100".</param>
/// <param name="Sm">Per-SM limits (occupancy).</param>
/// <param name="ClockHz">SM clock the peaks are quoted at (maximum boost).</param>
/// <param name="DramBytesPerSecond">Peak DRAM (HBM) bandwidth.</param>
/// <param name="L2BytesPerClock">L2 → SM bandwidth of the whole chip, bytes per SM clock.</param>
/// <param name="SharedBytesPerClockPerSm">Shared-memory bandwidth of one SM: one wavefront (32 banks × 4 B) per clock.</param>
/// <param name="Fp32FlopsPerSecond">Peak fp32 FLOP/s (an FMA is two FLOPs), CUDA cores.</param>
/// <param name="Tf32FlopsPerSecond">Peak dense tf32 tensor-core FLOP/s.</param>
/// <param name="LaunchSeconds">Time one launch adds to a stream of back-to-back launches (without CUDA graphs).</param>
/// <param name="FfmaLatencyCycles">Dependent-issue latency of FFMA: the warps a scheduler needs to keep its fp32 pipe busy.</param>
internal sealed record GpuModel(
    string Key, string Name, SmLimits Sm, int SmCount, double ClockHz, double DramBytesPerSecond, double L2BytesPerClock,
    int SharedBytesPerClockPerSm, double Fp32FlopsPerSecond, double Tf32FlopsPerSecond, double LaunchSeconds, int FfmaLatencyCycles)
{
    /// <summary>L2 → SM bandwidth of the chip, bytes/s.</summary>
    public double L2BytesPerSecond => L2BytesPerClock * ClockHz;

    /// <summary>Shared-memory wavefronts the whole chip serves per second (one per SM per clock).</summary>
    public double SharedWavefrontsPerSecond => (double)SmCount * SharedBytesPerClockPerSm / 128 * ClockHz;

    public override string ToString() => Name;
}

/// <summary>
/// The GPUs the model knows, every number with its source. Sources:
/// <list type="bullet">
/// <item>[H100-DS] NVIDIA H100 Tensor Core GPU datasheet (H100 SXM column), nvidia.com/en-us/data-center/h100.</item>
/// <item>[H200-DS] NVIDIA H200 Tensor Core GPU datasheet (H200 SXM column), nvidia.com/en-us/data-center/h200.</item>
/// <item>[H100-WP] NVIDIA H100 Tensor Core GPU Architecture whitepaper (GH100: 132 SMs on H100 SXM5, 128 FP32 cores
/// per SM, 256 KB combined L1/shared per SM with up to 228 KB shared, 50 MB L2).</item>
/// <item>[A100-WP] NVIDIA A100 Tensor Core GPU Architecture whitepaper (108 SMs, 64 FP32 cores per SM, 1410 MHz boost, 164 KB shared per
/// SM, "L2 cache read bandwidth 5120 Bytes/clk").</item>
/// <item>[A100-DS] NVIDIA A100 80GB datasheet (SXM: 2,039 GB/s, 19.5 TFLOP/s fp32, 156 TFLOP/s tf32 dense).</item>
/// <item>[CUDA-PG] CUDA C++ Programming Guide, "Compute Capabilities" table (per-SM limits of 8.0 and 9.0) and
/// "Shared Memory" (32 banks of 4 bytes, one 32-bit word per bank per clock).</item>
/// <item>[OCC] cuda_occupancy.h of CUDA 11.8 (/usr/include/cuda_occupancy.h with Debian's toolkit): allocation
/// granularities, sub-partitions, carveouts, 1 KB reserved per block on sm_80+.</item>
/// <item>[JIA-18] Jia et al., "Dissecting the NVIDIA Volta GPU Architecture via Microbenchmarking" (2018): FFMA
/// dependent-issue latency 4 cycles; Ampere and Hopper keep 4 (Jia et al. Turing report 2019; Luo et al.,
/// "Benchmarking and Dissecting the Nvidia Hopper GPU Architecture", 2024).</item>
/// </list>
/// Two numbers are estimates until a GPU run calibrates them (DESIGN.md, "Seeing performance without a GPU"):
/// the L2 bandwidth of Hopper (NVIDIA publishes none; see <see cref="H100Sxm"/>) and the launch cost.
/// </summary>
internal static class GpuModels
{
    /// <summary>sm_90 per-SM limits [CUDA-PG, OCC]: 64K registers, 2048 threads, 32 blocks, 228 KB shared per SM, 227 KB per block.</summary>
    public static SmLimits Sm90 { get; } = new(
        Arch: "sm_90", RegistersPerSm: 65536, MaxRegistersPerBlock: 65536, MaxRegistersPerThread: 256, RegisterAllocationUnit: 256,
        SubPartitions: 4, WarpSize: 32, MaxThreadsPerSm: 2048, MaxThreadsPerBlock: 1024, MaxBlocksPerSm: 32,
        SharedPerSm: 228 * 1024, SharedPerBlockDefault: 48 * 1024, SharedPerBlockOptIn: 227 * 1024, ReservedSharedPerBlock: 1024,
        SharedAllocationUnit: 128, SharedCarveoutsKb: [0, 8, 16, 32, 64, 100, 132, 164, 196, 228]);

    /// <summary>sm_80 (A100) per-SM limits [CUDA-PG, OCC]: 64K registers, 2048 threads, 32 blocks, 164 KB shared per SM, 163 KB per block.</summary>
    public static SmLimits Sm80 { get; } = new(
        Arch: "sm_80", RegistersPerSm: 65536, MaxRegistersPerBlock: 65536, MaxRegistersPerThread: 256, RegisterAllocationUnit: 256,
        SubPartitions: 4, WarpSize: 32, MaxThreadsPerSm: 2048, MaxThreadsPerBlock: 1024, MaxBlocksPerSm: 32,
        SharedPerSm: 164 * 1024, SharedPerBlockDefault: 48 * 1024, SharedPerBlockOptIn: 163 * 1024, ReservedSharedPerBlock: 1024,
        SharedAllocationUnit: 128, SharedCarveoutsKb: [0, 8, 16, 32, 64, 100, 132, 164]);

    // Shared by H100 SXM and H200: the same GH100 die with 132 SMs enabled at the same clock [H100-WP, H200-DS].
    private const int HopperSms = 132;

    // 1980 MHz: the maximum SM boost clock of H100 SXM5; it is the clock at which the datasheet's 67 TFLOP/s fp32 holds:
    // 132 SMs × 128 FP32 lanes × 2 FLOP × 1.98 GHz = 66.9 TFLOP/s [H100-DS, H100-WP].
    private const double HopperClockHz = 1.98e9;

    // The fp32 peak: 67 TFLOP/s on H100 SXM [H100-DS], and the same on H200 SXM [H200-DS].
    private const double HopperFp32 = 67e12;

    // Dense tf32: the datasheets quote 989 TFLOP/s "with sparsity"; dense is half [H100-DS, H200-DS; DESIGN.md ~495].
    private const double HopperTf32Dense = 494.5e12;

    // L2 → SM bandwidth, bytes per clock of the whole chip. NVIDIA publishes no figure for Hopper; A100's is
    // 5120 B/clk [A100-WP]. We assume GH100 keeps A100's per-clock L2 width (same two-partition L2 organisation,
    // 50 vs 40 MB): 5120 B/clk × 1.98 GHz = 10.1 TB/s, inside the 7–12 TB/s that third-party microbenchmarks of
    // H100 report. Least certain number here: calibrate it on the first lent GPU.
    private const double HopperL2BytesPerClock = 5120;

    // One shared-memory wavefront per SM per clock: 32 banks × 4 bytes = 128 B/clk/SM [CUDA-PG].
    private const int SharedBytesPerClock = 128;

    // The cost one launch adds to a stream of short back-to-back launches without CUDA graphs: 2 µs. The usual
    // order of magnitude (NVIDIA's "Getting Started with CUDA Graphs" blog, 2019, measures a few µs per launch
    // of a short kernel, most of it launch overhead that graphs remove); an assumption until a GPU run measures it.
    private const double LaunchSeconds = 2e-6;

    // FFMA dependent-issue latency, cycles [JIA-18].
    private const int FfmaLatency = 4;

    /// <summary>H100 SXM5 80 GB: HBM3 at 3.35 TB/s [H100-DS], the GH100 numbers above.</summary>
    public static GpuModel H100Sxm { get; } = new(
        Key: "h100", Name: "H100 SXM (model)", Sm: Sm90, SmCount: HopperSms, ClockHz: HopperClockHz,
        DramBytesPerSecond: 3.35e12, L2BytesPerClock: HopperL2BytesPerClock, SharedBytesPerClockPerSm: SharedBytesPerClock,
        Fp32FlopsPerSecond: HopperFp32, Tf32FlopsPerSecond: HopperTf32Dense, LaunchSeconds: LaunchSeconds, FfmaLatencyCycles: FfmaLatency);

    /// <summary>H200 SXM 141 GB: HBM3e at 4.8 TB/s [H200-DS]; the same SMs, clock and peaks as H100 SXM.</summary>
    public static GpuModel H200 { get; } = H100Sxm with { Key = "h200", Name = "H200 SXM (model)", DramBytesPerSecond = 4.8e12 };

    /// <summary>
    /// A100 SXM4 80 GB: 108 SMs at 1410 MHz [A100-WP], 2,039 GB/s, 19.5 TFLOP/s fp32, 156 TFLOP/s tf32 [A100-DS],
    /// L2 5120 B/clk [A100-WP]. The sm_80 build's occupancy is reported for it.
    /// </summary>
    public static GpuModel A100Sxm { get; } = new(
        Key: "a100", Name: "A100 SXM4 80GB (model)", Sm: Sm80, SmCount: 108, ClockHz: 1.41e9,
        DramBytesPerSecond: 2.039e12, L2BytesPerClock: 5120, SharedBytesPerClockPerSm: SharedBytesPerClock,
        Fp32FlopsPerSecond: 19.5e12, Tf32FlopsPerSecond: 156e12, LaunchSeconds: LaunchSeconds, FfmaLatencyCycles: FfmaLatency);

    /// <summary>Every model, by <see cref="GpuModel.Key"/>.</summary>
    public static IReadOnlyList<GpuModel> All { get; } = [H100Sxm, H200, A100Sxm];

    /// <summary>The model named <paramref name="key"/> ("h100", "h200", "a100"); null if there is none.</summary>
    public static GpuModel? Find(string key) => All.FirstOrDefault(m => string.Equals(m.Key, key, StringComparison.OrdinalIgnoreCase));

    /// <summary>The GPU whose SM limits give the occupancy of code built for <paramref name="arch"/>: sm_90 → H100/H200, sm_80 → A100.</summary>
    public static GpuModel ForArch(string arch) => arch switch
    {
        "sm_90" => H100Sxm,
        "sm_80" => A100Sxm,
        _ => throw new ArgumentException($"no GPU model for {arch}; the report covers sm_80 and sm_90", nameof(arch)),
    };
}
