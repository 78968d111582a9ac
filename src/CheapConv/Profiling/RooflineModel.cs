namespace CheapConv.Profiling;

/// <summary>What one kernel launch does, as the model needs it: counts from the emulator's profile, the launch
/// configuration's occupancy from the static report, and the floor of the work from the problem.</summary>
/// <param name="Kernel">The kernel's name.</param>
/// <param name="GridBlocks">Blocks in the grid.</param>
/// <param name="ThreadsPerBlock">Threads per block.</param>
/// <param name="BlocksPerSm">Resident blocks per SM the kernel's resources allow (theoretical occupancy).</param>
/// <param name="Flops">Useful floating-point work, 2 × MACs for a convolution or GEMM; 0 where it is negligible.</param>
/// <param name="TensorCores">Whether the kernel computes on tensor cores (tf32 peak) rather than CUDA cores (fp32 peak).</param>
/// <param name="CompulsoryBytes">The floor of memory traffic: each input tensor read once, each output written once (fp32).</param>
/// <param name="DramBytes">Unique bytes read + unique bytes written (the profile): the DRAM traffic with L2 flushed before the launch.</param>
/// <param name="L2Sectors">32-byte sectors of every global load and store (the profile): the L1 ↔ L2 traffic.</param>
/// <param name="SharedWavefronts">Shared-memory wavefronts (the profile): one per bank-conflict-free 128-byte access.</param>
internal sealed record LaunchWork(
    string Kernel, long GridBlocks, int ThreadsPerBlock, int BlocksPerSm, double Flops, bool TensorCores, double CompulsoryBytes,
    double DramBytes, double L2Sectors, double SharedWavefronts);

/// <summary>The model's verdict on one launch, times in microseconds.</summary>
/// <param name="RooflineUs">max(compulsory bytes / DRAM bandwidth, FLOPs / peak): no kernel can be faster.</param>
/// <param name="ModelledUs">The slowest of <paramref name="DramUs"/>, <paramref name="L2Us"/>, <paramref name="SharedUs"/> and
/// <paramref name="ArithmeticUs"/>, plus <paramref name="LaunchUs"/>.</param>
/// <param name="RooflineFraction"><paramref name="RooflineUs"/> / <paramref name="ModelledUs"/> (1 = at the roofline).</param>
/// <param name="Bound">What limits the launch: "dram", "l2", "shared", "fp32" (or "tf32"), or "launch" when the launch cost
/// exceeds all of them.</param>
/// <param name="IssueEfficiency">The fraction of the arithmetic peak the launch's grid and occupancy can issue at (0–1).</param>
/// <param name="ActiveSms">SMs the grid occupies: min(SMs, blocks).</param>
internal sealed record LaunchEstimate(
    double RooflineUs, double ModelledUs, double RooflineFraction, string Bound, double DramUs, double L2Us, double SharedUs,
    double ArithmeticUs, double LaunchUs, double IssueEfficiency, int ActiveSms);

/// <summary>
/// The roofline model of DESIGN.md ("Seeing performance without a GPU"), a pure function of a launch's counts and a
/// <see cref="GpuModel"/>:
/// <code>
/// roofline   = max(compulsory bytes / DRAM bw, FLOPs / peak)                       peak = fp32, or tf32 on tensor cores
/// dram       = (unique bytes read + written) / DRAM bw                             L2 flushed before the launch
/// l2         = sectors × 32 B / (L2 bw × active SMs / SMs)                         L2 bandwidth reaches the SMs the grid uses
/// shared     = wavefronts / (active SMs × 1 wavefront per clock × clock)
/// arithmetic = Σ over waves of FLOPs in the wave / (peak × e_wave)
///              e_wave = active SMs / SMs × min(1, warps per scheduler / FFMA latency)
/// modelled   = max(dram, l2, shared, arithmetic) + launch cost;  fraction = roofline / modelled
/// </code>
/// Active SMs = min(SMs, blocks). Waves: the grid runs in waves of SMs × resident blocks per SM; in each wave the blocks
/// spread evenly over min(SMs, blocks in the wave) SMs, and each SM's 4 schedulers share their warps. The issue
/// efficiency: a scheduler issues one FFMA per clock only if it holds as many ready warps as the FFMA latency (4 clocks);
/// fewer warps leave its pipe idle in proportion. This assumes no instruction-level parallelism within a warp and no
/// other instructions competing for issue, which overstates the loss for unrolled code and understates it for code that
/// is mostly address arithmetic; the DRAM term assumes enough loads in flight to reach the bandwidth. The sectors are
/// Nsight's L1-level sectors (what the warps request); no L1 hit rate is modelled, so every one is charged to L2 — an
/// upper bound for kernels whose threads re-read their neighbours' data through L1 (the direct convolutions), exact for
/// kernels that stage reuse in shared memory (counted as wavefronts instead). A GPU run calibrates all three.
/// </summary>
internal static class RooflineModel
{
    private const double SectorBytes = 32;

