using CheapConv.Backends;
using CheapConv.Interop;
using CheapConv.Problems;
using CheapConv.Tests.Emulator;
using CheapConv.Verification;
using Xunit;

namespace CheapConv.Tests.Kernels;

/// <summary>
/// The GEMM kernels (native/kernels/gemm.cu), run by the emulator through <see cref="GpuBackend"/>, against the
/// float64 reference; every output is poisoned with NaN before its run, so an element a kernel does not write fails.
/// Tolerances are <see cref="ConvCheck.RelativeTolerance"/> of the number of terms each element sums (forward: C or
/// in + 1 with the bias, backward-data: K or out, weights: N·P·Q or n, bias: n), relative to the sum of the
/// absolute terms — derived from fp32 rounding, not tuned.
/// The conv tests (EmulatedConvTests) run the pointwise catalogue problems through Conv2d*, which routes them
/// here; <see cref="DirectKernels_OnPointwiseShapes_MatchReference"/> keeps the direct kernels checked on them.
/// </summary>
public sealed class GemmTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>, IDisposable
{
    private readonly GpuBackend _backend = new(emulator.Device);

    public void Dispose() => _backend.Dispose();

    [Theory]
    [MemberData(nameof(GemmCases.Pointwise), MemberType = typeof(GemmCases))]
    public void Pointwise_AllPasses_MatchReference(string shape)
    {
        var problem = GemmCases.Problem(shape);
        var inputs = ConvInputs.Random(problem, seed: 3);
        using Storage x = _backend.Upload(inputs.X), w = _backend.Upload(inputs.W), dy = _backend.Upload(inputs.Dy);
        using Storage y = Poisoned(problem.OutputElements), dx = Poisoned(problem.InputElements), dw = Poisoned(problem.WeightElements);
        IBackend backend = _backend;
        backend.PointwiseForward(problem, x, w, y);
        backend.PointwiseBackwardData(problem, dy, w, dx);
        backend.PointwiseBackwardWeight(problem, x, dy, dw);

        var outputs = new ConvOutputs(Download(y), Download(dx), Download(dw));
        ConvAssert.Passed(ConvCheck.Compare(problem, inputs, outputs, emulator.Device.Name));
        Assert.Empty(emulator.Device.TakeWarnings());
    }

    [Theory]
    [InlineData("1 7 3 5 5 1 1", 1)]
    [InlineData("2 7 3 5 5 2 2", 7)]
    [InlineData("2 66 9 11 70 2 2", 16)]
    [InlineData("2 32 32 32 64 2 2", 100)]
    [InlineData("2 16 32 32 32 1 1", 512)]
    [InlineData("2 64 8 8 128 1 1", 1 << 20)]
    public void PointwiseBackwardWeight_AnySplit_MatchesReference(string shape, int chunk)
    {
        var problem = GemmCases.Problem(shape);
        var inputs = ConvInputs.Random(problem, seed: 5);
        using var x = emulator.Device.Upload<float>(inputs.X);
        using var dy = emulator.Device.Upload<float>(inputs.Dy);
        using var dw = emulator.Device.Allocate<float>(problem.WeightElements);
        dw.FillBytes(0xFF);
        _backend.PointwiseBackwardWeight(problem, x, dy, dw, chunk);

        double[] xs = ToDouble(inputs.X), dys = ToDouble(inputs.Dy);
        double[] reference = new double[problem.WeightElements], scale = new double[problem.WeightElements];
        CpuBackend.PointwiseBackwardWeight(problem, xs, dys, reference);
        CpuBackend.PointwiseBackwardWeight(problem, Abs(xs), Abs(dys), scale);
        AssertPassed(ConvCheck.ComparePass($"backward-weight in chunks of {chunk}", dw.ToArray(), reference, scale,
            ConvCheck.RelativeTolerance((long)problem.N * problem.P * problem.Q)), problem.ToString());
        Assert.Empty(emulator.Device.TakeWarnings());
    }

