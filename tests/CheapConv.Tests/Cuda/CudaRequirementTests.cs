using System.Diagnostics;
using System.Text.RegularExpressions;
using CheapConv.Devices;
using CheapConv.Tests.Emulator;
using Xunit;

namespace CheapConv.Tests.Cuda;

/// <summary>
/// A GPU machine cannot pass by skipping: <see cref="CudaRequirement"/> decides for every test that needs a GPU, a broken
/// driver fails with cuInit's reason, CHEAPCONV_REQUIRE_CUDA=1 turns the skips into failures, and no test skips for
/// want of a GPU on its own.
/// </summary>
public sealed partial class CudaRequirementTests
{
    private static CudaProbe Unavailable(string reason, string? library = "libcuda.so.1") => new(false, reason, library, library is null ? null : "12.4", []);

    [Fact]
    public void Decide_CoversEveryWayCudaCanBeMissing()
    {
        var available = new CudaProbe(true, null, "libcuda.so.1", "12.4", []);
        Assert.Equal(CudaRequirement.Verdict.Run, CudaRequirement.Decide(available, required: true).Verdict);

        // No driver at all, or a driver on a machine without a GPU: a skip that says why — a failure when required.
        foreach (var probe in new[] { Unavailable("libcuda.so.1 could not be loaded", library: null), Unavailable("cuInit failed: CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)") })
        {
            var (verdict, message) = CudaRequirement.Decide(probe, required: false);
            Assert.Equal(CudaRequirement.Verdict.Skip, verdict);
            Assert.Contains(probe.Reason!, message);
            (verdict, message) = CudaRequirement.Decide(probe, required: true);
            Assert.Equal(CudaRequirement.Verdict.Fail, verdict);
            Assert.Contains("CHEAPCONV_REQUIRE_CUDA=1", message);
            Assert.Contains(probe.Reason!, message);
        }

        // A driver that is there but fails to initialise otherwise: a broken GPU machine, a failure even when not required.
        var broken = Unavailable("cuInit failed: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (system has unsupported display driver / cuda driver combination)");
        var decision = CudaRequirement.Decide(broken, required: false);
        Assert.Equal(CudaRequirement.Verdict.Fail, decision.Verdict);
        Assert.Contains("present but unusable: cuInit failed: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", decision.Message);
    }

    [Fact]
    public void Probe_OfAPresentButBrokenDriver_FailsWithTheProbesReason()
    {
        // The fake driver of the native tests stands in for a broken one: it loads, and cuInit returns 999
        // (CUDA_ERROR_UNKNOWN) — or, lacking an entry point the probe needs, the probe fails on it. Either way the
        // driver is there and unusable. It is loaded once per process, so the probe runs in the CLI as a child.
        var driver = TestPaths.Native("build", "test", "libcheapconv_fake_cuda.so");
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } path ? path : "/usr/bin/dotnet";
        var start = new ProcessStartInfo(host)
        {
            ArgumentList = { Path.Combine(AppContext.BaseDirectory, "CheapConv.Cli.dll"), "info" },
            Environment = { [CudaDriver.DriverEnvironmentVariable] = driver, ["CHEAPCONV_FAKE_CUDA"] = "init=999" },
        };
        var (code, output) = NativeProcess.Run(start, TimeSpan.FromMinutes(1));
        Assert.True(code == 0, output);
        var reason = UnavailableReason().Match(output);
        Assert.True(reason.Success, output);
        Assert.DoesNotContain("could not be loaded", reason.Groups[1].Value);

        var (verdict, message) = CudaRequirement.Decide(Unavailable(reason.Groups[1].Value, driver), required: false);
        Assert.Equal(CudaRequirement.Verdict.Fail, verdict);
        Assert.Contains(reason.Groups[1].Value, message);
    }

    [Fact]
    public void NoTest_SkipsForWantOfAGpuOnItsOwn()
    {
        // Every "no CUDA device" skip goes through CudaRequirement, or CHEAPCONV_REQUIRE_CUDA could not reach it.
        var offenders = Directory.EnumerateFiles(Path.Combine(TestPaths.RepositoryRoot, "tests", "CheapConv.Tests"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal) && Path.GetFileName(f) != "CudaRequirement.cs" && Path.GetFileName(f) != "CudaRequirementTests.cs")
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (File: f, Line: i + 1, Text: line)))
            .Where(l => GpuSkip().IsMatch(l.Text))
            .Select(l => $"{Path.GetRelativePath(TestPaths.RepositoryRoot, l.File)}:{l.Line}: {l.Text.Trim()}")
            .ToList();
        Assert.True(offenders.Count == 0, "skips for want of a GPU outside CudaRequirement:\n" + string.Join("\n", offenders));
    }

    [GeneratedRegex(@"CUDA: unavailable: ([^\n]*)")]
    private static partial Regex UnavailableReason();

    // A skip whose condition or message is about a missing GPU (not the inverse "a GPU is present" skips).
    [GeneratedRegex(@"Skip\.IfNot\(.*IsAvailable|Skip\.If\(.*(no CUDA|GetCudaDevices\(\)\.Count == 0|Cuda\.Value is null|UnavailableReason)")]
    private static partial Regex GpuSkip();
}
