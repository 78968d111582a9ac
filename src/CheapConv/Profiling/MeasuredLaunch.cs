namespace CheapConv.Profiling;

/// <summary>The global load instruction of a launch that moves the most sectors: where a kernel's traffic comes from.</summary>
/// <param name="Where">"file:line" of the access in native/, or the instruction's function where the line is unknown.</param>
/// <param name="Requests">Warp-level requests, scaled to the whole grid.</param>
/// <param name="Sectors">32-byte sectors, scaled to the whole grid.</param>
public sealed record MainLoad(string Where, double Requests, double Sectors)
{
    /// <summary>Sectors per request: 4 for a coalesced fp32 warp load, 32 for one at a stride of 32 elements, 1 for a broadcast.</summary>
    public double SectorsPerRequest => Requests == 0 ? 0 : Sectors / Requests;
}

/// <summary>
/// What the profiling emulator measured for one launch, with counts scaled from the sampled blocks to the whole grid
/// (Nsight Compute's definitions: see native/include/cheapconv/profile.h).
/// </summary>
/// <param name="UniqueReadBytes">Distinct global bytes loaded (scaled: too high where blocks share inputs; the model caps it).</param>
/// <param name="UniqueWriteBytes">Distinct global bytes stored.</param>
/// <param name="SharedRequests">Shared-memory load and store requests.</param>
/// <param name="SharedWavefronts">Their wavefronts.</param>
/// <param name="SharedIdealWavefronts">The wavefronts they would take without bank conflicts.</param>
/// <param name="MainLoad">The global load instruction with the most sectors; null without global loads.</param>
public sealed record MeasuredLaunch(
    string Kernel, long GridBlocks, int ThreadsPerBlock, int DynamicSharedBytes, long BlocksSampled,
    double LoadRequests, double LoadSectors, double StoreRequests, double StoreSectors, double AtomicRequests, double AtomicSectors,
    double UniqueReadBytes, double UniqueWriteBytes, double SharedRequests, double SharedWavefronts, double SharedIdealWavefronts,
    MainLoad? MainLoad)
{
    /// <summary>Every 32-byte sector between the SMs and L2: loads, stores and atomics.</summary>
    public double L2Sectors => LoadSectors + StoreSectors + AtomicSectors;

    /// <summary>Sectors per global load request over all of the launch's loads; 0 without loads.</summary>
    public double SectorsPerLoadRequest => LoadRequests == 0 ? 0 : LoadSectors / LoadRequests;

    /// <summary>Shared-memory wavefronts beyond the ideal (Nsight's bank conflicts).</summary>
    public double BankConflicts => SharedWavefronts - SharedIdealWavefronts;
}