    [Theory]
    [MemberData(nameof(GemmCases.Pointwise), MemberType = typeof(GemmCases))]
    public void DirectKernels_OnPointwiseShapes_MatchReference(string shape)
    {
        // With the routing switched off, Conv2d* launch the direct conv2d kernels even on 1×1 problems.
        var direct = new GpuBackend(emulator.Device) { ConvAlgorithm = KernelAlgorithm.Direct };
        var problem = GemmCases.Problem(shape);
        var inputs = ConvInputs.Random(problem, seed: 1);
        var outputs = RunConv(direct, problem, inputs);
        ConvAssert.Passed(ConvCheck.Compare(problem, inputs, outputs, emulator.Device.Name + " (direct kernels)"));
    }

    [Fact]
    public void Conv2d_OnPointwiseProblems_TakesTheGemmKernels()
    {
        // Proof of the routing by the bits: the GEMM and direct weight gradients add their N·P·Q terms in different
        // orders (tiled, in four splits, vs. 32 warp lanes and a shuffle tree), so they differ in the last bits, and
        // Conv2d must reproduce the GEMM's exactly. Both kernels are deterministic, so this cannot flicker.
        var problem = ConvProblem.Create(2, 16, 32, 32, 32, 1, 1);
        var inputs = ConvInputs.Random(problem, seed: 9);
        var routed = RunConv(_backend, problem, inputs);
        var direct = RunConv(new GpuBackend(emulator.Device) { ConvAlgorithm = KernelAlgorithm.Direct }, problem, inputs);

        using var x = emulator.Device.Upload<float>(inputs.X);
        using var dy = emulator.Device.Upload<float>(inputs.Dy);
        using var dw = emulator.Device.Allocate<float>(problem.WeightElements);
        _backend.PointwiseBackwardWeight(problem, x, dy, dw);
        Assert.Equal(dw.ToArray(), routed.Dw);
        Assert.NotEqual(direct.Dw, routed.Dw);
    }

    [Theory]
    [MemberData(nameof(GemmCases.Linear), MemberType = typeof(GemmCases))]
    public void Linear_AllPasses_MatchReference(int n, int inFeatures, int outFeatures)
    {
        var random = new Random(n * 7919 + inFeatures * 31 + outFeatures);
        float[] x = RandomFloats(random, n * inFeatures), w = RandomFloats(random, outFeatures * inFeatures);
        float[] b = RandomFloats(random, outFeatures), dy = RandomFloats(random, n * outFeatures);
        var outputs = RunLinear(n, inFeatures, outFeatures, x, w, b, dy, chunk: null);
        AssertLinear(n, inFeatures, outFeatures, x, w, b, dy, outputs);
    }

    [Theory]
    [InlineData(128, 64, 100, 1)]
    [InlineData(128, 64, 100, 7)]
    [InlineData(128, 64, 100, 16)]
    [InlineData(5, 33, 17, 2)]
    [InlineData(65, 70, 64, 64)]
    public void LinearBackwardWeight_AnySplit_MatchesReference(int n, int inFeatures, int outFeatures, int chunk)
    {
        var random = new Random(23);
        float[] x = RandomFloats(random, n * inFeatures), w = RandomFloats(random, outFeatures * inFeatures);
        float[] b = RandomFloats(random, outFeatures), dy = RandomFloats(random, n * outFeatures);
        var outputs = RunLinear(n, inFeatures, outFeatures, x, w, b, dy, chunk);
        AssertLinear(n, inFeatures, outFeatures, x, w, b, dy, outputs);
    }

    [Fact]
    public void Linear_CatchesAnUnwrittenOrWrongElement()
    {
        // The comparison must be able to fail: tamper with a correct result.
        var random = new Random(29);
        float[] x = RandomFloats(random, 5 * 33), w = RandomFloats(random, 17 * 33), b = RandomFloats(random, 17), dy = RandomFloats(random, 5 * 17);
        var outputs = RunLinear(5, 33, 17, x, w, b, dy, chunk: null);
        outputs.Dw[3] = float.NaN;
        outputs.Db[^1] += 1e-4f;
        var results = CompareLinear(5, 33, 17, x, w, b, dy, outputs);
        Assert.Equal([0L, 0, 1, 1], results.Select(r => r.Failures));
    }

