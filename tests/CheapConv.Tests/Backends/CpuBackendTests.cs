using CheapConv.Backends;
using CheapConv.Problems;
using Xunit;

namespace CheapConv.Tests.Backends;

/// <summary>
/// Keeps the reference honest with oracles that do not share its code: finite differences of the forward
/// pass in float64 for both gradients, and independent formulations of the forward pass (1×1 convolution as
/// a matrix product, a grouped convolution as separate dense convolutions, a hand-computed example).
/// </summary>
public class CpuBackendTests
{
    public static TheoryData<string> SmallProblems()
    {
        var data = new TheoryData<string>();
        foreach (var entry in TestCatalogue.Rigorous)
        {
            data.Add(entry.Source);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(SmallProblems))]
    public void Gradients_MatchFiniteDifferences(string source)
    {
        var problem = TestCatalogue.Full(source);
        var random = new Random(7);
        var x = RandomArray(random, problem.InputElements);
        var w = RandomArray(random, problem.WeightElements);
        var g = RandomArray(random, problem.OutputElements);

        // L(x, w) = <conv(x, w), g>, so dL/dx = backward-data(g, w) and dL/dw = backward-weight(x, g).
        double Loss(double[] xs, double[] ws)
        {
            var y = new double[problem.OutputElements];
            CpuBackend.Conv2dForward(problem, xs, ws, y);
            return y.Zip(g, (a, b) => a * b).Sum();
        }

        var dx = new double[problem.InputElements];
        var dw = new double[problem.WeightElements];
        CpuBackend.Conv2dBackwardData(problem, g, w, dx);
        CpuBackend.Conv2dBackwardWeight(problem, x, g, dw);

        CheckAgainstFiniteDifferences(x, dx, () => Loss(x, w), random, "dx");
        CheckAgainstFiniteDifferences(w, dw, () => Loss(x, w), random, "dw");
    }

    /// <summary>Central differences of <paramref name="loss"/> in a sample of the entries of <paramref name="variable"/>.</summary>
    private static void CheckAgainstFiniteDifferences(double[] variable, double[] gradient, Func<double> loss, Random random, string name)
    {
        const double step = 1e-3;
        foreach (var i in SampleIndices(random, variable.Length, 40))
        {
            var saved = variable[i];
            variable[i] = saved + step;
            var plus = loss();
            variable[i] = saved - step;
            var minus = loss();
            variable[i] = saved;
            AssertClose((plus - minus) / (2 * step), gradient[i], $"{name}[{i}]");
        }
    }

    [Fact]
    public void Forward_PointwiseIsAMatrixProduct()
    {
        var problem = ConvProblem.Create(2, 5, 3, 4, 7, 1, 1);
        var random = new Random(3);
        var x = RandomArray(random, problem.InputElements);
        var w = RandomArray(random, problem.WeightElements);
        var y = new double[problem.OutputElements];
        CpuBackend.Conv2dForward(problem, x, w, y);

        var pixels = problem.H * problem.W;
        for (var n = 0; n < problem.N; n++)
        {
            for (var k = 0; k < problem.K; k++)
            {
                for (var pixel = 0; pixel < pixels; pixel++)
                {
                    double expected = 0;
                    for (var c = 0; c < problem.C; c++)
                    {
                        expected += w[k * problem.C + c] * x[(n * problem.C + c) * pixels + pixel];
                    }

                    AssertClose(expected, y[(n * problem.K + k) * pixels + pixel], "y");
                }
            }
        }
    }

    [Fact]
    public void Forward_GroupedIsSeparateDenseConvolutions()
    {
        const int groups = 3;
        var problem = ConvProblem.Create(2, 6, 7, 5, 9, 3, 3, stride: 2, pad: 1, groups: groups);
        var random = new Random(5);
        var x = RandomArray(random, problem.InputElements);
        var w = RandomArray(random, problem.WeightElements);
        var y = new double[problem.OutputElements];
        CpuBackend.Conv2dForward(problem, x, w, y);

        var dense = ConvProblem.Create(problem.N, problem.C / groups, problem.H, problem.W, problem.K / groups, 3, 3, stride: 2, pad: 1);
        int inPlane = problem.H * problem.W, outPlane = problem.P * problem.Q, filter = dense.C * 9;
        for (var group = 0; group < groups; group++)
        {
            var xs = new double[dense.InputElements];
            for (var n = 0; n < problem.N; n++)
            {
                Array.Copy(x, (n * problem.C + group * dense.C) * inPlane, xs, n * dense.C * inPlane, dense.C * inPlane);
            }

            var ws = w.AsSpan(group * dense.K * filter, dense.K * filter).ToArray();
            var ys = new double[dense.OutputElements];
            CpuBackend.Conv2dForward(dense, xs, ws, ys);
            for (var n = 0; n < problem.N; n++)
            {
                for (var i = 0; i < dense.K * outPlane; i++)
                {
                    AssertClose(ys[n * dense.K * outPlane + i], y[(n * problem.K + group * dense.K) * outPlane + i], "y");
                }
            }
        }
    }

    [Fact]
    public void Forward_MatchesAHandComputedExample()
    {
        // x = 1..9 in a 3×3 plane, w = a 2×2 kernel [[1, 0], [0, -1]], stride 1, no padding:
        // y[p, q] = x[p, q] − x[p+1, q+1] = −4 everywhere.
        var problem = ConvProblem.Create(1, 1, 3, 3, 1, 2, 2);
        double[] x = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        double[] w = [1, 0, 0, -1];
        var y = new double[4];
        CpuBackend.Conv2dForward(problem, x, w, y);
        Assert.Equal([-4.0, -4, -4, -4], y);

        // With pad 1 and stride 2 the 2×2 output reads the corners: y[0,0] = −x[0,0], y[1,1] = x[1,1] − x[2,2].
        var padded = ConvProblem.Create(1, 1, 3, 3, 1, 2, 2, stride: 2, pad: 1);
        y = new double[padded.OutputElements];
        CpuBackend.Conv2dForward(padded, x, w, y);
        Assert.Equal([-1.0, -3, -7, 5 - 9], y);
    }

    [Fact]
    public void Passes_RejectWrongLengths()
    {
        var problem = ConvProblem.Create(1, 2, 4, 4, 2, 3, 3, pad: 1);
        var error = Assert.Throws<ArgumentException>(() =>
            CpuBackend.Conv2dForward(problem, new float[problem.InputElements - 1], new float[problem.WeightElements], new float[problem.OutputElements]));
        Assert.Contains("x has 31 elements", error.Message);
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

    private static IEnumerable<int> SampleIndices(Random random, int length, int count) =>
        length <= count ? Enumerable.Range(0, length) : Enumerable.Range(0, count).Select(_ => random.Next(length));

    private static void AssertClose(double expected, double actual, string what)
    {
        // The loss is linear in each variable, so central differences are exact up to rounding.
        var tolerance = 1e-9 * Math.Max(1, Math.Abs(expected));
        Assert.True(Math.Abs(expected - actual) <= tolerance, $"{what}: expected {expected:R}, got {actual:R}");
    }
}
