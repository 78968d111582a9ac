using System.Globalization;
using CheapConv.Devices;

namespace CheapConv.Profiling;

/// <summary>The global load instruction of a launch that moves the most sectors: where a kernel's traffic comes from.</summary>
/// <param name="Where">"file:line" of the access in native/, or the instruction's function where the line is unknown.</param>
/// <param name="Requests">Warp-level requests, scaled to the whole grid.</param>
/// <param name="Sectors">32-byte sectors, scaled to the whole grid.</param>
internal sealed record MainLoad(string Where, double Requests, double Sectors)
{
    /// <summary>Sectors per request: 4 for a coalesced fp32 warp load, 32 for one at a stride of 32 elements, 1 for a broadcast.</summary>
    public double SectorsPerRequest => Requests == 0 ? 0 : Sectors / Requests;
}

/// <summary>
/// What the profiling emulator measured for one launch, with counts scaled from the sampled blocks to the whole grid
/// (Nsight Compute's definitions: see native/include/cheapconv/profile.h).
/// </summary>
/// <param name="DramReadBytes">Distinct 32-byte sectors loaded × 32: what DRAM must deliver with L2 flushed (scaled: too high
/// where blocks share inputs; the model caps it).</param>
/// <param name="DramWriteBytes">Distinct 32-byte sectors stored × 32.</param>
/// <param name="SharedRequests">Shared-memory load and store requests.</param>
/// <param name="SharedWavefronts">Their wavefronts.</param>
/// <param name="SharedIdealWavefronts">The wavefronts they would take without bank conflicts.</param>
/// <param name="MainLoad">The global load instruction with the most sectors; null without global loads.</param>
/// <param name="TensorMmaRequests">Warp-level tensor-core mma.sync executions, scaled to the grid: nonzero for a kernel that
/// computes on tensor cores.</param>
internal sealed record MeasuredLaunch(
    string Kernel, long GridBlocks, int ThreadsPerBlock, int DynamicSharedBytes, long BlocksSampled,
    double LoadRequests, double LoadSectors, double StoreRequests, double StoreSectors, double AtomicRequests, double AtomicSectors,
    double DramReadBytes, double DramWriteBytes, double SharedRequests, double SharedWavefronts, double SharedIdealWavefronts,
    MainLoad? MainLoad, double TensorMmaRequests = 0)
{
    /// <summary>Every 32-byte sector between the SMs and L2: loads, stores and atomics.</summary>
    public double L2Sectors => LoadSectors + StoreSectors + AtomicSectors;

    /// <summary>Sectors per global load request over all of the launch's loads; 0 without loads.</summary>
    public double SectorsPerLoadRequest => LoadRequests == 0 ? 0 : LoadSectors / LoadRequests;

    /// <summary>Shared-memory wavefronts beyond the ideal (Nsight's bank conflicts).</summary>
    public double BankConflicts => SharedWavefronts - SharedIdealWavefronts;

    /// <summary>The launch as the profiling emulator recorded it (<see cref="EmulatorProfile"/>), counts scaled to the grid.</summary>
    public static MeasuredLaunch From(LaunchProfile launch)
    {
        ArgumentNullException.ThrowIfNull(launch);
        if (launch.Status != 0)
        {
            throw new InvalidOperationException($"{launch.Kernel} failed on the profiling emulator (status {launch.Status}): its counts are incomplete");
        }

        var c = launch.Scaled;
        var main = launch.Instructions.Where(i => i.Kind == MemoryAccessKind.GlobalLoad).MaxBy(i => i.Sectors);
        return new MeasuredLaunch(launch.Kernel, launch.BlocksTotal, checked((int)launch.Block.Volume), checked((int)launch.DynamicSharedBytes),
            launch.BlocksSampled, c.GlobalLoadRequests, c.GlobalLoadSectors, c.GlobalStoreRequests, c.GlobalStoreSectors,
            c.GlobalAtomicRequests, c.GlobalAtomicSectors, 32.0 * c.UniqueReadSectors, 32.0 * c.UniqueWriteSectors,
            c.SharedLoadRequests + c.SharedStoreRequests, c.SharedLoadWavefronts + c.SharedStoreWavefronts,
            c.SharedLoadIdealWavefronts + c.SharedStoreIdealWavefronts,
            main is null ? null : new MainLoad(Where(main), main.Requests * launch.Scale, main.Sectors * launch.Scale),
            c.TensorMmaRequests);
    }

    // "kernels/conv2d.cu:57", or the function where addr2line found no line.
    private static string Where(InstructionProfile instruction) =>
        instruction.File.Length > 0 ? string.Create(CultureInfo.InvariantCulture, $"{instruction.File}:{instruction.Line}")
        : instruction.Function.Length > 0 ? instruction.Function : $"instruction {instruction.Id}";
}