    [Fact]
    public void Gemm_RejectsWrongInputs()
    {
        using var small = _backend.Allocate(3);
        using var six = _backend.Allocate(6);
        using var eight = _backend.Allocate(8);
        var error = Assert.Throws<ArgumentException>(() => ((IBackend)_backend).LinearForward(2, 3, 4, six, eight, small, eight));
        Assert.Contains("w has 8 elements but 12 are needed", error.Message);

        var padded = ConvProblem.Create(1, 2, 2, 2, 1, 1, 1, pad: 1);
        Assert.Throws<ArgumentException>(() => ((IBackend)_backend).PointwiseForward(padded, eight, small, eight));

        var problem = ConvProblem.Create(1, 2, 2, 2, 1, 1, 1);
        using var x = emulator.Device.Allocate<float>(8);
        using var dy = emulator.Device.Allocate<float>(4);
        using var dw = emulator.Device.Allocate<float>(2);
        error = Assert.Throws<ArgumentException>(() => _backend.PointwiseBackwardWeight(problem, x, dy, dw, chunk: 0));
        Assert.Contains("chunk must be positive", error.Message);
    }

    [Theory]
    [InlineData(32, 16, 2048, 4)]          // one tile: as many splits as 512-long chunks allow
    [InlineData(128, 128, 100, 1)]         // short reduction: never split
    [InlineData(64, 32, 128 * 1024, 256)]  // the batch-128 shortcut gradient: about 256 blocks
    [InlineData(1024, 1024, 1 << 20, 1)]   // 256 tiles already fill the GPU
    public void WeightGradient_SplitBalancesBlocksAgainstChunkLength(int m, int n, int k, long expectedSplits)
    {
        // The launcher's split shows in the workspace it asks for: the arrival counters and one m×n partial product per
        // split, none when the weight gradient is a single pass. Same policy for the linear layer (m = out, n = in,
        // k = batch) and the pointwise convolution (m = K, n = C, k = N·P·Q).
        var native = emulator.Device.Native;
        var linear = native.LinearWorkspaceSize(new LinearProblem(k, n, m), new KernelOptions());
        var pointwise = native.ConvWorkspaceSize(ConvProblem.Create(k, n, 1, 1, m, 1, 1), ConvPass.BackwardWeight, new KernelOptions(KernelAlgorithm.Gemm));
        Assert.Equal(linear, pointwise);
        Assert.Equal(expectedSplits == 1 ? 0 : CheapConvNative.SplitCounterBytes + expectedSplits * m * n * sizeof(float), (long)linear);
    }

    private Storage Poisoned(long length)
    {
        var storage = _backend.Allocate(length);
        _backend.Buffer(storage).FillBytes(0xFF);
        return storage;
    }

    private float[] Download(Storage storage)
    {
        var data = new float[storage.Length];
        _backend.Download(storage, data);
        return data;
    }

    private ConvOutputs RunConv(GpuBackend backend, ConvProblem problem, ConvInputs inputs)
    {
        var device = emulator.Device;
        using var x = device.Upload<float>(inputs.X);
        using var w = device.Upload<float>(inputs.W);
        using var dy = device.Upload<float>(inputs.Dy);
        using var y = device.Allocate<float>(problem.OutputElements);
        using var dx = device.Allocate<float>(problem.InputElements);
        using var dw = device.Allocate<float>(problem.WeightElements);
        foreach (var output in new[] { y, dx, dw })
        {
            output.FillBytes(0xFF);
        }

        backend.Conv2dForward(problem, x, w, y);
        backend.Conv2dBackwardData(problem, dy, w, dx);
        backend.Conv2dBackwardWeight(problem, x, dy, dw);
        return new ConvOutputs(y.ToArray(), dx.ToArray(), dw.ToArray());
    }

    private sealed record LinearOutputs(float[] Y, float[] Dx, float[] Dw, float[] Db);

