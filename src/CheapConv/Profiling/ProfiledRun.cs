using System.Runtime.InteropServices;
using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Interop;

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
        var images = KernelImages.Installed();
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
/// A backend on the profiling emulator whose ops are recorded: the <see cref="GpuBackend"/> over the profiling library's
/// emulator (every op one call of its C ABI), seen through a <see cref="RecordingBackend"/> (ops and host waits) whose
/// launch counter is the library's own count of the session's launches (<c>cc_prof_launch_count</c>). <see cref="Profile"/>
/// runs work in a profile session and models every launch it made.
/// </summary>
internal sealed unsafe class ProfiledRun : IDisposable
{
    private readonly EmulatorProfile _profile;
    private readonly GpuBackend _gpu;
    private readonly delegate* unmanaged<int> _launchCount;

    /// <param name="convPrecision">What the convolutions may use: by default tf32, the C library's default (the kernels a
    /// cc_conv_* caller gets, tensor cores where they apply).</param>
    /// <param name="convAlgorithm">The kernels the convolutions ask for: by default the launcher's choice; another value
    /// profiles that variant (a pass it does not implement throws <see cref="CheapConvException"/> with
    /// <see cref="CheapConvStatus.NotSupported"/>).</param>
    /// <param name="batchNormSumsInDataGradient">The backend's <see cref="GpuBackend.BatchNormSumsInDataGradient"/>.</param>
    public ProfiledRun(EmulatorProfile profile, ProfileSettings settings, KernelPrecision convPrecision = KernelPrecision.Tf32,
        KernelAlgorithm convAlgorithm = KernelAlgorithm.Auto, bool batchNormSumsInDataGradient = false)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(settings);
        _profile = profile;
        Settings = settings;
        // The same library the profile opened (the loader counts references; it is never unloaded).
        var library = NativeLibrary.Load(profile.Device.LibraryPath);
        _launchCount = (delegate* unmanaged<int>)NativeLibrary.GetExport(library, "cc_prof_launch_count");
        _gpu = new GpuBackend(profile.Device)
        {
            ConvPrecision = convPrecision, ConvAlgorithm = convAlgorithm, BatchNormSumsInDataGradient = batchNormSumsInDataGradient,
        };
        Backend = new RecordingBackend(_gpu, () => _launchCount());
    }

    public ProfileSettings Settings { get; }

    /// <summary>The backend to run the profiled work on.</summary>
    public RecordingBackend Backend { get; }

    /// <summary>
    /// Runs <paramref name="work"/> in a profile session (sampled per <see cref="ProfileSettings.SampleBlocks"/>, or
    /// <paramref name="sampleBlocks"/> when given: blocks outside the sample are skipped, so outputs are partial) and
    /// returns every launch it made, modelled, with the host waits it made (not the finalizer's frees: see
    /// <see cref="HostWaitReason.FreeByFinalizer"/>).
    /// </summary>
    public (IReadOnlyList<ModelledLaunch> Launches, IReadOnlyList<string> HostWaits) Profile(Action work, long? sampleBlocks = null)
    {
        ArgumentNullException.ThrowIfNull(work);
        Backend.Clear();
        using var waits = _profile.Device.HostWaits.Watch();
        // Begin resets the library's count: the ops' launch spans index the session's launches from 0.
        var recorded = _profile.Profile(work, sampleBlocks ?? Settings.SampleBlocks);
        var attributed = Backend.Ops.Sum(op => op.LaunchCount);
        if (attributed != recorded.Count)
        {
            throw new InvalidOperationException(
                $"the profile recorded {recorded.Count} launches but the backend's ops made {attributed}: launches outside the " +
                "backend (another thread on the profiling library?) cannot be attributed to ops");
        }

        var launches = ProfileModel.Model(Settings.Gpu, Settings.Occupancies, [.. recorded.Select(MeasuredLaunch.From)], Backend.Ops, Settings.TensorCoreKernels);
        // A free by the finalizer (of a buffer some earlier work dropped) waits on the finalizer thread, whenever the
        // collector runs: not a wait of the work profiled here.
        return (launches, [.. waits.Reasons.Where(reason => reason != HostWaitReason.FreeByFinalizer)]);
    }

    /// <summary>Frees the backend's scratch buffers; the profiling library stays open (its owner closes it).</summary>
    public void Dispose() => _gpu.Dispose();
}
