using CheapConv.Backends;
using CheapConv.Problems;
using CheapConv.Tests.Kernels;
using CheapConv.Verification;
using Xunit;

namespace CheapConv.Tests.Backends;

/// <summary>
/// The fast float convolution paths behind <see cref="CpuBackend"/>'s <see cref="IBackend"/> members (im2col +
/// packed SGEMM, direct depthwise loops) against the static reference evaluated in float64, over the whole shape
/// catalogue (the 45 WRN-40-2 problems at batch 2 and the rigorous odd shapes) and the pointwise GEMM cases, with
/// ConvCheck's bound: ε·(4 + 2√n) of the sum of |terms| for a sum of n products, ε = 2⁻²³ (any order of additions
/// stays inside it; dropping or doubling one term does not). Outputs are poisoned with NaN, so an unwritten
/// element fails. Then determinism: bit-identical results across runs and with one or two threads.
/// </summary>
public class CpuFastConvTests
{
    [Theory]
    [MemberData(nameof(TestCatalogue.Sources), MemberType = typeof(TestCatalogue))]
    public void Conv_AllPasses_MatchFloat64Reference(string source)
    {
        var problem = TestCatalogue.Scaled(source);
        var inputs = ConvInputs.Random(problem, seed: 5);
        var outputs = RunFast(new CpuBackend(), problem, inputs, pointwise: false);
        AssertPassed(ConvCheck.Compare(problem, inputs, outputs, "cpu fast"));
    }

    [Theory]
    [MemberData(nameof(GemmCases.Pointwise), MemberType = typeof(GemmCases))]
    public void Pointwise_AllPasses_MatchFloat64Reference(string shape)
    {
        var problem = GemmCases.Problem(shape);
        var inputs = ConvInputs.Random(problem, seed: 6);
        var outputs = RunFast(new CpuBackend(), problem, inputs, pointwise: true);
        AssertPassed(ConvCheck.Compare(problem, inputs, outputs, "cpu fast pointwise"));
    }

    /// <summary>
    /// Weight gradients merged over several images per GEMM, across chunk boundaries and a short last chunk: dense
    /// 16 × 16 (two images per GEMM, register-transposed packs, 19 images = chunks of 8, 8, 3), grouped with a partial
    /// filter panel and a partial 8-row block (kg = 10, crs = 54), strided (scalar pack), a 1 × 1 whose columns are the image,
    /// B in chunks of panels with a short last one (crs = 144: 128 + 16 columns; GEMMs of two images and of one), and a
    /// grouped stride 2 (crs = 180).
    /// </summary>
    public static TheoryData<int, int, int, int, int, int, int, int, int> MergedWeightGradientProblems() => new()
    {
        { 19, 16, 16, 16, 32, 3, 1, 1, 1 },
        { 11, 12, 8, 8, 20, 3, 1, 1, 2 },
        { 9, 16, 16, 16, 32, 3, 2, 1, 1 },
        { 10, 64, 8, 8, 16, 1, 1, 0, 1 },
        { 3, 32, 16, 16, 16, 3, 1, 1, 2 },
        { 2, 40, 16, 16, 8, 3, 2, 1, 2 },
    };

    [Theory]
    [MemberData(nameof(MergedWeightGradientProblems))]
    public void Conv_MergedWeightGradient_MatchesFloat64ReferenceAndIsBitIdenticalAcrossThreads(
        int n, int c, int h, int w, int k, int r, int stride, int pad, int groups)
    {
        var problem = ConvProblem.Create(n, c, h, w, k, r, r, stride, pad, groups);
        var inputs = ConvInputs.Random(problem, seed: 11);
        var outputs = RunFast(new CpuBackend(), problem, inputs, pointwise: false);
        AssertPassed(ConvCheck.Compare(problem, inputs, outputs, "cpu fast merged dw"));
        var oneThread = RunFast(new CpuBackend(1), problem, inputs, pointwise: false);
        Assert.Equal(outputs.Dw, oneThread.Dw);
    }

