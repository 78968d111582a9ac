using CheapConv.Interop;
using CheapConv.Problems;
using CheapConv.Verification;
using Xunit;

namespace CheapConv.Tests.Emulator;

/// <summary>
/// The tiled 3×3 kernels (CC_ALGO_TILED), which the launcher picks in fp32 for every 3×3 of the catalogue with stride 1
/// or 2 (dense, grouped and depthwise): <see cref="EmulatedConvTests"/> checks them against the float64 reference; here
/// the direct kernels, the reference algorithm on the device, are a second oracle for every such catalogue problem
/// (stride 1 and 2, dense, depthwise and grouped, the real shapes and the odd ones).
/// </summary>
public class EmulatedTiledConvTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    /// <summary>The catalogue's problems the tiled kernels take by default in fp32: 3×3, equal strides 1 or 2.</summary>
    public static TheoryData<string> TiledSources()
    {
        var data = new TheoryData<string>();
        foreach (var entry in TestCatalogue.Real.Concat(TestCatalogue.Rigorous).Where(e => IsTiled(e.Problem)))
        {
            data.Add(entry.Source);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(TiledSources))]
    public void TiledKernels_AgreeWithTheDirectKernels(string source)
    {
        var problem = TestCatalogue.Scaled(source);
        var inputs = ConvInputs.Random(problem, seed: 3);
        var tiled = ConvCheck.RunOnDevice(emulator.Device, problem, inputs, algorithm: KernelAlgorithm.Tiled);
        var direct = ConvCheck.RunOnDevice(emulator.Device, problem, inputs, algorithm: KernelAlgorithm.Direct);
        ConvAssert.Passed(ConvCheck.CompareWithOracle(problem, inputs, tiled, direct, emulator.Device.Name + " (tiled vs direct kernels)"));
        Assert.Empty(emulator.Device.TakeWarnings());
    }

    [Theory]
    [MemberData(nameof(TiledSources))]
    public void Launcher_PicksTheTiledKernels(string source)
    {
        var problem = TestCatalogue.Full(source);
        var native = emulator.Device.Native;
        var stride = problem.StrideH == 1 ? "s1" : "s2";
        // In fp32 (what GpuBackend asks for by default); with tf32 the many-channel ones go to the tensor cores.
        var fp32 = new KernelOptions { Precision = KernelPrecision.Fp32 };
        Assert.Equal($"cc_conv2d_tiled_forward_{stride}_kernel", native.ConvKernelNames(problem, ConvPass.Forward, fp32));
        Assert.Equal($"cc_conv2d_tiled_backward_data_{stride}_kernel", native.ConvKernelNames(problem, ConvPass.BackwardData, fp32));
        Assert.StartsWith($"cc_conv2d_tiled_backward_weight_{stride}_kernel", native.ConvKernelNames(problem, ConvPass.BackwardWeight, fp32),
            StringComparison.Ordinal);
        Assert.Equal("cc_conv2d_forward_kernel", native.ConvKernelNames(problem, ConvPass.Forward, new KernelOptions(KernelAlgorithm.Direct)));
    }

    [Fact]
    public void Comparison_WithTheOracle_CatchesAWrongElement()
    {
        // The oracle comparison must be able to fail: one wrong element in a correct result.
        var problem = TestCatalogue.Scaled(TestCatalogue.Real.First(e => IsTiled(e.Problem)).Source);
        var inputs = ConvInputs.Random(problem, seed: 3);
        var tiled = ConvCheck.RunOnDevice(emulator.Device, problem, inputs);
        var direct = ConvCheck.RunOnDevice(emulator.Device, problem, inputs, algorithm: KernelAlgorithm.Direct);
        tiled.Dx[^1] += 1e-3f;
        var result = ConvCheck.CompareWithOracle(problem, inputs, tiled, direct, "tampered");
        Assert.True(result.Passes[0].Passed);
        Assert.Equal(1, result.Passes[1].Failures);
        Assert.True(result.Passes[2].Passed);
    }

    private static bool IsTiled(ConvProblem p) =>
        p.R == 3 && p.S == 3 && p.StrideH == p.StrideW && p.StrideH is 1 or 2;
}
