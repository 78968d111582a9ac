using CheapConv.Backends;
using CheapConv.Interop;
using CheapConv.Problems;
using CheapConv.Tests.Autograd;
using Xunit;

namespace CheapConv.Tests.Emulator;

/// <summary>
/// <see cref="IBackend.Conv2dForwardFused"/> (cc_conv_forward_fused) on the emulator over the shape catalogue: the tensor-core
/// forward kernels with their epilogue — the residual added, relu(eval batch norm) written as a second output, y written
/// or not — against the separate ops it replaces (<see cref="IBackend.Conv2dForward"/>, <see cref="IBackend.Add"/>,
/// <see cref="IBackend.BatchNormReluEvalForward"/>) on the same backend. Bit for bit: the convolution's sums are the same
/// kernel's either way, and the epilogue's add and normalisation are the separate kernels' operations
/// (native/include/cheapconv/bn_arithmetic.h), so any difference is a wrong element, channel or parameter.
/// </summary>
public class EmulatedFusedEpilogueTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    /// <summary>The catalogue's 1×1 and 3×3 problems: the tensor-core forward kernels implement every one of them.</summary>
    public static TheoryData<string> Sources()
    {
        var data = new TheoryData<string>();
        foreach (var entry in TestCatalogue.Real.Concat(TestCatalogue.Rigorous))
        {
            if (entry.Problem.R == entry.Problem.S && entry.Problem.R is 1 or 3)
            {
                data.Add(entry.Source);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void TensorCoreEpilogue_IsBitForBitTheSeparateOps(string source)
    {
        var problem = TestCatalogue.Scaled(source);
        var options = new KernelOptions(KernelAlgorithm.ImplicitGemm) { Precision = KernelPrecision.Tf32 };
        Assert.Contains("implicit_gemm_forward", emulator.Device.Native.ConvKernelNames(problem, ConvPass.Forward, options), StringComparison.Ordinal);
        CheckEveryEpilogue(new GpuBackend(emulator.Device) { ConvAlgorithm = KernelAlgorithm.ImplicitGemm, ConvPrecision = KernelPrecision.Tf32 }, problem);
    }

    [Theory]
    [InlineData(KernelAlgorithm.Direct)]
    [InlineData(KernelAlgorithm.Tiled)]
    public void OtherKernels_FallBackToTheSeparateOps(KernelAlgorithm algorithm)
    {
        // A depthwise stride-2 3×3: no tensor-core kernel runs it with these options, so the call runs the three ops itself.
        var problem = ConvProblem.Create(2, 8, 9, 9, 8, 3, 3, stride: 2, pad: 1, groups: 8);
        var options = new KernelOptions(algorithm) { Precision = KernelPrecision.Tf32 };
        Assert.DoesNotContain("implicit_gemm", emulator.Device.Native.ConvKernelNames(problem, ConvPass.Forward, options), StringComparison.Ordinal);
        CheckEveryEpilogue(new GpuBackend(emulator.Device) { ConvAlgorithm = algorithm, ConvPrecision = KernelPrecision.Tf32 }, problem);
    }

    [Fact]
    public void NeitherYNorActivation_IsRefused()
    {
        var problem = ConvProblem.Create(2, 8, 6, 6, 8, 1, 1);
        IBackend backend = new GpuBackend(emulator.Device);
        var x = backend.Upload(TensorAssert.Random(problem.InputElements, 1));
        var w = backend.Upload(TensorAssert.Random(problem.WeightElements, 2));
        var error = Assert.Throws<CheapConvException>(() => backend.Conv2dForwardFused(problem, x, w, null, null, null));
        Assert.Contains("y and epilogue->activated are both NULL", error.Message, StringComparison.Ordinal);
    }

    // With and without the residual; y only, y and the activation, the activation only.
    private static void CheckEveryEpilogue(IBackend backend, ConvProblem problem)
    {
        float[] xs = TensorAssert.Random(problem.InputElements, 11), ws = TensorAssert.Random(problem.WeightElements, 12),
            rs = TensorAssert.Random(problem.OutputElements, 13);
        var x = backend.Upload(xs);
        var w = backend.Upload(ws);
        var residual = backend.Upload(rs);
        var bn = BatchNorm(backend, problem.K);  // what normalises into a given output

        var plain = backend.Allocate(problem.OutputElements);
        backend.Conv2dForward(problem, x, w, plain);
        var summed = backend.Allocate(problem.OutputElements);
        backend.Add(problem.OutputElements, plain, residual, summed);
        var expected = new Dictionary<(bool Residual, bool Activated), float[]>
        {
            [(false, false)] = Download(backend, plain),
            [(true, false)] = Download(backend, summed),
            [(false, true)] = Normalized(backend, problem, plain, bn),
            [(true, true)] = Normalized(backend, problem, summed, bn),
        };

        foreach (var withResidual in new[] { false, true })
        {
            foreach (var (keepY, activate) in new[] { (true, false), (true, true), (false, true) })
            {
                var what = $"{problem}{(withResidual ? ", residual" : "")}{(keepY ? ", y" : "")}{(activate ? ", activated" : "")}";
                var y = keepY ? backend.Allocate(problem.OutputElements) : null;
                var activated = activate ? backend.Allocate(problem.OutputElements) : null;
                backend.Conv2dForwardFused(problem, x, w, y, withResidual ? residual : null, activated is null ? null : bn(activated));
                if (y is not null)
                {
                    TensorAssert.Identical(expected[(withResidual, false)], Download(backend, y), what + ": y");
                }

                if (activated is not null)
                {
                    TensorAssert.Identical(expected[(withResidual, true)], Download(backend, activated), what + ": activated");
                }
            }
        }
    }

    // Parameters that put normalised values on both sides of 0 (the ReLU matters) and some variances near eps.
    private static Func<Storage, EvalBatchNormRelu> BatchNorm(IBackend backend, int channels)
    {
        var random = new Random(17);
        float[] Values(float lo, float hi) => [.. Enumerable.Range(0, channels).Select(_ => lo + (hi - lo) * random.NextSingle())];
        Storage gamma = backend.Upload(Values(-1.5f, 1.5f)), beta = backend.Upload(Values(-0.5f, 0.5f)), mean = backend.Upload(Values(-0.3f, 0.3f)),
            variance = backend.Upload(Values(1e-6f, 2f));
        return output => new EvalBatchNormRelu(gamma, beta, mean, variance, 1e-5f, output);
    }

    private static float[] Normalized(IBackend backend, ConvProblem problem, Storage input, Func<Storage, EvalBatchNormRelu> batchNorm)
    {
        var bn = batchNorm(backend.Allocate(problem.OutputElements));
        backend.BatchNormReluEvalForward(problem.N, problem.K, problem.P, problem.Q, input, bn.Gamma, bn.Beta, bn.RunningMean, bn.RunningVar, bn.Eps, bn.Output);
        return Download(backend, bn.Output);
    }

    private static float[] Download(IBackend backend, Storage storage)
    {
        var values = new float[storage.Length];
        backend.Download(storage, values);
        return values;
    }
}
