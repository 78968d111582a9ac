using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Interop;
using CheapConv.Problems;
using CheapConv.Tests.Emulator;
using Xunit;

namespace CheapConv.Tests.Interop;

/// <summary>
/// The interop class against the emulator library: loading (every path tried is reported, the other library's kind
/// is refused), what the library says about itself, its errors as exceptions with its own message, handles guarded
/// against the other library and against use after dispose, and the descriptor the library derives matching ours.
/// </summary>
public sealed class CheapConvNativeTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    private CheapConvNative Native => emulator.Device.Native;

    [Fact]
    public void Load_WhenNothingLoads_ListsEveryPathItTried()
    {
        var error = Assert.Throws<DeviceUnavailableException>(() =>
            CheapConvNative.LoadLibrary("libcheapconv_nowhere.so", "CHEAPCONV_TEST_NOWHERE", explicitPath: null));

        Assert.Contains(Path.Combine(AppContext.BaseDirectory, "libcheapconv_nowhere.so") + ": no such file", error.Message);
        Assert.Contains(Path.Combine("runtimes", System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier, "native", "libcheapconv_nowhere.so"), error.Message);
        Assert.Contains("\n  libcheapconv_nowhere.so: ", error.Message); // the system's own search, with dlopen's words
        Assert.Contains("CHEAPCONV_TEST_NOWHERE", error.Message);
    }

    [Fact]
    public void Load_RefusesTheLibraryOfTheOtherKind()
    {
        var error = Assert.Throws<DeviceUnavailableException>(() => CheapConvNative.Load(CheapConvBackend.Cuda, Native.LibraryPath));
        Assert.Contains("not on Cuda", error.Message);
        Assert.Same(Native, CheapConvNative.Load(CheapConvBackend.Emulator, Native.LibraryPath));
    }

    [Fact]
    public void Library_SaysWhatItIs()
    {
        Assert.Equal(CheapConvBackend.Emulator, Native.Backend);
        Assert.Equal(CheapConvNative.AbiMajorVersion, Native.Version / 10000);
        Assert.Matches(@"^emulator: \d+ worker threads$", emulator.Device.DescribeKernels());
        Assert.Equal("CC_ERROR_WORKSPACE", Native.StatusName(CheapConvStatus.Workspace));
    }

    [Theory]
    [MemberData(nameof(TestCatalogue.Sources), MemberType = typeof(TestCatalogue))]
    public void ConvInit_DerivesTheDescriptorConvProblemCreates(string source)
    {
        var p = TestCatalogue.Full(source);
        Assert.Equal(p, Native.ConvInit(p.N, p.C, p.H, p.W, p.K, p.R, p.S, p.PadH, p.PadW, p.StrideH, p.StrideW, p.Groups));
    }

    [Fact]
    public void FailedCall_IsAnExceptionWithTheStatusAndTheLibrarysMessage()
    {
        var problem = ConvProblem.Create(1, 4, 8, 8, 4, 3, 3) with { Groups = 3 };

        var error = Assert.Throws<CheapConvException>(() => Native.ConvValidate(problem));

        Assert.Equal(CheapConvStatus.InvalidValue, error.Status);
        Assert.Equal("CC_ERROR_INVALID_VALUE", error.StatusName);
        Assert.Equal("cc_conv_validate", error.Call);
        Assert.Contains("groups", error.Detail);
        Assert.StartsWith($"cc_conv_validate ({CheapConvNative.EmulatorFileName}) failed with CC_ERROR_INVALID_VALUE: ", error.Message);
    }

    [Fact]
    public void Handle_OfAnotherLibraryOrDisposed_IsRefused()
    {
        // libcheapconv_emu_test.so exports the same ABI from another file: its handles are not this library's.
        var other = CheapConvNative.Load(CheapConvBackend.Emulator, Path.Combine(AppContext.BaseDirectory, "libcheapconv_emu_test.so"));
        using (var foreign = other.Create(0))
        {
            var problem = new ElementwiseProblem(0);
            var error = Assert.Throws<ArgumentException>(() => Native.ReluForward(foreign, problem, 0, 0, 0));
            Assert.Contains("libcheapconv_emu_test.so was passed to", error.Message);
        }

        var handle = Native.Create(0);
        handle.Dispose();
        Assert.Throws<ObjectDisposedException>(() => Native.Describe(handle));
    }

    [Fact]
    public void EmulatedDevice_LeavesTheAbiLenient()
    {
        // The ABI's warnings come back through TakeWarnings (cc_emu_take_warnings), so opening the handle must not switch
        // the library to strict mode, which would turn them into failed calls: strict is the caller's choice.
        _ = emulator.Device.Handle;
        Assert.False(emulator.Device.SetStrict(false));
    }

    [Fact]
    public void GpuBackend_Workspace_GrowsToTheLargestAskedAndStays()
    {
        using var backend = new GpuBackend(emulator.Device);
        var device = emulator.Device;
        var large = ConvProblem.Create(2, 16, 32, 32, 32, 1, 1);
        var small = ConvProblem.Create(2, 16, 16, 16, 32, 1, 1);
        var forced = new KernelOptions(KernelAlgorithm.Gemm, SplitChunk: 16);
        var largeBytes = (long)device.Native.ConvWorkspaceSize(large, ConvPass.BackwardWeight, forced);
        Assert.True(largeBytes > (long)device.Native.ConvWorkspaceSize(small, ConvPass.BackwardWeight, forced));

        Run(large);
        Assert.Equal(largeBytes, backend.WorkspaceBytes);
        Run(small);
        Assert.Equal(largeBytes, backend.WorkspaceBytes);

        void Run(ConvProblem problem)
        {
            using var x = device.Allocate<float>(problem.InputElements);
            using var dy = device.Allocate<float>(problem.OutputElements);
            using var dw = device.Allocate<float>(problem.WeightElements);
            backend.PointwiseBackwardWeight(problem, x, dy, dw, chunk: 16);
        }
    }
}
