using CheapConv.Backends;
using CheapConv.Problems;
using Xunit;

namespace CheapConv.Tests.Kernels;

/// <summary>
/// The C# reference of the GEMM family against oracles that do not share its code: the general Conv2d reference
/// (which the pointwise passes must reproduce bit for bit in float64: same terms, same order), finite differences
/// of the linear forward pass, the linear layer as a 1×1 convolution of one pixel, and a hand example.
/// </summary>
public class GemmReferenceTests
{
    [Theory]
    [MemberData(nameof(GemmCases.Pointwise), MemberType = typeof(GemmCases))]
    public void Pointwise_AllPasses_EqualConv2dReferenceExactly(string shape)
    {
        var problem = GemmCases.Problem(shape);
        var random = new Random(11);
        var x = RandomArray(random, problem.InputElements);
        var w = RandomArray(random, problem.WeightElements);
        var dy = RandomArray(random, problem.OutputElements);

        double[] expected = new double[problem.OutputElements], actual = new double[problem.OutputElements];
        CpuBackend.Conv2dForward(problem, x, w, expected);
        CpuBackend.PointwiseForward(problem, x, w, actual);
        Assert.Equal(expected, actual);

        expected = new double[problem.InputElements];
        actual = Enumerable.Repeat(double.NaN, (int)problem.InputElements).ToArray();
        CpuBackend.Conv2dBackwardData(problem, dy, w, expected);
        CpuBackend.PointwiseBackwardData(problem, dy, w, actual);
        Assert.Equal(expected, actual);

        expected = new double[problem.WeightElements];
        actual = new double[problem.WeightElements];
        CpuBackend.Conv2dBackwardWeight(problem, x, dy, expected);
        CpuBackend.PointwiseBackwardWeight(problem, x, dy, actual);
        Assert.Equal(expected, actual);
    }

    [Theory]
    [MemberData(nameof(GemmCases.Linear), MemberType = typeof(GemmCases))]
    public void Linear_Gradients_MatchFiniteDifferences(int n, int inFeatures, int outFeatures)
    {
        var random = new Random(13);
        var x = RandomArray(random, (long)n * inFeatures);
        var w = RandomArray(random, (long)outFeatures * inFeatures);
        var b = RandomArray(random, outFeatures);
        var g = RandomArray(random, (long)n * outFeatures);

        // L(x, w, b) = <linear(x, w, b), g>, so dL/dx = backward-data(g), dL/dw = backward-weight(x, g), dL/db = bias(g).
        double Loss()
        {
            var y = new double[(long)n * outFeatures];
            CpuBackend.LinearForward(n, inFeatures, outFeatures, x, w, b, y);
            return y.Zip(g, (a, c) => a * c).Sum();
        }

        var dx = new double[x.Length];
        var dw = new double[w.Length];
        var db = new double[b.Length];
        CpuBackend.LinearBackwardData(n, inFeatures, outFeatures, g, w, dx);
        CpuBackend.LinearBackwardWeight(n, inFeatures, outFeatures, x, g, dw);
        CpuBackend.LinearBackwardBias(n, outFeatures, g, db);

        CheckAgainstFiniteDifferences(x, dx, Loss, random, "dx");
        CheckAgainstFiniteDifferences(w, dw, Loss, random, "dw");
        CheckAgainstFiniteDifferences(b, db, Loss, random, "db");
    }

