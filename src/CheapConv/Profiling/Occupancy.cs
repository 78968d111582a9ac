namespace CheapConv.Profiling;

/// <summary>Theoretical occupancy of one kernel launch configuration on one SM.</summary>
/// <param name="BlocksPerSm">Resident blocks per SM (0: the block cannot run at all).</param>
/// <param name="WarpsPerSm">Resident warps per SM.</param>
/// <param name="Fraction">Resident warps over the SM's maximum (0–1): Nsight Compute's "Theoretical Occupancy".</param>
/// <param name="Limiter">What bounds <paramref name="BlocksPerSm"/>: "warps", "registers", "shared", "blocks".</param>
/// <param name="RegistersPerBlock">Registers allocated per block (per-warp allocation rounded up to the unit).</param>
/// <param name="SharedPerBlock">Shared memory allocated per block: static + dynamic + the driver's reserve, rounded up to the unit.</param>
internal sealed record OccupancyResult(int BlocksPerSm, int WarpsPerSm, double Fraction, string Limiter, int RegistersPerBlock, int SharedPerBlock);

/// <summary>
/// The CUDA occupancy calculator: the rules of <c>cudaOccMaxActiveBlocksPerMultiprocessor</c> in CUDA 11.8's
/// cuda_occupancy.h, for the default launch state (no partitioned global caching, the default shared-memory
/// carveout, no opt-in beyond what the block needs). A test compares it with that header on every kernel and
/// on a sweep of configurations.
/// </summary>
internal static class Occupancy
{
    /// <summary>Occupancy of blocks of <paramref name="threadsPerBlock"/> threads using <paramref name="registersPerThread"/>
    /// registers, <paramref name="staticSharedBytes"/> static and <paramref name="dynamicSharedBytes"/> dynamic shared memory.</summary>
    public static OccupancyResult Compute(SmLimits sm, int registersPerThread, int threadsPerBlock, int staticSharedBytes, int dynamicSharedBytes)
    {
        ArgumentNullException.ThrowIfNull(sm);
        ArgumentOutOfRangeException.ThrowIfNegative(registersPerThread);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threadsPerBlock);
        ArgumentOutOfRangeException.ThrowIfNegative(staticSharedBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(dynamicSharedBytes);

        var warpsPerBlock = DivideRoundUp(threadsPerBlock, sm.WarpSize);

        // Warp slots (cudaOccMaxBlocksPerSMWarpsLimit).
        var byWarps = threadsPerBlock > sm.MaxThreadsPerBlock ? 0 : sm.MaxWarpsPerSm / warpsPerBlock;

        // Registers (cudaOccMaxBlocksPerSMRegsLimit): allocated per warp in units, each sub-partition holds a quarter of
        // the register file and whole warps only.
        var registersPerWarp = RoundUp(registersPerThread * sm.WarpSize, sm.RegisterAllocationUnit);
        var registersPerBlock = registersPerWarp * warpsPerBlock;
        var registersAssumedPerBlock = registersPerWarp * RoundUp(warpsPerBlock, sm.SubPartitions);
        int byRegisters;
        if (sm.MaxRegistersPerBlock < registersAssumedPerBlock || sm.MaxRegistersPerBlock < registersPerBlock
            || registersPerThread > sm.MaxRegistersPerThread)
        {
            byRegisters = 0;
        }
        else if (registersPerWarp > 0)
        {
            var warpsPerSubPartition = sm.RegistersPerSm / sm.SubPartitions / registersPerWarp;
            byRegisters = warpsPerSubPartition * sm.SubPartitions / warpsPerBlock;
        }
        else
        {
            byRegisters = int.MaxValue;
        }

        // Shared memory (cudaOccMaxBlocksPerSMSmemLimit): static + reserve + dynamic, rounded up to the unit; the SM's
        // carveout is the default preference (the largest) unless a block needs more.
        var sharedPerBlock = RoundUp(staticSharedBytes + sm.ReservedSharedPerBlock + dynamicSharedBytes, sm.SharedAllocationUnit);
        // A block that needs more than the default opts in (cudaFuncAttributeMaxDynamicSharedMemorySize), as a launcher must.
        var needed = staticSharedBytes + sm.ReservedSharedPerBlock + dynamicSharedBytes;
        var blockLimit = (needed > sm.SharedPerBlockDefault ? sm.SharedPerBlockOptIn : sm.SharedPerBlockDefault) + sm.ReservedSharedPerBlock;
        int byShared;
        if (sharedPerBlock > blockLimit)
        {
            byShared = 0;
        }
        else
        {
            var perSm = sm.SharedPerSm >= sharedPerBlock ? sm.SharedPerSm : CarveoutFor(sm, sharedPerBlock);
            byShared = perSm / sharedPerBlock;
        }

        var limits = new (int Blocks, string Name)[] { (byWarps, "warps"), (byRegisters, "registers"), (byShared, "shared"), (sm.MaxBlocksPerSm, "blocks") };
        var (blocks, limiter) = limits.MinBy(l => l.Blocks);
        var warps = blocks * warpsPerBlock;
        return new OccupancyResult(blocks, warps, (double)warps / sm.MaxWarpsPerSm, limiter, registersPerBlock, sharedPerBlock);
    }

    // The smallest carveout that holds `bytes` (cudaOccAlignUpShmemSizeVoltaPlus); 0 when none does.
    private static int CarveoutFor(SmLimits sm, int bytes) =>
        sm.SharedCarveoutsKb.Select(kb => kb * 1024).Where(size => size >= bytes).DefaultIfEmpty(0).First();

    private static int DivideRoundUp(int x, int y) => (x + y - 1) / y;

    private static int RoundUp(int x, int y) => y * DivideRoundUp(x, y);
}
