using System.Diagnostics;
using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Interop;
using CheapConv.Problems;
using CheapConv.Tests.Emulator;
using CheapConv.Tests.Cuda;
using Xunit;

namespace CheapConv.Tests.Devices;

/// <summary>
/// The CUDA device's contract without a GPU (the probe never throws and says why; Open fails with that
/// reason) and, where a GPU exists, its behaviour: the kernel library bound to the primary context, a caller's
/// context and memory shared and left alive, memory round trips, the library's errors, timers and disposal
/// order. The GPU tests skip with the probe's reason elsewhere.
/// </summary>
public class CudaProbeTests
{
    private static readonly Lazy<CudaProbe> CachedProbe = new(CudaDevice.Probe);

    private static void SkipWithoutGpu() => CudaRequirement.SkipOrFailWithoutGpu();

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
    public void Driver_NamedByTheEnvironment_IsTheOneTheDeviceLoads()
    {
        // The device's memory and libcheapconv.so's kernels must reach the same driver: both read
        // $CHEAPCONV_CUDA_DRIVER. The driver is loaded once per process, so the CLI runs in a child process.
        const string driver = "/nonexistent/libcuda-for-this-test.so.1";
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } path ? path : "/usr/bin/dotnet";
        var cli = Path.Combine(AppContext.BaseDirectory, "CheapConv.Cli.dll");
        var start = new ProcessStartInfo(host) { ArgumentList = { cli, "info" }, Environment = { [CudaDriver.DriverEnvironmentVariable] = driver } };

        var (code, output) = NativeProcess.Run(start, TimeSpan.FromMinutes(1));

        Assert.True(code == 0, output);
        Assert.Contains($"CUDA: unavailable: ${CudaDriver.DriverEnvironmentVariable} names {driver}, which could not be loaded: ", output);
    }

    [Fact]
    public void Open_NegativeOrdinal_IsAnArgumentError()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => CudaDevice.Open(-1));
    }

    [SkippableFact]
    public void Open_BindsTheKernelLibraryToThePrimaryContext()
    {
        SkipWithoutGpu();
        using var device = CudaDevice.Open();

        Assert.Equal(DeviceKind.Cuda, device.Kind);
        Assert.True(device.IsPrimaryContext);
        Assert.Equal(0, device.StreamHandle);
        Assert.Equal(CheapConvBackend.Cuda, device.Native.Backend);
        // "cuda: NVIDIA H100 ... (device 0, sm_90), kernels: SASS sm_90 from the fatbin" (or PTX ... (JIT)).
        Assert.StartsWith("cuda:", device.KernelBinary);
        Assert.Contains(device.Info.Architecture, device.KernelBinary);
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
    public void FromContext_SharesTheCallersContextAndMemory_AndLeavesThemAlive()
    {
        SkipWithoutGpu();
        using var owner = CudaDevice.Open();
        using var memory = owner.Upload<float>([1, 2, 3, 4]);

        using (var guest = CudaDevice.FromContext(owner.ContextHandle))
        {
            Assert.False(guest.IsPrimaryContext);
            Assert.Equal(owner.Ordinal, guest.Ordinal);
            using var borrowed = DeviceBuffer<float>.Wrap(guest, memory.Pointer, memory.Length);
            Assert.False(borrowed.OwnsMemory);
            IBackend backend = new GpuBackend(guest);
            using var doubled = backend.Allocate(4);
            backend.Fill(doubled, 0);
            backend.Axpy(2, new DeviceStorage(borrowed), doubled);
            var result = new float[4];
            backend.Download(doubled, result);
            Assert.Equal([2f, 4, 6, 8], result);
        }

        // The guest and its wrapped buffer are gone; the owner's context and memory are not.
        Assert.Equal([1f, 2, 3, 4], memory.ToArray());
        Assert.Equal(memory.Bytes, owner.AllocatedBytes);
    }

    [SkippableFact]
    public void InvalidProblem_IsRefusedByTheLibraryWithItsMessage()
    {
        SkipWithoutGpu();
        using var device = CudaDevice.Open();
        var impossible = ConvProblem.Create(1, 4, 8, 8, 4, 3, 3) with { Groups = 3 };

        var e = Assert.Throws<CheapConvException>(() =>
            device.Native.ConvForward(device.Handle, impossible, default, 0, 0, 0, 0, 0, device.Stream));

        Assert.Equal(CheapConvStatus.InvalidValue, e.Status);
        Assert.Equal("CC_ERROR_INVALID_VALUE", e.StatusName);
        Assert.NotEmpty(e.Detail);
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
