using CheapConv.Backends;
using Xunit;

namespace CheapConv.Tests.Kernels;

/// <summary>
/// Keeps the Norm-family reference honest with oracles that share none of its code: central finite differences
/// in float64 of a scalar loss Σ y·g for every backward pass, direct two-pass computations of the batch and
/// running statistics, and small examples worked by hand.
/// </summary>
public class NormReferenceTests
{
    private const double Momentum = 0.1;
    private const double Eps = 1e-5;

    // Step of the central differences. Their truncation error is h²/6·|L'''| ≈ 2e-11·|L'''| and their rounding
    // error about 1e-16·|L|/h ≈ 1e-11·|L|, both far below RelativeGap, while a wrong term of a gradient is O(1).
    private const double Step = 1e-5;
    private const double RelativeGap = 1e-6;

    public static TheoryData<string> SmallShapes() => ["2x3x2x3", "1x2x1x3", "3x2x1x1", "1x4x2x1", "2x2x3x2"];

    [Theory]
    [MemberData(nameof(SmallShapes))]
    public void BatchNormBackward_MatchesFiniteDifferences(string shapeText) => CheckBatchNormGradients(NormShape.Parse(shapeText), relu: false);

    [Theory]
    [MemberData(nameof(SmallShapes))]
    public void BatchNormReluBackward_MatchesFiniteDifferences(string shapeText) => CheckBatchNormGradients(NormShape.Parse(shapeText), relu: true);

    private static void CheckBatchNormGradients(NormShape s, bool relu)
    {
        var random = new Random(11);
        var x = NormTestData.ToDouble(NormTestData.Uniform(random, s.Elements));
        var gamma = NormTestData.ToDouble(NormTestData.SignedScales(random, s.C));
        var beta = NormTestData.ToDouble(NormTestData.Uniform(random, s.C, -0.5, 0.5));
        var g = NormTestData.ToDouble(NormTestData.Uniform(random, s.Elements));

        double[] Forward(double[] xs, double[] gs, double[] bs, double[] mean, double[] invStd)
        {
            var y = new double[s.Elements];
            double[] runningMean = new double[s.C], runningVar = new double[s.C];
            if (relu)
            {
                CpuBackend.BatchNormReluTrainForward(s.N, s.C, s.H, s.W, xs, gs, bs, runningMean, runningVar, Momentum, Eps, y, mean, invStd);
            }
            else
            {
                CpuBackend.BatchNormTrainForward(s.N, s.C, s.H, s.W, xs, gs, bs, runningMean, runningVar, Momentum, Eps, y, mean, invStd);
            }

            return y;
        }

        double[] saveMean = new double[s.C], saveInvStd = new double[s.C];
        var y0 = Forward(x, gamma, beta, saveMean, saveInvStd);
        if (relu)
        {
            // Only outputs away from the kink carry a gradient, so no perturbation below moves a weighted output
            // across it (each moves by about Step): the loss is smooth where it is differentiated.
            var pre = new double[s.Elements];
            CpuBackend.BatchNormTrainForward(s.N, s.C, s.H, s.W, x, gamma, beta, new double[s.C], new double[s.C], Momentum, Eps, pre,
                new double[s.C], new double[s.C]);
            for (var i = 0; i < g.Length; i++)
            {
                if (Math.Abs(pre[i]) < 1e-2)
                {
                    g[i] = 0;
                }
            }

            Assert.Contains(y0, v => v == 0); // the mask is exercised
        }

        double Loss() => Forward(x, gamma, beta, new double[s.C], new double[s.C]).Zip(g, (a, b) => a * b).Sum();

        double[] dx = new double[s.Elements], dgamma = new double[s.C], dbeta = new double[s.C];
        if (relu)
        {
            CpuBackend.BatchNormReluBackward(s.N, s.C, s.H, s.W, x, g, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta);
        }
        else
        {
            CpuBackend.BatchNormBackward(s.N, s.C, s.H, s.W, x, g, gamma, saveMean, saveInvStd, dx, dgamma, dbeta);
        }

        CheckAgainstFiniteDifferences(x, dx, Loss, "dx");
        CheckAgainstFiniteDifferences(gamma, dgamma, Loss, "dgamma");
        CheckAgainstFiniteDifferences(beta, dbeta, Loss, "dbeta");
    }

    [Fact]
    public void GlobalAvgPoolBackward_MatchesFiniteDifferences()
    {
        var s = new NormShape(2, 3, 3, 5);
        var random = new Random(5);
        var x = NormTestData.ToDouble(NormTestData.Uniform(random, s.Elements));
        var g = NormTestData.ToDouble(NormTestData.Uniform(random, s.Planes));
        double Loss()
        {
            var y = new double[s.Planes];
            CpuBackend.GlobalAvgPoolForward(s.N, s.C, s.H, s.W, x, y);
            return y.Zip(g, (a, b) => a * b).Sum();
        }

        var dx = new double[s.Elements];
        CpuBackend.GlobalAvgPoolBackward(s.N, s.C, s.H, s.W, g, dx);
        CheckAgainstFiniteDifferences(x, dx, Loss, "dx");
    }