    /// <summary>
    /// 3 × 3 weight gradients read from the padded planes (Vector512 hardware, 32 filters per tile, at least 256 output
    /// positions per image): one tile and two, two groups of 32, stride 2 with pad 0 and 1, pad 2, odd sizes (P·Q = 289 and
    /// 272: a part run of 8 positions in the dyᵀ pack), 19 images (chunks of 8, 8 and 3), one image, one channel.
    /// </summary>
    public static TheoryData<int, int, int, int, int, int, int, int, int> WindowWeightGradientProblems() => new()
    {
        { 3, 8, 16, 16, 32, 3, 1, 1, 1 },
        { 2, 5, 17, 17, 64, 3, 1, 1, 1 },
        { 2, 12, 16, 19, 64, 3, 1, 1, 2 },
        { 3, 6, 33, 33, 32, 3, 2, 0, 1 },
        { 2, 4, 33, 33, 96, 3, 2, 1, 1 },
        { 2, 3, 14, 15, 32, 3, 1, 2, 1 },
        { 19, 4, 16, 16, 32, 3, 1, 1, 1 },
        { 1, 16, 16, 16, 32, 3, 1, 1, 1 },
        { 2, 1, 16, 16, 32, 3, 1, 1, 1 },
    };

    [Theory]
    [MemberData(nameof(WindowWeightGradientProblems))]
    public void Conv_WindowWeightGradient_MatchesFloat64ReferenceAndIsBitIdenticalAcrossThreads(
        int n, int c, int h, int w, int k, int r, int stride, int pad, int groups) =>
        Conv_MergedWeightGradient_MatchesFloat64ReferenceAndIsBitIdenticalAcrossThreads(n, c, h, w, k, r, stride, pad, groups);

    /// <summary>
    /// The forward pass's column-matrix chunks and vector packs beside the catalogue: Q a multiple of 8 at stride 1 and 2
    /// (pad 0 and 1, odd H and W), several chunks per image with a short last one (C·R·S = 180 and 576), a 1 × 1 whose
    /// columns are cut into chunks, Q = 40 (runs across panel boundaries), 1 … 33 channels per group, groups 1 … N, one image,
    /// Q = 8 with 128 filters (packed, not quarters: see CpuWindowConv.Applies).
    /// </summary>
    public static TheoryData<int, int, int, int, int, int, int, int, int> PackedColumnProblems() => new()
    {
        { 1, 8, 16, 16, 8, 3, 1, 1, 1 },
        { 3, 16, 17, 17, 8, 3, 2, 0, 2 },
        { 2, 12, 15, 16, 12, 3, 2, 1, 4 },
        { 2, 33, 9, 8, 33, 3, 1, 1, 1 },
        { 2, 64, 32, 32, 16, 3, 1, 1, 8 },
        { 2, 20, 40, 40, 12, 3, 1, 1, 1 },
        { 2, 300, 16, 16, 8, 1, 1, 0, 1 },
        { 2, 5, 31, 31, 7, 3, 2, 1, 1 },
        { 2, 4, 10, 10, 6, 3, 1, 0, 2 },
        { 2, 8, 16, 16, 8, 3, 1, 1, 8 },
        { 1, 6, 7, 9, 4, 3, 1, 1, 2 },
        { 2, 16, 8, 8, 128, 3, 1, 1, 1 },
    };

    /// <summary>
    /// Stride 1 with Q (forward) or W (data gradient, a forward pass over dy) a multiple of 8, where the GEMMs read B from
    /// the padded planes (on Vector512 hardware) in halves (16 | Q) or quarters of a panel: a last panel of one half
    /// (pq = 240) or of three quarters (pq = 24), partial filter panels (kg = 5, 3), pad 0 (the data gradient then pads
    /// by 2), 5 × 5 with pad 2, 33 channels per group, groups 1 … 8, Q = 8 and 24 (quarters).
    /// </summary>
    public static TheoryData<int, int, int, int, int, int, int, int, int> WindowProblems() => new()
    {
        { 2, 6, 5, 48, 10, 3, 1, 1, 2 },
        { 3, 9, 6, 18, 3, 3, 1, 0, 1 },
        { 2, 10, 16, 32, 6, 3, 1, 1, 2 },
        { 2, 3, 9, 16, 5, 3, 1, 0, 1 },
        { 2, 4, 16, 16, 6, 5, 1, 2, 2 },
        { 2, 66, 8, 16, 10, 3, 1, 1, 2 },
        { 3, 64, 16, 16, 64, 3, 1, 1, 8 },
        { 2, 32, 32, 32, 32, 3, 1, 1, 4 },
        { 2, 16, 8, 8, 16, 3, 1, 1, 4 },
        { 3, 10, 8, 24, 9, 3, 1, 1, 1 },
        { 2, 6, 3, 8, 6, 3, 1, 1, 2 },
        { 2, 4, 8, 8, 6, 5, 1, 2, 2 },
    };

