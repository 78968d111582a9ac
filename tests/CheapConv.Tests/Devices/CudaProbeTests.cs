using CheapConv.Devices;
using CheapConv.Kernels;
using Xunit;

namespace CheapConv.Tests.Devices;

/// <summary>
/// The CUDA device's contract without a GPU (the probe never throws and says why; Open fails with that
/// reason) and, where a GPU exists, its launch-level behaviour: memory round trips, validation, unknown
/// kernels, timers and disposal order. The GPU tests skip with the probe's reason elsewhere.
/// </summary>
public class CudaProbeTests
{
    private static readonly Lazy<CudaProbe> CachedProbe = new(CudaDevice.Probe);

    private static void SkipWithoutGpu() =>
        Skip.IfNot(CachedProbe.Value.IsAvailable, $"no CUDA device: {CachedProbe.Value.Reason}");

    [Fact]
    public void Probe_NeverThrows_AndExplainsUnavailability()
    {
        var probe = CudaDevice.Probe();

        if (probe.IsAvailable)
        {
            Assert.Null(probe.Reason);
            Assert.NotEmpty(probe.Devices);
            Assert.Matches(@"^\d+\.\d+$", probe.DriverVersion);
            Assert.All(probe.Devices, d => Assert.True(d.MultiprocessorCount > 0 && d.TotalMemoryBytes > 0));
        }
        else
        {
            Assert.False(string.IsNullOrWhiteSpace(probe.Reason));
            Assert.DoesNotContain('\n', probe.Reason);
            Assert.Empty(probe.Devices);
            Assert.StartsWith("CUDA: unavailable: ", probe.ToString());
        }
    }

    [Fact]
    public void Probe_IsRepeatable()
    {
        Assert.Equal(CudaDevice.Probe().Reason, CudaDevice.Probe().Reason);
    }

    [SkippableFact]
    public void Open_WithoutGpu_ThrowsUnavailableWithTheProbeReason()
    {
        var probe = CudaDevice.Probe();
        Skip.If(probe.IsAvailable, "this machine has a usable GPU");

        var e = Assert.Throws<DeviceUnavailableException>(() => CudaDevice.Open());
        Assert.Equal(probe.Reason, e.Message);
    }

    [Fact]
    public void Open_NegativeOrdinal_IsAnArgumentError()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => CudaDevice.Open(-1));
    }

    [SkippableFact]
    public void Open_LoadsEveryEmbeddedKernel()
    {
        SkipWithoutGpu();
        using var device = CudaDevice.Open();

        Assert.Equal(DeviceKind.Cuda, device.Kind);
        Assert.Equal(PtxModules.All.SelectMany(m => m.Entries).Order(StringComparer.Ordinal), device.KernelNames);
        Assert.Equal(PtxModules.All.Count, device.ModuleSources.Count);
        foreach (var kernel in device.KernelNames)
        {
            var attributes = device.GetKernelAttributes(kernel);
            Assert.InRange(attributes.MaxThreadsPerBlock, 1, 1024);
        }
    }

    [SkippableFact]
    public void Memory_RoundTripsAndFills()
    {
        SkipWithoutGpu();
        using var device = CudaDevice.Open();
        var data = Enumerable.Range(0, 100_003).Select(i => (float)i).ToArray();

        using var buffer = device.Upload<float>(data);
        Assert.Equal(data, buffer.ToArray());

        buffer.FillBytes(0xFF);
        Assert.All(buffer.ToArray(), v => Assert.True(float.IsNaN(v)));
        Assert.Equal(buffer.Bytes, device.AllocatedBytes);
    }

    [SkippableFact]
    public void Memory_WorksFromAnotherThread()
    {
        SkipWithoutGpu();
        using var device = CudaDevice.Open();
        using var buffer = device.Upload<int>([1, 2, 3]);

        // The context is current per OS thread: the device must bind it on every thread it is used from.
        var result = Task.Run(() => buffer.ToArray()).GetAwaiter().GetResult();

        Assert.Equal([1, 2, 3], result);
    }

    [SkippableFact]
    public unsafe void Launch_UnknownKernel_IsNotFound()
    {
        SkipWithoutGpu();
        using var device = CudaDevice.Open();

        var e = Assert.Throws<KernelLaunchException>(() =>
            device.Launch("no_such_kernel", new LaunchConfig(new Dim3(1), new Dim3(32)), null, "test"));

        Assert.Equal("CUDA_ERROR_NOT_FOUND", e.Status);
        Assert.Contains("known kernels", e.Detail);
    }

    [SkippableTheory]
    [InlineData(0u, 32u, 0u)]
    [InlineData(1u, 1025u, 0u)]
    [InlineData(1u, 32u, 49153u)]
    public unsafe void Launch_InvalidGeometry_IsInvalidValue(uint grid, uint block, uint shared)
    {
        SkipWithoutGpu();
        using var device = CudaDevice.Open();
        Skip.If(device.KernelNames.Count == 0, "no kernels embedded");

        var e = Assert.Throws<KernelLaunchException>(() =>
            device.Launch(device.KernelNames[0], new LaunchConfig(new Dim3(grid), new Dim3(block), shared), null, "test"));

        Assert.Equal("CUDA_ERROR_INVALID_VALUE", e.Status);
    }

    [SkippableFact]
    public void Timer_MeasuresNonNegativeTime()
    {
        SkipWithoutGpu();
        using var device = CudaDevice.Open();
        using var buffer = device.Allocate<byte>(64 << 20);
        using var timer = device.CreateTimer();

        timer.Start();
        buffer.FillBytes(1);
        timer.Stop();

        Assert.InRange(timer.ElapsedMilliseconds, 0f, 10_000f);
    }

    [SkippableFact]
    public void BuffersAndTimers_DisposedAfterTheirDevice_DoNotCrash()
    {
        SkipWithoutGpu();
        var device = CudaDevice.Open();
        var buffer = device.Allocate<float>(1024);
        var timer = device.CreateTimer();

        device.Dispose();
        device.Dispose();
        buffer.Dispose();
        timer.Dispose();

        Assert.Throws<ObjectDisposedException>(() => device.Synchronize());
    }
}