    /// <summary>The estimate for one launch on <paramref name="gpu"/>.</summary>
    public static LaunchEstimate Estimate(GpuModel gpu, LaunchWork work)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentNullException.ThrowIfNull(work);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(work.GridBlocks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(work.ThreadsPerBlock);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(work.BlocksPerSm);

        var peak = work.TensorCores ? gpu.Tf32FlopsPerSecond : gpu.Fp32FlopsPerSecond;
        var roofline = Math.Max(work.CompulsoryBytes / gpu.DramBytesPerSecond, work.Flops / peak);

        var activeSms = (int)Math.Min(gpu.SmCount, work.GridBlocks);
        var smShare = (double)activeSms / gpu.SmCount;
        var dram = work.DramBytes / gpu.DramBytesPerSecond;
        var l2 = work.L2Sectors * SectorBytes / (gpu.L2BytesPerSecond * smShare);
        var shared = work.SharedWavefronts / (activeSms * (gpu.SharedBytesPerClockPerSm / 128.0) * gpu.ClockHz);
        var (arithmetic, efficiency) = Arithmetic(gpu, work, peak);

        (double Seconds, string Name)[] limits = [(dram, "dram"), (l2, "l2"), (shared, "shared"), (arithmetic, work.TensorCores ? "tf32" : "fp32")];
        var slowest = limits.MaxBy(l => l.Seconds);
        var modelled = slowest.Seconds + gpu.LaunchSeconds;
        var bound = gpu.LaunchSeconds > slowest.Seconds ? "launch" : slowest.Name;
        return new LaunchEstimate(roofline * 1e6, modelled * 1e6, roofline / modelled, bound, dram * 1e6, l2 * 1e6, shared * 1e6,
            arithmetic * 1e6, gpu.LaunchSeconds * 1e6, efficiency, activeSms);
    }

    /// <summary>The issue efficiency of <paramref name="blocks"/> blocks that hold <paramref name="warpsPerBlock"/> warps
    /// each, all resident at once: the fraction of the chip's arithmetic peak they can issue at.</summary>
    public static double WaveEfficiency(GpuModel gpu, long blocks, int warpsPerBlock)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        var activeSms = Math.Min(gpu.SmCount, blocks);
        var warpsPerScheduler = (double)blocks / activeSms * warpsPerBlock / gpu.Sm.SubPartitions;
        return (double)activeSms / gpu.SmCount * Math.Min(1.0, warpsPerScheduler / gpu.FfmaLatencyCycles);
    }

    // Seconds of arithmetic over the grid's waves, and the resulting efficiency (FLOPs / (peak × seconds)).
    private static (double Seconds, double Efficiency) Arithmetic(GpuModel gpu, LaunchWork work, double peak)
    {
        var warpsPerBlock = (work.ThreadsPerBlock + gpu.Sm.WarpSize - 1) / gpu.Sm.WarpSize;
        var slots = (long)gpu.SmCount * work.BlocksPerSm;
        var fullWaves = work.GridBlocks / slots;
        var lastWave = work.GridBlocks % slots;
        // Time in units of "the grid's FLOPs at peak": each wave's share of the blocks over its efficiency.
        var relative = 0.0;
        if (fullWaves > 0)
        {
            relative += (double)(fullWaves * slots) / work.GridBlocks / WaveEfficiency(gpu, slots, warpsPerBlock);
        }

        if (lastWave > 0)
        {
            relative += (double)lastWave / work.GridBlocks / WaveEfficiency(gpu, lastWave, warpsPerBlock);
        }

        var seconds = work.Flops / peak * relative;
        return (seconds, 1 / relative);
    }
}
