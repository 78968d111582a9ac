using CheapConv.Devices;
using CheapConv.Reporting;
using CheapConv.Tests.Cuda;
using Xunit;

namespace CheapConv.Tests.Reporting;

/// <summary>Where the report times a run: the GPU where there is one, the CPU instead where not, and the slow-pass rule.</summary>
public sealed class LatencyDeviceTests : IDisposable
{
    private static readonly Lazy<CudaProbe> Probe = new(CudaDevice.Probe);

    private static readonly ReportOptions Quick = new() { LargeBatch = 4, WarmupRuns = 1, MinTimedRuns = 2, MaxTimedRuns = 2, TimeBudget = TimeSpan.FromSeconds(30) };

    private readonly FakeRuns _runs = new();

    public void Dispose() => _runs.Dispose();

    [SkippableFact]
    public void Build_OnCuda_MeasuresPositiveLatenciesOnTheGpu()
    {
        CudaRequirement.SkipOrFailWithoutGpu();
        var report = RunReport.Build([_runs.Write("gpu-run", FakeRuns.Summary(device: "cuda NVIDIA"))], Quick);

        var latency = report.Rows[0].Latency;
        Assert.Equal(Probe.Value.Devices[0].Name, latency.Device);
        Assert.True(latency.SmallBatchMilliseconds > 0);
        Assert.True(latency.LargeBatchMilliseconds > 0);
        Assert.Null(latency.Note);
    }

    [SkippableFact]
    public void Build_CudaRunWithoutGpu_IsTimedOnTheCpuWithTheReason()
    {
        Skip.If(Probe.Value.IsAvailable, "a GPU is here: the run is timed on it");
        var report = RunReport.Build([_runs.Write("gpu-run", FakeRuns.Summary(device: "cuda NVIDIA H100"))], Quick);

        var latency = report.Rows[0].Latency;
        Assert.Equal(InferenceLatency.CpuLabel, latency.Device);
        Assert.True(latency.SmallBatchMilliseconds > 0);
        Assert.Contains("trained on cuda NVIDIA H100, but no GPU here", latency.Note);
    }

    [SkippableFact]
    public void Build_CudaAskedForWithoutGpu_ThrowsDeviceUnavailable()
    {
        Skip.If(Probe.Value.IsAvailable, "a GPU is here");
        var directory = _runs.Write("run", FakeRuns.Summary());
        Assert.Throws<DeviceUnavailableException>(() => RunReport.Build([directory], Quick with { Device = DeviceRequest.Cuda() }));
    }

    [Fact]
    public void Build_PassSlowerThanThreeBudgets_IsTimedOnceAsItsOwnWarmup()
    {
        // A budget of 100 ns: every forward pass is over three of them.
        var options = Quick with { Device = DeviceRequest.Cpu, TimeBudget = TimeSpan.FromTicks(1) };
        var latency = RunReport.Build([_runs.Write("run", FakeRuns.Summary())], options).Rows[0].Latency;

        Assert.Equal((1, 1), (latency.SmallBatchRuns, latency.LargeBatchRuns));
        Assert.True(latency.SmallBatchMilliseconds > 0);
        Assert.Contains("is timed once, as its own warm-up", RunReport.Build([_runs.Write("run2", FakeRuns.Summary())], options).ToMarkdown());
    }

    [Theory]
    [InlineData("cuda NVIDIA H100 80GB HBM3", DeviceKind.Cuda)]
    [InlineData("cuda", DeviceKind.Cuda)]
    [InlineData("emu", DeviceKind.Emulated)]
    [InlineData("emulator", DeviceKind.Emulated)]
    [InlineData("cpu (2 cores)", null)]
    [InlineData("cpu", null)]
    public void TrainingDeviceKind_ReadsTheFirstWord(string device, DeviceKind? expected) =>
        Assert.Equal(expected, InferenceLatency.TrainingDeviceKind(device));
}
