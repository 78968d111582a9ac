using System.Runtime.InteropServices;
using CheapConv.Cli.Commands;
using CheapConv.Devices;
using CheapConv.Interop;
using Xunit;

namespace CheapConv.Tests.Emulator;

/// <summary>The emulator library built with the faulty kernels of native/tests/kernels/faulty.cu.</summary>
public sealed class FaultyKernelFixture : IDisposable
{
    public EmulatedDevice Device { get; } = EmulatedDevice.Open(Path.Combine(AppContext.BaseDirectory, "libcheapconv_emu_test.so"));

    public void Dispose() => Device.Dispose();
}

/// <summary>
/// The emulator catches what a GPU would silently get wrong or hang on, and names the kernel, thread and
/// source line; and it validates launches as the CUDA driver does. (Races and out-of-bounds accesses are
/// the sanitizer builds' job: see <see cref="SanitizerTests"/>.) One class, so the tests that switch the
/// library's strict mode or take its warnings never run beside the others.
/// </summary>
public sealed unsafe class EmulatorDiagnosticsTests(FaultyKernelFixture fixture) : IClassFixture<FaultyKernelFixture>
{
    private readonly EmulatedDevice _device = fixture.Device;

    [Fact]
    public void BlockReduce_SharedMemoryAndShuffles_AddUpEachBlock()
    {
        const int n = 1000;
        var input = Enumerable.Range(0, n).Select(i => (i * 7919) % 201 - 100).ToArray();
        using var inBuffer = _device.Upload<int>(input);
        using var outBuffer = _device.Allocate<int>(4);
        outBuffer.FillBytes(0xFF);
        Launch("cc_test_block_reduce", new Dim3(4), new Dim3(256), 0, inBuffer.Pointer, outBuffer.Pointer, n);
        var expected = Enumerable.Range(0, 4).Select(b => input.Skip(256 * b).Take(256).Sum()).ToArray();
        Assert.Equal(expected, outBuffer.ToArray());
    }

    [Fact]
    public void DivergentBarrier_IsReportedWithThreadsAndLines()
    {
        var error = LaunchFaulty("cc_test_divergent_barrier", new Dim3(1), new Dim3(64));
        Assert.Equal("CC_EMU_DIVERGENT_BARRIER", error.Status);
        Assert.Contains("faulty.cu:", error.Detail);
        Assert.Contains("cc_test_divergent_barrier", error.Message);
    }

    [Theory]
    [InlineData("cc_test_shuffle_mask_mismatch", "CC_EMU_WARP_MISMATCH")]
    [InlineData("cc_test_shuffle_site_mismatch", "CC_EMU_WARP_MISMATCH")]
    [InlineData("cc_test_inactive_lane_read", "CC_EMU_INACTIVE_LANE_READ")]
    [InlineData("cc_test_barrier_warp_deadlock", "CC_EMU_DEADLOCK")]
    public void WarpMisuse_IsReported(string kernel, string status)
    {
        var error = LaunchFaulty(kernel, new Dim3(1), new Dim3(32));
        Assert.Equal(status, error.Status);
        Assert.Contains("faulty.cu:", error.Detail);
    }

    [Fact]
    public void EarlyReturnBeforeBarrier_IsAWarningByDefaultAndAnErrorWhenStrict()
    {
        using var output = _device.Allocate<int>(64);
        output.FillBytes(0);
        _device.TakeWarnings();
        Launch("cc_test_early_return_barrier", new Dim3(1), new Dim3(64), 0, output.Pointer);
        var warning = Assert.Single(_device.TakeWarnings());
        Assert.Contains("CC_EMU_EXITED_AT_BARRIER", warning);
        Assert.Equal(Enumerable.Range(1, 32).Concat(Enumerable.Repeat(0, 32)), output.ToArray());

        _device.SetStrict(true);
        try
        {
            var error = LaunchFaulty("cc_test_early_return_barrier", new Dim3(1), new Dim3(64));
            Assert.Equal("CC_EMU_EXITED_AT_BARRIER", error.Status);
        }
        finally
        {
            _device.SetStrict(false);
        }
    }

    [Fact]
    public void EarlyReturnBeforeBarrier_OnTheAbiLaunchPath_ComesBackFromTakeWarnings()
    {
        // A cc_* call returns only a status, so the library keeps its warnings for cc_emu_take_warnings. No production
        // kernel warns at a geometry its launcher chooses, so the test library's cc_emu_test_runtime_launch runs the
        // diagnostic kernel down the path a cc_* call's kernel takes.
        using var output = _device.Allocate<int>(64);
        output.FillBytes(0);
        _device.TakeWarnings();

        Assert.Equal(CheapConvStatus.Success, RuntimeLaunch("cc_test_early_return_barrier", new Dim3(1), new Dim3(64), output.Pointer));

        var warning = Assert.Single(_device.TakeWarnings());
        Assert.StartsWith("cc_test_early_return_barrier (grid (1,1,1), block (64,1,1)): warning: kernel cc_test_early_return_barrier, block (0,0,0)", warning);
        Assert.Contains("CC_EMU_EXITED_AT_BARRIER", warning);
        Assert.Equal(Enumerable.Range(1, 32).Concat(Enumerable.Repeat(0, 32)), output.ToArray());
        Assert.Empty(_device.TakeWarnings());

        _device.SetStrict(true);
        try
        {
            Assert.Equal(CheapConvStatus.Emulator, RuntimeLaunch("cc_test_early_return_barrier", new Dim3(1), new Dim3(64), output.Pointer));
        }
        finally
        {
            _device.SetStrict(false);
        }

        Assert.Empty(_device.TakeWarnings());
    }