    [Theory]
    [InlineData(0, 0, 0, 0)]
    [InlineData(1, 2, 3, 0)]
    [InlineData(4, 4, 4, 4)]
    public void ZeroPadBackward_MatchesFiniteDifferences(int top, int bottom, int left, int right)
    {
        var s = new NormShape(2, 2, 3, 4);
        int outH = s.H + top + bottom, outW = s.W + left + right;
        var random = new Random(9);
        var x = NormTestData.ToDouble(NormTestData.Uniform(random, s.Elements));
        var g = NormTestData.ToDouble(NormTestData.Uniform(random, s.Planes * outH * outW));
        double Loss()
        {
            var y = new double[g.Length];
            CpuBackend.ZeroPadForward(s.N, s.C, s.H, s.W, top, bottom, left, right, x, y);
            return y.Zip(g, (a, b) => a * b).Sum();
        }

        var dx = new double[s.Elements];
        CpuBackend.ZeroPadBackward(s.N, s.C, s.H, s.W, top, bottom, left, right, g, dx);
        CheckAgainstFiniteDifferences(x, dx, Loss, "dx");
    }

    [Fact]
    public void ReluBackward_MatchesFiniteDifferences()
    {
        var random = new Random(4);
        // Keep every input at least 0.01 from the kink, where the derivative exists.
        var x = NormTestData.ToDouble(NormTestData.Uniform(random, 50)).Select(v => v + (0.01 * Math.Sign(v))).ToArray();
        var g = NormTestData.ToDouble(NormTestData.Uniform(random, 50));
        double Loss()
        {
            var y = new double[x.Length];
            CpuBackend.ReluForward(x.Length, x, y);
            return y.Zip(g, (a, b) => a * b).Sum();
        }

        var y0 = new double[x.Length];
        CpuBackend.ReluForward(x.Length, x, y0);
        var dx = new double[x.Length];
        CpuBackend.ReluBackward(x.Length, y0, g, dx);
        CheckAgainstFiniteDifferences(x, dx, Loss, "dx");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BatchNormTrainForward_StatisticsMatchDirectTwoPassComputation(bool relu)
    {
        var s = new NormShape(3, 4, 5, 2);
        var random = new Random(21);
        // A large mean against a small spread: the single-pass E[x²] − E[x]² would lose most digits of the variance.
        var x = NormTestData.ToDouble(NormTestData.Uniform(random, s.Elements, 99, 101));
        var gamma = NormTestData.ToDouble(NormTestData.SignedScales(random, s.C));
        var beta = NormTestData.ToDouble(NormTestData.Uniform(random, s.C));
        var runningMean = NormTestData.ToDouble(NormTestData.Uniform(random, s.C));
        var runningVar = NormTestData.ToDouble(NormTestData.Uniform(random, s.C, 0.5, 1.5));
        var initialMean = (double[])runningMean.Clone();
        var initialVar = (double[])runningVar.Clone();
        double[] y = new double[s.Elements], saveMean = new double[s.C], saveInvStd = new double[s.C];
        if (relu)
        {
            CpuBackend.BatchNormReluTrainForward(s.N, s.C, s.H, s.W, x, gamma, beta, runningMean, runningVar, Momentum, Eps, y, saveMean, saveInvStd);
        }
        else
        {
            CpuBackend.BatchNormTrainForward(s.N, s.C, s.H, s.W, x, gamma, beta, runningMean, runningVar, Momentum, Eps, y, saveMean, saveInvStd);
        }

        for (var c = 0; c < s.C; c++)
        {
            var values = (from n in Enumerable.Range(0, s.N)
                          from p in Enumerable.Range(0, s.H * s.W)
                          select x[((n * s.C) + c) * s.H * s.W + p]).ToArray();
            var m = values.Length;
            var mean = values.Average();
            var squares = values.Sum(v => (v - mean) * (v - mean));
            var invStd = 1 / Math.Sqrt((squares / m) + Eps);
            AssertClose(mean, saveMean[c], $"mean[{c}]");
            AssertClose(invStd, saveInvStd[c], $"invStd[{c}]");
            AssertClose(((1 - Momentum) * initialMean[c]) + (Momentum * mean), runningMean[c], $"runningMean[{c}]");
            AssertClose(((1 - Momentum) * initialVar[c]) + (Momentum * squares / (m - 1)), runningVar[c], $"runningVar[{c}]");
            for (var n = 0; n < s.N; n++)
            {
                for (var p = 0; p < s.H * s.W; p++)
                {
                    var index = ((n * s.C) + c) * s.H * s.W + p;
                    var expected = (gamma[c] * (x[index] - mean) * invStd) + beta[c];
                    AssertClose(relu ? Math.Max(expected, 0) : expected, y[index], $"y[{index}]");
                }
            }
        }
    }

    [Fact]
    public void BatchNormTrainForward_HandExample()
    {
        // One channel holding 1, 2, 3, 4: mean 2.5, biased variance 1.25 (normalises), unbiased 5/3 (running).
        double[] x = [1, 2, 3, 4];
        double[] gamma = [2], beta = [0.5], runningMean = [0], runningVar = [1];
        double[] y = new double[4], saveMean = new double[1], saveInvStd = new double[1];
        CpuBackend.BatchNormTrainForward(1, 1, 2, 2, x, gamma, beta, runningMean, runningVar, 0.1, 0.0, y, saveMean, saveInvStd);
        AssertClose(2.5, saveMean[0], "mean");
        AssertClose(1 / Math.Sqrt(1.25), saveInvStd[0], "invStd");
        AssertClose(0.25, runningMean[0], "runningMean");
        AssertClose((0.9 * 1) + (0.1 * 5.0 / 3.0), runningVar[0], "runningVar");
        for (var i = 0; i < 4; i++)
        {
            AssertClose((2 * (x[i] - 2.5) / Math.Sqrt(1.25)) + 0.5, y[i], $"y[{i}]");
        }
    }

    [Fact]
    public void BatchNormEvalForward_HandExample()
    {
        // Two channels, two samples of one pixel: y = γ·(x − μ)/√(σ² + eps) + β with the running μ, σ².
        double[] x = [1, -3, 5, 0];
        double[] gamma = [2, -1], beta = [0, 1], runningMean = [1, 1], runningVar = [3, 15];
        var y = new double[4];
        CpuBackend.BatchNormEvalForward(2, 2, 1, 1, x, gamma, beta, runningMean, runningVar, 1.0, y);
        double[] expected = [0, (-1 * (-4) / 4.0) + 1, 2 * 4 / 2.0, (-1 * (-1) / 4.0) + 1];
        for (var i = 0; i < 4; i++)
        {
            AssertClose(expected[i], y[i], $"y[{i}]");
        }

        CpuBackend.BatchNormReluEvalForward(2, 2, 1, 1, x, gamma, beta, runningMean, runningVar, 1.0, y);
        Assert.Equal([0, 2, 4, 1.25], y);
    }

    [Fact]
    public void GlobalAvgPoolAndZeroPad_HandExample()
    {
        double[] x = [1, 2, 3, 4, 5, 6];
        var pooled = new double[2];
        CpuBackend.GlobalAvgPoolForward(1, 2, 1, 3, x, pooled);
        Assert.Equal([2, 5], pooled);

        var padded = new double[2 * 3 * 4];
        CpuBackend.ZeroPadForward(1, 2, 1, 3, top: 1, bottom: 1, left: 0, right: 1, x, padded);
        Assert.Equal([0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 5, 6, 0, 0, 0, 0, 0], padded);
    }

    [Fact]
    public void Training_RefusesOneValuePerChannel()
    {
        var error = Assert.Throws<ArgumentException>(() => CpuBackend.BatchNormTrainForward(1, 2, 1, 1, new double[2], new double[2],
            new double[2], new double[2], new double[2], 0.1, 1e-5, new double[2], new double[2], new double[2]));
        Assert.Contains("more than one value per channel", error.Message);
    }

    [Fact]
    public void Ops_RefuseWrongLengths()
    {
        Assert.Throws<ArgumentException>(() => CpuBackend.BatchNormEvalForward(1, 2, 2, 2, new double[8], new double[2], new double[2],
            new double[2], new double[3], 1e-5, new double[8]));
        Assert.Throws<ArgumentException>(() => CpuBackend.ReluForward(5, new double[5], new double[4]));
        Assert.Throws<ArgumentException>(() => CpuBackend.ZeroPadForward(1, 1, 2, 2, -1, 0, 0, 0, new double[4], new double[2]));
        Assert.Throws<ArgumentException>(() => CpuBackend.GlobalAvgPoolForward(1, 2, 0, 2, Array.Empty<double>(), new double[2]));
        Assert.Throws<ArgumentException>(() => CpuBackend.Axpy(1.0, new double[3], new double[4]));
    }

    /// <summary>Central differences of <paramref name="loss"/> in every entry of <paramref name="variable"/> (sampled where there are many).</summary>
    private static void CheckAgainstFiniteDifferences(double[] variable, double[] gradient, Func<double> loss, string name)
    {
        var stride = Math.Max(1, variable.Length / 40);
        for (var i = 0; i < variable.Length; i += stride)
        {
            var saved = variable[i];
            variable[i] = saved + Step;
            var plus = loss();
            variable[i] = saved - Step;
            var minus = loss();
            variable[i] = saved;
            AssertClose((plus - minus) / (2 * Step), gradient[i], $"{name}[{i}]");
        }
    }

    private static void AssertClose(double expected, double actual, string what)
    {
        var bound = RelativeGap * Math.Max(1, Math.Abs(expected));
        Assert.True(Math.Abs(expected - actual) <= bound, $"{what}: {actual:R} vs {expected:R} (bound {bound:0.0e+00})");
    }
}
