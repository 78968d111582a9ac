using System.Diagnostics;
using CheapConv.Devices;
using CheapConv.Interop;
using CheapConv.Tests.Emulator;
using Xunit;

namespace CheapConv.Tests.Devices;

/// <summary>
/// <see cref="CudaDevice"/> on every machine, GPU or not: against the fake CUDA driver (native/tests/fake_cuda), which
/// keeps memory on the host, records every launch, copy, stream, event and context call, and checks that each comes
/// with a current context and a stream of that context. The C ABI library's kernels reach the same fake, as the real
/// ones reach the same driver. A driver is loaded once per process, so each scenario
/// (<see cref="FakeDriverScenarios"/>) runs in a child process of this test assembly with $CHEAPCONV_CUDA_DRIVER naming
/// the fake; <c>info</c> runs in a child CLI the same way.
/// </summary>
public class FakeDriverDeviceTests
{
    [Theory]
    [InlineData(nameof(FakeDriverScenarios.OpenRetainsThePrimaryContextAndDisposeReleasesIt))]
    [InlineData(nameof(FakeDriverScenarios.OpenWorksOnANonBlockingStreamOfItsOwnWhichCaptures))]
    [InlineData(nameof(FakeDriverScenarios.FromContextUsesTheCallersContextAndStreamAndLeavesThemAlive))]
    [InlineData(nameof(FakeDriverScenarios.WrappedMemoryIsNeverFreedOwnedMemoryOnce))]
    [InlineData(nameof(FakeDriverScenarios.CopiesRoundTripHostData))]
    [InlineData(nameof(FakeDriverScenarios.ConvLaunchesTheKernelsTheLibraryChoseOnTheCallersStream))]
    [InlineData(nameof(FakeDriverScenarios.TimerRecordsEventsOnTheDevicesStream))]
    [InlineData(nameof(FakeDriverScenarios.FreeAfterQueuedCopyOrFillWaitsForTheStream))]
    [InlineData(nameof(FakeDriverScenarios.StagedUploadsDoNotWait))]
    [InlineData(nameof(FakeDriverScenarios.ReadbackQueuesACopyAndAnEvent))]
    public void Scenario_Passes(string scenario)
    {
        var (code, output) = Run(Child(TestAssembly, "fake-driver", scenario), "cc=90");
        Assert.True(code == 0, output);
        Assert.Contains($"{scenario}: passed", output);
    }

    [Theory]
    [InlineData(nameof(FakeDriverScenarios.StagedUploadWaitsOnlyWhenBothBuffersAreBusy))]
    [InlineData(nameof(FakeDriverScenarios.ReadbackNotYetArrivedIsNotWaitedFor))]
    public void Scenario_WithCopiesStillRunning_Passes(string scenario)
    {
        var (code, output) = Run(Child(TestAssembly, "fake-driver", scenario), "cc=90,query=600");
        Assert.True(code == 0, output);
        Assert.Contains($"{scenario}: passed", output);
    }

    [Fact]
    public void KernelFault_IsReportedByTheNextSynchronization()
    {
        var scenario = nameof(FakeDriverScenarios.KernelFaultIsReportedByTheNextSynchronization);
        var (code, output) = Run(Child(TestAssembly, "fake-driver", scenario), "cc=90,fault=700");
        Assert.True(code == 0, output);
    }

    [Fact]
    public void Scenario_ThatFails_FailsTheTest()
    {
        // The child reports a failed assertion with its exit code: without this, every scenario above could "pass".
        // A device without memory fails the scenario's first allocation.
        var scenario = nameof(FakeDriverScenarios.CopiesRoundTripHostData);
        var (code, output) = Run(Child(TestAssembly, "fake-driver", scenario), "cc=90,memory=0");
        Assert.Equal(1, code);
        Assert.Contains("CUDA_ERROR_OUT_OF_MEMORY", output);
        Assert.Contains("the fake driver's log since its last reset:", output);
    }

    [Theory]
    [InlineData(90)]
    [InlineData(86)]
    public void Info_DescribesWhatEachGpuRuns(int computeCapability)
    {
        var (code, output) = Run(Child(Path.Combine(AppContext.BaseDirectory, "CheapConv.Cli.dll"), "info"), $"cc={computeCapability}");

        Assert.True(code == 0, output);
        Assert.Contains($"CUDA: driver {FakeCuda.LibraryPath}, CUDA 12.4, 1 device(s)\n", output);
        Assert.Contains($"  cuda:0 Fake GPU 0: compute capability {computeCapability / 10}.{computeCapability % 10} (sm_{computeCapability}), ", output);
        // SASS only for an architecture the fatbin holds (the build makes sm_80 and sm_90 where nvcc exists), else the PTX.
        var kernels = computeCapability == 90 && EmbedsFatbin(Path.Combine(AppContext.BaseDirectory, CheapConvNative.CudaFileName))
            ? "SASS sm_90 from the fatbin"
            : "PTX sm_80 (JIT)";
        Assert.Contains($"\n    kernels: cuda: Fake GPU 0 (device 0, sm_{computeCapability}), kernels: {kernels}\n", output);
    }

    private static string TestAssembly => Path.Combine(AppContext.BaseDirectory, "CheapConv.Tests.dll");

    private static ProcessStartInfo Child(string assembly, params string[] arguments)
    {
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } path ? path : "/usr/bin/dotnet";
        var start = new ProcessStartInfo(host) { ArgumentList = { assembly } };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return start;
    }

    /// <summary>Runs the child with the fake driver configured by <paramref name="fakeConfiguration"/>
    /// ($CHEAPCONV_FAKE_CUDA) and without the settings a developer's shell may hold that would change what it does.</summary>
    private static (int Code, string Output) Run(ProcessStartInfo start, string fakeConfiguration)
    {
        Assert.True(File.Exists(FakeCuda.LibraryPath), $"{FakeCuda.LibraryPath} is missing: the native build (make -C native test-support) makes it");
        start.Environment[CudaDriver.DriverEnvironmentVariable] = FakeCuda.LibraryPath;
        start.Environment["CHEAPCONV_FAKE_CUDA"] = fakeConfiguration;
        start.Environment.Remove(CudaDevice.SynchronizeEnvironmentVariable);
        start.Environment.Remove("CHEAPCONV_CUDA_PTX_ONLY");
        start.Environment.Remove(CheapConvNative.CudaEnvironmentVariable);
        return NativeProcess.Run(start, TimeSpan.FromMinutes(2));
    }

    /// <summary>Whether the CUDA library embedded nvcc's fatbins: their magic number (0xBA55ED50, little-endian) is in
    /// the file only then — the PTX images are text.</summary>
    private static bool EmbedsFatbin(string library) =>
        File.ReadAllBytes(library).AsSpan().IndexOf(FatbinMagic) >= 0;

    private static ReadOnlySpan<byte> FatbinMagic => [0x50, 0xED, 0x55, 0xBA];
}