    [Theory]
    [MemberData(nameof(WindowProblems))]
    public void Conv_WindowGemms_MatchFloat64ReferenceAndAreBitIdenticalAcrossThreads(
        int n, int c, int h, int w, int k, int r, int stride, int pad, int groups) =>
        Conv_PackedColumnChunks_MatchFloat64ReferenceAndAreBitIdenticalAcrossThreads(n, c, h, w, k, r, stride, pad, groups);

    [Theory]
    [MemberData(nameof(PackedColumnProblems))]
    public void Conv_PackedColumnChunks_MatchFloat64ReferenceAndAreBitIdenticalAcrossThreads(
        int n, int c, int h, int w, int k, int r, int stride, int pad, int groups)
    {
        var problem = ConvProblem.Create(n, c, h, w, k, r, r, stride, pad, groups);
        var inputs = ConvInputs.Random(problem, seed: 13);
        var outputs = RunFast(new CpuBackend(), problem, inputs, pointwise: false);
        AssertPassed(ConvCheck.Compare(problem, inputs, outputs, "cpu fast packed columns"));
        var oneThread = RunFast(new CpuBackend(1), problem, inputs, pointwise: false);
        Assert.Equal(outputs.Y, oneThread.Y);
        Assert.Equal(outputs.Dx, oneThread.Dx);
        Assert.Equal(outputs.Dw, oneThread.Dw);
    }

    /// <summary>Dense (two weight-gradient chunks), grouped, depthwise with a multiplier, strided pointwise, one image.</summary>
    public static TheoryData<int, int, int, int, int, int, int, int, int> DeterminismProblems() => new()
    {
        { 16, 32, 16, 16, 64, 3, 2, 1, 1 },
        { 10, 32, 8, 8, 32, 3, 1, 1, 4 },
        { 9, 6, 9, 9, 12, 3, 2, 1, 6 },
        { 12, 24, 9, 9, 40, 1, 2, 0, 1 },
        { 1, 64, 16, 16, 64, 3, 1, 1, 1 },
    };

    [Theory]
    [MemberData(nameof(DeterminismProblems))]
    public void Conv_RepeatedAndThreadLimited_BitIdentical(int n, int c, int h, int w, int k, int r, int stride, int pad, int groups)
    {
        var problem = ConvProblem.Create(n, c, h, w, k, r, r, stride, pad, groups);
        var inputs = ConvInputs.Random(problem, seed: 9);
        var first = RunFast(new CpuBackend(), problem, inputs, pointwise: false);
        var again = RunFast(new CpuBackend(), problem, inputs, pointwise: false);
        var oneThread = RunFast(new CpuBackend(1), problem, inputs, pointwise: false);
        var twoThreads = RunFast(new CpuBackend(2), problem, inputs, pointwise: false);
        foreach (var other in new[] { again, oneThread, twoThreads })
        {
            Assert.Equal(first.Y, other.Y);
            Assert.Equal(first.Dx, other.Dx);
            Assert.Equal(first.Dw, other.Dw);
        }
    }

    /// <summary>Window GEMMs, the packed path (stride 2), depthwise (planes, then the epilogue per image), one image.</summary>
    public static TheoryData<int, int, int, int, int, int, int, int, int> FusedProblems() => new()
    {
        { 3, 8, 16, 16, 12, 3, 1, 1, 2 },
        { 2, 6, 9, 9, 10, 3, 2, 1, 1 },
        { 2, 6, 8, 8, 6, 3, 1, 1, 6 },
        { 1, 5, 7, 7, 4, 1, 1, 0, 1 },
    };