    [Fact]
    public void CheckConv_PrintsEveryWarningOnce()
    {
        // What check conv prints after its run: the warnings of both paths, this device's own launches and the ABI's.
        using var output = _device.Allocate<int>(64);
        _device.TakeWarnings();
        Launch("cc_test_early_return_barrier", new Dim3(1), new Dim3(64), 0, output.Pointer);
        RuntimeLaunch("cc_test_early_return_barrier", new Dim3(1), new Dim3(64), output.Pointer);
        RuntimeLaunch("cc_test_early_return_barrier", new Dim3(1), new Dim3(64), output.Pointer);

        using var text = new StringWriter();
        CheckConvCommand.WriteWarnings(_device, text);
        CheckConvCommand.WriteWarnings(_device, text);

        var lines = text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.All(lines, line => Assert.StartsWith("warning: cc_test_early_return_barrier", line));
        Assert.All(lines, line => Assert.Contains("CC_EMU_EXITED_AT_BARRIER", line));
        Assert.Single(lines, line => line.StartsWith("warning: cc_test_early_return_barrier: ", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(1u, 1025u, 0u, "CUDA_ERROR_INVALID_VALUE")]
    [InlineData(0u, 32u, 0u, "CUDA_ERROR_INVALID_VALUE")]
    [InlineData(1u, 32u, 48u * 1024 + 1, "CUDA_ERROR_INVALID_VALUE")]
    public void InvalidLaunch_IsRefusedWithTheDriversErrorName(uint grid, uint block, uint shared, string status)
    {
        using var output = _device.Allocate<int>(1);
        var error = Assert.Throws<KernelLaunchException>(() =>
            Launch("cc_test_block_reduce", new Dim3(grid), new Dim3(block), shared, output.Pointer, output.Pointer, 1));
        Assert.Equal(status, error.Status);
        Assert.Contains($"grid ({grid},1,1) block ({block},1,1)", error.Message);
    }

    [Fact]
    public void UnknownKernel_IsNotFound()
    {
        var error = Assert.Throws<KernelLaunchException>(() => Launch("cc_no_such_kernel", new Dim3(1), new Dim3(32), 0));
        Assert.Equal("CUDA_ERROR_NOT_FOUND", error.Status);
    }

    [Fact]
    public void ProductionLibrary_ShipsNoFaultyKernel()
    {
        using var production = EmulatedDevice.Open();
        Assert.DoesNotContain(production.KernelNames, k => k.StartsWith("cc_test_", StringComparison.Ordinal));
        Assert.Contains("cc_test_divergent_barrier", _device.KernelNames);
        Assert.False(NativeLibrary.TryGetExport(NativeLibrary.Load(production.LibraryPath), "cc_emu_test_runtime_launch", out _));
    }

    /// <summary>cc_emu_test_runtime_launch of the test library: <paramref name="kernel"/>(pointer) on the C ABI's launch path.</summary>
    private CheapConvStatus RuntimeLaunch(string kernel, Dim3 grid, Dim3 block, nint pointer)
    {
        var launch = (delegate* unmanaged<byte*, Dim3, Dim3, uint, void**, byte*, int, int>)NativeLibrary.GetExport(
            NativeLibrary.Load(_device.LibraryPath), "cc_emu_test_runtime_launch");
        var name = System.Text.Encoding.UTF8.GetBytes(kernel + "\0");
        void* argument = &pointer;
        fixed (byte* namePointer = name)
        {
            return (CheapConvStatus)launch(namePointer, grid, block, 0, &argument, null, 0);
        }
    }

    private KernelLaunchException LaunchFaulty(string kernel, Dim3 grid, Dim3 block)
    {
        using var output = _device.Allocate<int>(grid.Volume * block.Volume);
        output.FillBytes(0);
        return Assert.Throws<KernelLaunchException>(() => Launch(kernel, grid, block, 0, output.Pointer));
    }

    private void Launch(string kernel, Dim3 grid, Dim3 block, uint shared, params object[] arguments)
    {
        // Packed exactly as the backends pack them.
        var args = new KernelArguments();
        foreach (var argument in arguments)
        {
            switch (argument)
            {
                case nint pointer:
                    args.Add(pointer);
                    break;
                case int value:
                    args.Add(value);
                    break;
                default:
                    throw new ArgumentException($"unsupported argument type {argument.GetType()}");
            }
        }

        args.Launch(_device, kernel, new LaunchConfig(grid, block, shared), "diagnostics test");
    }
}