    [Theory]
    [MemberData(nameof(GemmCases.Linear), MemberType = typeof(GemmCases))]
    public void LinearForward_EqualsAOnePixelConvolutionPlusBias(int n, int inFeatures, int outFeatures)
    {
        var random = new Random(17);
        var x = RandomArray(random, (long)n * inFeatures);
        var w = RandomArray(random, (long)outFeatures * inFeatures);
        var b = RandomArray(random, outFeatures);

        // x (n×in) is an n×in×1×1 image batch and w (out×in) an out×in×1×1 filter bank.
        var problem = ConvProblem.Create(n, inFeatures, 1, 1, outFeatures, 1, 1);
        var expected = new double[problem.OutputElements];
        CpuBackend.Conv2dForward(problem, x, w, expected);
        for (var i = 0; i < expected.Length; i++)
        {
            expected[i] += b[i % outFeatures];
        }

        var actual = new double[expected.Length];
        CpuBackend.LinearForward(n, inFeatures, outFeatures, x, w, b, actual);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Linear_MatchesAHandComputedExample()
    {
        // Two samples, three inputs, two outputs: y = x·wᵀ + b.
        double[] x = [1, 2, 3, 0, -1, 2];
        double[] w = [4, 5, 6, 1, 0, -1];
        double[] b = [0.5, -2];
        var y = new double[4];
        CpuBackend.LinearForward(2, 3, 2, x, w, b, y);
        Assert.Equal([32.5, -4, 7.5, -4], y);

        double[] dy = [1, 2, -1, 3];
        var dx = new double[6];
        CpuBackend.LinearBackwardData(2, 3, 2, dy, w, dx);
        Assert.Equal([6.0, 5, 4, -1, -5, -9], dx);

        var dw = new double[6];
        CpuBackend.LinearBackwardWeight(2, 3, 2, x, dy, dw);
        Assert.Equal([1.0, 3, 1, 2, 1, 12], dw);

        var db = new double[2];
        CpuBackend.LinearBackwardBias(2, 2, dy, db);
        Assert.Equal([0.0, 5], db);
    }

    [Fact]
    public void Pointwise_RejectsNonPointwiseProblems()
    {
        var padded = ConvProblem.Create(1, 2, 4, 4, 2, 1, 1, pad: 1);
        var error = Assert.Throws<ArgumentException>(() =>
            CpuBackend.PointwiseForward(padded, new float[padded.InputElements], new float[padded.WeightElements], new float[padded.OutputElements]));
        Assert.Contains("R = S = 1, groups = 1 and no padding", error.Message);

        var grouped = ConvProblem.Create(1, 4, 4, 4, 4, 1, 1, groups: 2);
        Assert.False(GpuBackend.IsPointwise(grouped));
        Assert.False(GpuBackend.IsPointwise(ConvProblem.Create(1, 4, 4, 4, 4, 3, 3, pad: 1)));
        Assert.True(GpuBackend.IsPointwise(ConvProblem.Create(1, 4, 5, 5, 4, 1, 1, stride: 2)));
    }

    [Fact]
    public void Linear_RejectsBadSizesAndLengths()
    {
        var error = Assert.Throws<ArgumentException>(() => CpuBackend.LinearForward(2, 3, 4, new float[6], new float[12], new float[4], new float[7]));
        Assert.Contains("y has 7 elements but 8 are needed", error.Message);
        error = Assert.Throws<ArgumentException>(() => CpuBackend.LinearBackwardBias(0, 4, [], new float[4]));
        Assert.Contains("n must be positive", error.Message);
        error = Assert.Throws<ArgumentException>(() => CpuBackend.LinearBackwardData(1 << 16, 1 << 16, 1, new float[1], new float[1], new float[1]));
        Assert.Contains("more than 2^31-1 elements", error.Message);
    }

    private static double[] RandomArray(Random random, long length)
    {
        var data = new double[length];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = random.NextDouble() * 2 - 1;
        }

        return data;
    }

    /// <summary>Central differences of <paramref name="loss"/> at a sample of the entries of <paramref name="variable"/>.</summary>
    private static void CheckAgainstFiniteDifferences(double[] variable, double[] gradient, Func<double> loss, Random random, string name)
    {
        const double step = 1e-3;
        var indices = variable.Length <= 40 ? Enumerable.Range(0, variable.Length) : Enumerable.Range(0, 40).Select(_ => random.Next(variable.Length));
        foreach (var i in indices)
        {
            var saved = variable[i];
            variable[i] = saved + step;
            var plus = loss();
            variable[i] = saved - step;
            var minus = loss();
            variable[i] = saved;
            var expected = (plus - minus) / (2 * step);

            // The loss is linear in each variable, so the central difference is exact up to rounding: the loss sums
            // at most 128·200 products of magnitude ≤ 1, whose float64 rounding (~1e-12 absolute) divided by the
            // 2e-3 step stays far below 1e-9.
            var tolerance = 1e-9 * Math.Max(1, Math.Abs(expected));
            Assert.True(Math.Abs(expected - gradient[i]) <= tolerance, $"{name}[{i}]: finite difference {expected:R}, gradient {gradient[i]:R}");
        }
    }
}