    [Theory]
    [MemberData(nameof(FusedProblems))]
    public void Conv2dForwardFused_ResidualAndEvalBatchNormRelu_IsBitForBitTheOpsInTurn(
        int n, int c, int h, int w, int k, int r, int stride, int pad, int groups)
    {
        var problem = ConvProblem.Create(n, c, h, w, k, r, r, stride, pad, groups);
        var inputs = ConvInputs.Random(problem, seed: 17);
        var random = new Random(3);
        float[] Values(long length, float low, float high) =>
            Enumerable.Range(0, checked((int)length)).Select(_ => low + (high - low) * random.NextSingle()).ToArray();
        var residual = Values(problem.OutputElements, -1, 1);
        float[] gamma = Values(k, 0.5f, 1.5f), beta = Values(k, -0.5f, 0.5f), mean = Values(k, -0.2f, 0.2f), variance = Values(k, 0.5f, 2f);
        IBackend cpu = new CpuBackend();
        using var x = cpu.Upload(inputs.X);
        using var wt = cpu.Upload(inputs.W);
        using var res = cpu.Upload(residual);
        using var g = cpu.Upload(gamma);
        using var b = cpu.Upload(beta);
        using var m = cpu.Upload(mean);
        using var v = cpu.Upload(variance);

        // The ops in turn.
        using var expectedSum = cpu.Upload(Poison(problem.OutputElements));
        using var expectedOut = cpu.Upload(Poison(problem.OutputElements));
        cpu.Conv2dForward(problem, x, wt, expectedSum);
        cpu.Add(expectedSum.Length, expectedSum, res, expectedSum);
        cpu.BatchNormReluEvalForward(n, k, problem.P, problem.Q, expectedSum, g, b, m, v, 1e-5f, expectedOut);

        // Fused, with y and without (the sum then formed and normalised in the activation's output).
        using var sum = cpu.Upload(Poison(problem.OutputElements));
        using var output = cpu.Upload(Poison(problem.OutputElements));
        cpu.Conv2dForwardFused(problem, x, wt, sum, res, new EvalBatchNormRelu(g, b, m, v, 1e-5f, output));
        using var alone = cpu.Upload(Poison(problem.OutputElements));
        cpu.Conv2dForwardFused(problem, x, wt, null, res, new EvalBatchNormRelu(g, b, m, v, 1e-5f, alone));
        using var sumOnly = cpu.Upload(Poison(problem.OutputElements));
        cpu.Conv2dForwardFused(problem, x, wt, sumOnly, res, null);

        float[] Read(Storage s)
        {
            var values = new float[s.Length];
            cpu.Download(s, values);
            return values;
        }

        Assert.Equal(Read(expectedSum), Read(sum));
        Assert.Equal(Read(expectedSum), Read(sumOnly));
        Assert.Equal(Read(expectedOut), Read(output));
        Assert.Equal(Read(expectedOut), Read(alone));
    }

    [Fact]
    public void Conv_WrongStorageLength_ThrowsNamingTheTensor()
    {
        var problem = ConvProblem.Create(2, 4, 5, 5, 6, 3, 3, 1, 1, 1);
        IBackend cpu = new CpuBackend();
        using var x = cpu.Allocate(problem.InputElements - 1);
        using var w = cpu.Allocate(problem.WeightElements);
        using var y = cpu.Allocate(problem.OutputElements);
        var error = Assert.Throws<ArgumentException>(() => cpu.Conv2dForward(problem, x, w, y));
        Assert.StartsWith("x has", error.Message, StringComparison.Ordinal);
    }

    internal static ConvOutputs RunFast(IBackend cpu, ConvProblem problem, ConvInputs inputs, bool pointwise)
    {
        using var x = cpu.Upload(inputs.X);
        using var w = cpu.Upload(inputs.W);
        using var dy = cpu.Upload(inputs.Dy);
        using var y = cpu.Upload(Poison(problem.OutputElements));
        using var dx = cpu.Upload(Poison(problem.InputElements));
        using var dw = cpu.Upload(Poison(problem.WeightElements));
        if (pointwise)
        {
            cpu.PointwiseForward(problem, x, w, y);
            cpu.PointwiseBackwardData(problem, dy, w, dx);
            cpu.PointwiseBackwardWeight(problem, x, dy, dw);
        }
        else
        {
            cpu.Conv2dForward(problem, x, w, y);
            cpu.Conv2dBackwardData(problem, dy, w, dx);
            cpu.Conv2dBackwardWeight(problem, x, dy, dw);
        }

        var outputs = new ConvOutputs(new float[problem.OutputElements], new float[problem.InputElements], new float[problem.WeightElements]);
        cpu.Download(y, outputs.Y);
        cpu.Download(dx, outputs.Dx);
        cpu.Download(dw, outputs.Dw);
        return outputs;
    }

    private static float[] Poison(long length) => Enumerable.Repeat(float.NaN, checked((int)length)).ToArray();

    internal static void AssertPassed(ConvCheckResult result)
    {
        foreach (var pass in result.Passes)
        {
            Assert.True(pass.Passed,
                $"{result.Problem} {pass.Pass}: {pass.Failures} of {pass.Elements} elements outside ε-bound {pass.Tolerance:0.00e+00} (max rel {pass.MaxRelError:0.00e+00})\n" +
                string.Join("\n", pass.FirstFailures));
        }
    }
}
