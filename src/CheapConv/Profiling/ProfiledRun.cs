using CheapConv.Backends;
using CheapConv.Devices;

namespace CheapConv.Profiling;

/// <summary>What a profile is modelled with: the GPU, each kernel's occupancy inputs, the kernels on tensor cores.</summary>
/// <param name="SampleBlocks">Blocks recorded per launch (0: all of them).</param>
internal sealed record ProfileSettings(GpuModel Gpu, KernelOccupancies Occupancies, IReadOnlySet<string> TensorCoreKernels, long SampleBlocks)
{
    /// <summary>
    /// The settings for <paramref name="gpu"/>: registers and shared memory from ptxas/cuobjdump where the CUDA toolkit is
    /// installed (only the resources, not the SASS: seconds), else occupancy by warp slots alone (said in
    /// <see cref="KernelOccupancies.Source"/>). Tensor-core kernels: those whose PTX holds an <c>mma</c> instruction.
    /// </summary>
    public static ProfileSettings For(GpuModel gpu, long sampleBlocks)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentOutOfRangeException.ThrowIfNegative(sampleBlocks);
        var images = KernelImages.Embedded();
        var occupancies = CudaToolkit.IsAvailable()
            ? KernelOccupancies.FromReport(StaticReport.Build(CudaToolkit.Find(), images, [gpu.Sm.Arch], sass: false), gpu.Sm)
            : KernelOccupancies.WarpLimited(gpu.Sm);
        return new ProfileSettings(gpu, occupancies, FindTensorCoreKernels(images), sampleBlocks);
    }

    /// <summary>The kernels whose PTX body holds an <c>mma</c> (tensor-core) instruction.</summary>
    public static IReadOnlySet<string> FindTensorCoreKernels(KernelImages images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var kernels = new HashSet<string>(StringComparer.Ordinal);
        foreach (var ptx in images.Ptx.Values)
        {
            // Each entry's text runs from its ".entry NAME(" to the next entry.
            var parts = ptx.Split(".entry ");
            foreach (var part in parts.Skip(1))
            {
                var name = part[..part.IndexOf('(', StringComparison.Ordinal)].Trim();
                if (part.Contains("mma.sync", StringComparison.Ordinal) || part.Contains("wgmma", StringComparison.Ordinal))
                {
                    kernels.Add(name);
                }
            }
        }

        return kernels;
    }
}

/// <summary>
/// A backend on the profiling emulator whose ops and launches are recorded: the <see cref="GpuBackend"/> over the
/// profiling library's emulator, seen through a <see cref="RecordingBackend"/> (ops and host waits), which attributes
/// launches to ops by the profile's own launch count (every launch of the profiling library is recorded, in order). <see cref="Profile"/> runs work in a profile session and models
/// every launch it made.
/// </summary>
internal sealed class ProfiledRun : IDisposable
{
    private readonly EmulatorProfile _profile;
    private readonly GpuBackend _gpu;

    public ProfiledRun(EmulatorProfile profile, ProfileSettings settings)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(settings);
        _profile = profile;
        Settings = settings;
        _gpu = new GpuBackend(profile.Device);
        Backend = new RecordingBackend(_gpu, () => profile.LaunchCount);
    }

    public ProfileSettings Settings { get; }

    /// <summary>The backend to run the profiled work on.</summary>
    public RecordingBackend Backend { get; }

    /// <summary>
    /// Runs <paramref name="work"/> in a profile session (sampled per <see cref="ProfileSettings.SampleBlocks"/>, or
    /// <paramref name="sampleBlocks"/> when given: blocks outside the sample are skipped, so outputs are partial) and
    /// returns every launch it made, modelled, with the host waits it made.
    /// </summary>
    public (IReadOnlyList<ModelledLaunch> Launches, IReadOnlyList<string> HostWaits) Profile(Action work, long? sampleBlocks = null)
    {
        ArgumentNullException.ThrowIfNull(work);
        Backend.Clear();
        // The session starts its launch count at 0, so the ops' first launches index the recorded launches directly.
        var recorded = _profile.Profile(work, sampleBlocks ?? Settings.SampleBlocks);
        var ops = Backend.Ops;
        var launches = ProfileModel.Model(Settings.Gpu, Settings.Occupancies, [.. recorded.Select(MeasuredLaunch.From)], ops, Settings.TensorCoreKernels);
        return (launches, [.. Backend.HostWaits]);
    }

    /// <summary>Frees the backend's scratch buffers; the profiling library stays open (its owner closes it).</summary>
    public void Dispose() => _gpu.Dispose();
}
