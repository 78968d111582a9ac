using CheapConv.Backends;
using CheapConv.Interop;
using CheapConv.Problems;
using CheapConv.Tests.Autograd;
using Xunit;

namespace CheapConv.Tests.Emulator;

/// <summary>
/// <see cref="IBackend.Conv2dBackward"/> (cc_conv_backward) on the emulator over the shape catalogue: both gradients in one
/// call — one launch of a fused kernel where the launcher's data and weight variants share a grid — against
/// <see cref="IBackend.Conv2dBackwardData"/> and <see cref="IBackend.Conv2dBackwardWeight"/> on the same backend. Bit for
/// bit: the fused kernels run each pass's blocks with that pass's own plan (the same products summed in the same order,
/// split-K included), so any difference is a block playing the wrong part or a wrong operand.
/// </summary>
public class EmulatedConvBackwardTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    /// <summary>The catalogue's 1×1 and 3×3 problems (those of the fused forward's tests).</summary>
    public static TheoryData<string> Sources() => EmulatedFusedEpilogueTests.Sources();

    [Theory]
    [MemberData(nameof(Sources))]
    public void Tf32Auto_IsBitForBitTheTwoCalls(string source) =>
        CheckBothGradients(new GpuBackend(emulator.Device) { ConvPrecision = KernelPrecision.Tf32 }, TestCatalogue.Scaled(source));

    [Theory]
    [MemberData(nameof(Sources))]
    public void Fp32Auto_IsBitForBitTheTwoCalls(string source) =>
        CheckBothGradients(new GpuBackend(emulator.Device) { ConvPrecision = KernelPrecision.Fp32 }, TestCatalogue.Scaled(source));

    [Theory]
    [InlineData(1, 1, 1, "cc_implicit_gemm_backward_1x1_kernel")]
    [InlineData(3, 1, 1, "cc_implicit_gemm_backward_3x3_kernel")]
    [InlineData(3, 2, 2, "cc_implicit_gemm_backward_3x3_stride2_kernel")]
    public void TensorCoreProblems_RunTheFusedKernel(int filter, int stride, int groups, string kernel)
    {
        var problem = ConvProblem.Create(2, 32, 9, 7, 32, filter, filter, stride: stride, pad: filter / 2, groups: groups);
        var options = new KernelOptions(KernelAlgorithm.ImplicitGemm) { Precision = KernelPrecision.Tf32 };
        Assert.Equal(kernel, emulator.Device.Native.ConvKernelNames(problem, ConvPass.Backward, options));
        CheckBothGradients(new GpuBackend(emulator.Device) { ConvAlgorithm = KernelAlgorithm.ImplicitGemm, ConvPrecision = KernelPrecision.Tf32 }, problem);
    }

    [Theory]
    [InlineData(1, "cc_conv2d_tiled_backward_s1_kernel")]
    [InlineData(2, "cc_conv2d_tiled_backward_s2_kernel")]
    public void TiledProblems_RunTheFusedKernel(int stride, string kernel)
    {
        var problem = ConvProblem.Create(2, 12, 11, 9, 12, 3, 3, stride: stride, pad: 1, groups: 12);
        var options = new KernelOptions(KernelAlgorithm.Tiled) { Precision = KernelPrecision.Tf32 };
        Assert.Equal(kernel, emulator.Device.Native.ConvKernelNames(problem, ConvPass.Backward, options));
        CheckBothGradients(new GpuBackend(emulator.Device) { ConvAlgorithm = KernelAlgorithm.Tiled, ConvPrecision = KernelPrecision.Tf32 }, problem);
    }

    [Fact]
    public void NeitherGradient_IsRefused()
    {
        var problem = ConvProblem.Create(2, 8, 6, 6, 8, 1, 1);
        IBackend backend = new GpuBackend(emulator.Device);
        var x = backend.Upload(TensorAssert.Random(problem.InputElements, 1));
        var dy = backend.Upload(TensorAssert.Random(problem.OutputElements, 2));
        var w = backend.Upload(TensorAssert.Random(problem.WeightElements, 3));
        var error = Assert.Throws<ArgumentException>(() => backend.Conv2dBackward(problem, x, dy, w, null, null));
        Assert.Contains("neither dx nor dw", error.Message, StringComparison.Ordinal);
    }

    // Both gradients, dx overwritten and added into, and each gradient alone.
    private static void CheckBothGradients(IBackend backend, ConvProblem problem)
    {
        var x = backend.Upload(TensorAssert.Random(problem.InputElements, 21));
        var dy = backend.Upload(TensorAssert.Random(problem.OutputElements, 22));
        var w = backend.Upload(TensorAssert.Random(problem.WeightElements, 23));
        var before = TensorAssert.Random(problem.InputElements, 24);

        foreach (var accumulate in new[] { false, true })
        {
            var what = $"{problem}{(accumulate ? ", accumulating" : "")}";
            var dxApart = backend.Upload(before);
            var dwApart = backend.Allocate(problem.WeightElements);
            backend.Conv2dBackwardData(problem, dy, w, dxApart, accumulate);
            backend.Conv2dBackwardWeight(problem, x, dy, dwApart);

            var dx = backend.Upload(before);
            var dw = backend.Allocate(problem.WeightElements);
            backend.Conv2dBackward(problem, x, dy, w, dx, dw, accumulate);
            TensorAssert.Identical(TensorAssert.Read(backend, dxApart), TensorAssert.Read(backend, dx), what + ": dx");
            TensorAssert.Identical(TensorAssert.Read(backend, dwApart), TensorAssert.Read(backend, dw), what + ": dw");

            var dxOnly = backend.Upload(before);
            backend.Conv2dBackward(problem, x, dy, w, dxOnly, null, accumulate);
            TensorAssert.Identical(TensorAssert.Read(backend, dxApart), TensorAssert.Read(backend, dxOnly), what + ": dx alone");
        }

        var dwOnly = backend.Allocate(problem.WeightElements);
        backend.Conv2dBackward(problem, x, dy, w, null, dwOnly);
        var dwWant = backend.Allocate(problem.WeightElements);
        backend.Conv2dBackwardWeight(problem, x, dy, dwWant);
        TensorAssert.Identical(TensorAssert.Read(backend, dwWant), TensorAssert.Read(backend, dwOnly), $"{problem}: dw alone");
    }
}
