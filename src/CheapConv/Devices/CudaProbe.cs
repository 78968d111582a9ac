using System.Globalization;
using System.Text;

namespace CheapConv.Devices;

/// <summary>What <see cref="CudaDevice.Probe"/> learned about one GPU.</summary>
/// <param name="Ordinal">The CUDA device ordinal (cuda:N).</param>
/// <param name="Name">The driver's device name, e.g. "NVIDIA H100 80GB HBM3".</param>
/// <param name="ComputeCapabilityMajor">e.g. 9 for an H100.</param>
/// <param name="ComputeCapabilityMinor">e.g. 0 for an H100.</param>
/// <param name="TotalMemoryBytes">Global memory.</param>
/// <param name="MultiprocessorCount">Number of SMs.</param>
/// <param name="MaxSharedMemoryPerBlockOptIn">Largest shared memory a block may use after opting in
/// (cuFuncSetAttribute MAX_DYNAMIC_SHARED_SIZE_BYTES, which the native launcher sets), e.g. 232448 on an H100.</param>
/// <param name="L2CacheBytes">L2 cache size.</param>
/// <param name="PciBusId">PCI bus number, to match the device with nvidia-smi's list.</param>
/// <param name="ClockRateKHz">Peak SM clock (0 where the driver no longer reports it).</param>
/// <param name="MemoryClockRateKHz">Peak memory clock (0 where the driver no longer reports it).</param>
/// <param name="MemoryBusWidthBits">Global memory bus width.</param>
public sealed record CudaDeviceInfo(
    int Ordinal,
    string Name,
    int ComputeCapabilityMajor,
    int ComputeCapabilityMinor,
    long TotalMemoryBytes,
    int MultiprocessorCount,
    int MaxSharedMemoryPerBlockOptIn,
    int L2CacheBytes,
    int PciBusId,
    int ClockRateKHz,
    int MemoryClockRateKHz,
    int MemoryBusWidthBits)
{
    /// <summary>
    /// Peak fp32 rate in FLOP/s (an FMA counts 2): SMs × fp32 lanes per SM × 2 × clock. Lanes per SM by
    /// architecture: 64 on sm_60/sm_70/sm_80 (A100), 128 on sm_61, sm_86, sm_89 and sm_90 (H100).
    /// Null when the clock is unknown. The roofline of the benchmarks.
    /// </summary>
    public double? PeakFp32Flops => ClockRateKHz <= 0 ? null
        : MultiprocessorCount * (double)Fp32LanesPerSm * 2 * ClockRateKHz * 1e3;

    /// <summary>Peak DRAM bandwidth in bytes/s: 2 transfers per memory clock × bus width. Null when unknown.</summary>
    public double? PeakMemoryBytesPerSecond => MemoryClockRateKHz <= 0 || MemoryBusWidthBits <= 0 ? null
        : 2.0 * MemoryClockRateKHz * 1e3 * MemoryBusWidthBits / 8;

    private int Fp32LanesPerSm => (ComputeCapabilityMajor, ComputeCapabilityMinor) switch
    {
        (6, 0) or (7, _) or (8, 0) => 64,
        _ => 128,
    };

    /// <summary>"9.0".</summary>
    public string ComputeCapability => $"{ComputeCapabilityMajor}.{ComputeCapabilityMinor}";

    /// <summary>"sm_90": the architecture the driver JIT-compiles our PTX for.</summary>
    public string Architecture => $"sm_{ComputeCapabilityMajor}{ComputeCapabilityMinor}";

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"cuda:{Ordinal} {Name}: compute capability {ComputeCapability} ({Architecture}), " +
        $"{TotalMemoryBytes / (1024.0 * 1024 * 1024):F1} GiB, {MultiprocessorCount} SMs, " +
        $"{L2CacheBytes / (1024 * 1024)} MiB L2, {MaxSharedMemoryPerBlockOptIn / 1024} KiB shared memory per block (opt-in), " +
        $"PCI bus {PciBusId:x2}");
}

/// <summary>
/// Whether CUDA can be used on this machine, and what it has. <see cref="CudaDevice.Probe"/> never throws:
/// everything it could not do ends up in <see cref="Reason"/>.
/// </summary>
/// <param name="IsAvailable">True when the driver loaded, initialised and reports at least one device.</param>
/// <param name="Reason">One line saying why CUDA cannot be used; null when <paramref name="IsAvailable"/>.</param>
/// <param name="Library">The driver library that was loaded ("libcuda.so.1"), or null.</param>
/// <param name="DriverVersion">The CUDA version the driver supports (cuDriverGetVersion), e.g. "12.4"; null
/// when the driver could not be loaded. This is not the display-driver version nvidia-smi prints
/// (e.g. 550.54.15), which the driver API does not expose.</param>
/// <param name="Devices">One entry per device, in ordinal order.</param>
public sealed record CudaProbe(
    bool IsAvailable,
    string? Reason,
    string? Library,
    string? DriverVersion,
    IReadOnlyList<CudaDeviceInfo> Devices)
{
    /// <summary>The first line of <see cref="ToString"/>: the driver and the device count, or why CUDA is unavailable.</summary>
    public string Summary => IsAvailable
        ? string.Create(CultureInfo.InvariantCulture, $"CUDA: driver {Library}, CUDA {DriverVersion}, {Devices.Count} device(s)")
        : $"CUDA: unavailable: {Reason}";

    /// <summary>Lines for <c>cheapconv info</c>: <see cref="Summary"/>, then one line per device.</summary>
    public override string ToString()
    {
        var text = new StringBuilder(Summary);
        foreach (var device in Devices)
        {
            text.Append('\n').Append("  ").Append(device);
        }

        return text.ToString();
    }
}