    private LinearOutputs RunLinear(int n, int inFeatures, int outFeatures, float[] x, float[] w, float[] b, float[] dy, int? chunk)
    {
        using Storage xs = _backend.Upload(x), ws = _backend.Upload(w), bs = _backend.Upload(b), dys = _backend.Upload(dy);
        using Storage y = Poisoned(n * outFeatures), dx = Poisoned(n * inFeatures), dw = Poisoned(outFeatures * inFeatures), db = Poisoned(outFeatures);
        ((IBackend)_backend).LinearForward(n, inFeatures, outFeatures, xs, ws, bs, y);
        ((IBackend)_backend).LinearBackwardData(n, inFeatures, outFeatures, dys, ws, dx);
        if (chunk is { } c)
        {
            _backend.LinearBackwardWeight(n, inFeatures, outFeatures, xs, dys, dw, c);
        }
        else
        {
            ((IBackend)_backend).LinearBackwardWeight(n, inFeatures, outFeatures, xs, dys, dw);
        }

        ((IBackend)_backend).LinearBackwardBias(n, outFeatures, dys, db);
        Assert.Empty(emulator.Device.TakeWarnings());
        return new LinearOutputs(Download(y), Download(dx), Download(dw), Download(db));
    }

    private static void AssertLinear(int n, int inFeatures, int outFeatures, float[] x, float[] w, float[] b, float[] dy, LinearOutputs outputs)
    {
        foreach (var result in CompareLinear(n, inFeatures, outFeatures, x, w, b, dy, outputs))
        {
            AssertPassed(result, $"linear n={n} in={inFeatures} out={outFeatures}");
        }
    }

    private static PassComparison[] CompareLinear(int n, int inFeatures, int outFeatures, float[] x, float[] w, float[] b, float[] dy, LinearOutputs outputs)
    {
        double[] xd = ToDouble(x), wd = ToDouble(w), bd = ToDouble(b), dyd = ToDouble(dy);
        double[] y = new double[n * outFeatures], yScale = new double[y.Length];
        CpuBackend.LinearForward(n, inFeatures, outFeatures, xd, wd, bd, y);
        CpuBackend.LinearForward(n, inFeatures, outFeatures, Abs(xd), Abs(wd), Abs(bd), yScale);
        double[] dx = new double[n * inFeatures], dxScale = new double[dx.Length];
        CpuBackend.LinearBackwardData(n, inFeatures, outFeatures, dyd, wd, dx);
        CpuBackend.LinearBackwardData(n, inFeatures, outFeatures, Abs(dyd), Abs(wd), dxScale);
        double[] dw = new double[outFeatures * inFeatures], dwScale = new double[dw.Length];
        CpuBackend.LinearBackwardWeight(n, inFeatures, outFeatures, xd, dyd, dw);
        CpuBackend.LinearBackwardWeight(n, inFeatures, outFeatures, Abs(xd), Abs(dyd), dwScale);
        double[] db = new double[outFeatures], dbScale = new double[outFeatures];
        CpuBackend.LinearBackwardBias(n, outFeatures, dyd, db);
        CpuBackend.LinearBackwardBias(n, outFeatures, Abs(dyd), dbScale);
        return
        [
            ConvCheck.ComparePass("forward", outputs.Y, y, yScale, ConvCheck.RelativeTolerance(inFeatures + 1)),
            ConvCheck.ComparePass("backward-data", outputs.Dx, dx, dxScale, ConvCheck.RelativeTolerance(outFeatures)),
            ConvCheck.ComparePass("backward-weight", outputs.Dw, dw, dwScale, ConvCheck.RelativeTolerance(n)),
            ConvCheck.ComparePass("backward-bias", outputs.Db, db, dbScale, ConvCheck.RelativeTolerance(n)),
        ];
    }

    private static void AssertPassed(PassComparison pass, string what)
    {
        if (!pass.Passed)
        {
            Assert.Fail($"{what} {pass.Pass}: max abs {pass.MaxAbsError:0.00e+00}, max rel {pass.MaxRelError:0.00e+00}, tolerance {pass.Tolerance:0.00e+00}, " +
                $"{pass.Failures}/{pass.Elements} failing" + string.Concat(pass.FirstFailures.Select(f => "\n    " + f)));
        }
    }

    private static float[] RandomFloats(Random random, int length)
    {
        var data = new float[length];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = (float)(random.NextDouble() * 2 - 1);
        }

        return data;
    }

    private static double[] ToDouble(float[] values) => Array.ConvertAll(values, v => (double)v);

    private static double[] Abs(double[] values) => Array.ConvertAll(values, Math.Abs);
}
