using CheapConv.Devices;
using Xunit;

namespace CheapConv.Tests.Cuda;

/// <summary>
/// The one place a test that needs a GPU decides to run, skip or fail, so that a GPU machine cannot pass by skipping:
/// <list type="bullet">
/// <item>a usable GPU: run;</item>
/// <item>a CUDA driver that is present but unusable for another reason than having no device (cuInit fails with a
/// driver mismatch, an entry point is missing: a broken driver on a GPU machine): fail, with the probe's reason;</item>
/// <item>no driver, or a driver that finds no device: skip with the probe's reason — or fail when
/// <c>CHEAPCONV_REQUIRE_CUDA=1</c> (set by the GPU machines' scripts), where a skip would hide that nothing ran.</item>
/// </list>
/// Tests of behaviour without a GPU ("Open on cuda says why") skip where a GPU is present; those are not CUDA skips.
/// </summary>
public static class CudaRequirement
{
    /// <summary>Set to 1 to make every CUDA skip a failure.</summary>
    public const string Variable = "CHEAPCONV_REQUIRE_CUDA";

    private static readonly Lazy<CudaProbe> CachedProbe = new(CudaDevice.Probe);

    public enum Verdict
    {
        Run,
        Skip,
        Fail,
    }

    /// <summary>Whether <see cref="Variable"/> is 1 in this process.</summary>
    public static bool Required => Environment.GetEnvironmentVariable(Variable) == "1";

    /// <summary>This machine's probe (once per process, as the driver is loaded once).</summary>
    public static CudaProbe Probe => CachedProbe.Value;

    /// <summary>What a GPU test does given <paramref name="probe"/>; the message says why when it does not run.</summary>
    public static (Verdict Verdict, string? Message) Decide(CudaProbe probe, bool required)
    {
        ArgumentNullException.ThrowIfNull(probe);
        if (probe.IsAvailable)
        {
            return (Verdict.Run, null);
        }

        var reason = probe.Reason ?? "the probe gave no reason";
        // The driver loaded (Library is set) and the trouble is not that there is no device: a broken driver.
        var noDevice = reason.Contains("CUDA_ERROR_NO_DEVICE", StringComparison.Ordinal) || probe.Devices.Count == 0 && reason.Contains("reports no CUDA device", StringComparison.Ordinal);
        if (probe.Library is not null && !noDevice)
        {
            return (Verdict.Fail, $"the CUDA driver {probe.Library} is present but unusable: {reason}");
        }

        return required
            ? (Verdict.Fail, $"{Variable}=1 but CUDA cannot be used here: {reason}")
            : (Verdict.Skip, $"no CUDA device: {reason}");
    }

    /// <summary>Returns when the test can use a GPU; otherwise skips or fails it as <see cref="Decide"/> says.</summary>
    public static void SkipOrFailWithoutGpu()
    {
        var (verdict, message) = Decide(Probe, Required);
        if (verdict == Verdict.Fail)
        {
            Assert.Fail(message);
        }

        Skip.If(verdict == Verdict.Skip, message);
    }
}
