using CheapConv.Backends;
using CheapConv.Interop;
using CheapConv.Problems;
using CheapConv.Verification;
using Xunit;

namespace CheapConv.Tests.Emulator;

/// <summary>
/// The tensor-core (tf32 implicit-GEMM) kernels, run by the emulator through the C ABI with tf32 allowed, over every
/// problem of the shape catalogue they are made for (1×1, and 3×3 with at least 8 channels and filters per group —
/// forced where they implement all three passes, so grouped problems that AUTO gives to the tiled kernels are covered
/// too): inputs exact in tf32 against the fp32 bound (where any misplaced fragment element shows), the direct kernels'
/// results on the same inputs as a second oracle, and random fp32 inputs against the tf32 bound.
/// </summary>
public class EmulatedTensorCoreConvTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    /// <summary>The catalogue's problems the tensor-core kernels are made for (each test checks that a pass really ran on
    /// them).</summary>
    public static TheoryData<string> Sources() =>
        TestCatalogue.SourcesWhere(p => (p.R == 1 && p.S == 1) || (p.R == 3 && p.S == 3 && p.ChannelsPerGroup >= 8 && p.FiltersPerGroup >= 8));

    [Theory]
    [MemberData(nameof(Sources))]
    public void Tf32ExactInputs_MeetTheFp32BoundAndMatchTheDirectKernels(string source)
    {
        var problem = TestCatalogue.Scaled(source);
        var algorithm = TensorCoreAlgorithm(problem);
        var inputs = ConvInputs.RandomTf32Exact(problem, seed: 3);
        var tensorCores = ConvCheck.RunOnDevice(emulator.Device, problem, inputs, KernelPrecision.Tf32, algorithm);
        ConvAssert.Passed(ConvCheck.Compare(problem, inputs, tensorCores, emulator.Device.Name));

        // Second oracle: the direct kernels on the same inputs. Both are within the fp32 bound of the exact sum, so within
        // twice that of each other (relative to the same scale, the sum of the terms' absolute values).
        var direct = RunDirect(problem, inputs);
        var scale = Scales(problem, inputs);
        var taps = (long)problem.R * problem.S;
        AssertPassed(ConvCheck.ComparePass("forward", tensorCores.Y, ToDouble(direct.Y), scale.Y,
            2 * ConvCheck.RelativeTolerance(problem.ChannelsPerGroup * taps)));
        AssertPassed(ConvCheck.ComparePass("backward-data", tensorCores.Dx, ToDouble(direct.Dx), scale.Dx,
            2 * ConvCheck.RelativeTolerance(problem.FiltersPerGroup * taps)));
        AssertPassed(ConvCheck.ComparePass("backward-weight", tensorCores.Dw, ToDouble(direct.Dw), scale.Dw,
            2 * ConvCheck.RelativeTolerance((long)problem.N * problem.P * problem.Q)));
        Assert.Empty(emulator.Device.TakeWarnings());
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void RandomInputs_MeetTheTf32Bound(string source)
    {
        var problem = TestCatalogue.Scaled(source);
        var inputs = ConvInputs.Random(problem, seed: 1);
        var outputs = ConvCheck.RunOnDevice(emulator.Device, problem, inputs, KernelPrecision.Tf32, TensorCoreAlgorithm(problem));
        ConvAssert.Passed(ConvCheck.Compare(problem, inputs, outputs, emulator.Device.Name, KernelPrecision.Tf32));
    }

    [Fact]
    public void Fp32BoundOnTf32ExactInputs_CatchesAnErrorTheTf32BoundWouldMiss()
    {
        // Why the exact inputs: 2^-8 added to one output (the size of one product of two inputs of 1/16) is within the tf32
        // bound of a 64-term sum but far outside the fp32 bound, which the tensor-core results on these inputs must meet.
        var problem = TestCatalogue.Scaled(TestCatalogue.Real[0].Source); // a 1x1 over 64 channels
        Assert.Equal(64, problem.ChannelsPerGroup * problem.R * problem.S);
        var inputs = ConvInputs.RandomTf32Exact(problem, seed: 3);
        var outputs = ConvCheck.RunOnDevice(emulator.Device, problem, inputs, KernelPrecision.Tf32);
        outputs.Y[0] += 1f / 256;
        Assert.Equal(1, ConvCheck.Compare(problem, inputs, outputs, "tampered").Passes[0].Failures);
        Assert.True(ConvCheck.Compare(problem, inputs, outputs, "tampered", KernelPrecision.Tf32).Passes[0].Passed);
    }

    /// <summary>
    /// <see cref="KernelAlgorithm.ImplicitGemm"/> where the tensor-core kernels implement all three passes, else the
    /// launcher's choice with tf32 (e.g. a stride-2 1×1, whose data gradient they do not implement); checks that at least
    /// one pass then runs on them.
    /// </summary>
    private KernelAlgorithm TensorCoreAlgorithm(ConvProblem problem)
    {
        ConvPass[] passes = [ConvPass.Forward, ConvPass.BackwardData, ConvPass.BackwardWeight];
        var forced = new KernelOptions(KernelAlgorithm.ImplicitGemm) { Precision = KernelPrecision.Tf32 };
        var implementsAll = passes.All(pass =>
        {
            try
            {
                emulator.Device.Native.ConvKernelNames(problem, pass, forced);
                return true;
            }
            catch (CheapConvException e) when (e.Status == CheapConvStatus.NotSupported)
            {
                return false;
            }
        });
        if (implementsAll)
        {
            return KernelAlgorithm.ImplicitGemm;
        }

        var auto = new KernelOptions { Precision = KernelPrecision.Tf32 };
        var kernels = passes.Select(pass => emulator.Device.Native.ConvKernelNames(problem, pass, auto)).ToList();
        Assert.True(kernels.Any(k => k.Contains("implicit_gemm", StringComparison.Ordinal)),
            $"{problem}: no pass runs on the tensor-core kernels ({string.Join(", ", kernels)})");
        return KernelAlgorithm.Auto;
    }

    private ConvOutputs RunDirect(ConvProblem problem, ConvInputs inputs)
    {
        using var tensors = new ConvTensors(emulator.Device, problem, inputs);
        using var backend = new GpuBackend(emulator.Device) { ConvAlgorithm = KernelAlgorithm.Direct };
        backend.Conv2dForward(problem, tensors.X, tensors.W, tensors.Y);
        backend.Conv2dBackwardData(problem, tensors.Dy, tensors.W, tensors.Dx);
        backend.Conv2dBackwardWeight(problem, tensors.X, tensors.Dy, tensors.Dw);
        emulator.Device.Synchronize();
        return new ConvOutputs(tensors.Y.ToArray(), tensors.Dx.ToArray(), tensors.Dw.ToArray());
    }

    private static void AssertPassed(PassComparison comparison) =>
        Assert.True(comparison.Passed, $"{comparison.Pass} against the direct kernels: {comparison.Failures} of {comparison.Elements} " +
            $"beyond {comparison.Tolerance:0.00e+00}:\n  {string.Join("\n  ", comparison.FirstFailures)}");

    // The scale of each output element: the same convolution of the inputs' absolute values, in float64.
    private static (double[] Y, double[] Dx, double[] Dw) Scales(ConvProblem problem, ConvInputs inputs)
    {
        double[] x = Abs(inputs.X), w = Abs(inputs.W), dy = Abs(inputs.Dy);
        var y = new double[problem.OutputElements];
        var dx = new double[problem.InputElements];
        var dw = new double[problem.WeightElements];
        CpuBackend.Conv2dForward(problem, x, w, y);
        CpuBackend.Conv2dBackwardData(problem, dy, w, dx);
        CpuBackend.Conv2dBackwardWeight(problem, x, dy, dw);
        return (y, dx, dw);
    }

    private static double[] Abs(float[] values) => [.. values.Select(v => (double)Math.Abs(v))];

    private static double[] ToDouble(float[] values) => [.. values.Select(v => (double)v)];
}
