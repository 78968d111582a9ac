using CheapConv.Verification;
using Xunit;

namespace CheapConv.Tests.Kernels;

/// <summary>
/// Per-element error bounds for the Loss family's fp32 results against the float64 reference, derived from the
/// arithmetic the kernels do (not tuned to pass). The ingredients:
/// <list type="bullet">
/// <item>ε = 2^-23 (twice the unit roundoff, as <see cref="ConvCheck"/>), and <see cref="ConvCheck.RelativeTolerance"/>
/// (ε·(4 + 2√n)) for a sum of n terms in any order.</item>
/// <item>Device expf = ex2.approx(x·log2 e): relative error about 2^-21, plus the rounding of its argument. The
/// argument x/T − max is formed from values up to M = max|x/T| in magnitude, so it carries an absolute error up
/// to about 3·M·2^-24 (the division, the subtraction, the product with log2 e), which exp turns into the same
/// relative error: <see cref="ExpRelative"/> = 2^-21 + 4·M·2^-24. The emulator uses libm (under 1 ulp), well inside.</item>
/// <item>Device logf = lg2.approx·ln 2: absolute error about 2^-21.4 near 1 and relative 2^-22 elsewhere, so for a
/// softmax denominator S ≥ 1, <see cref="LogAbsolute"/> = 2^-21 + ln S·2^-21.</item>
/// </list>
/// A kernel that drops, doubles or misplaces a term misses these bounds by orders of magnitude.
/// </summary>
public static class LossTolerance
{
    public static readonly double Epsilon = Math.Pow(2, -23);

    /// <summary>
    /// Results below the normal fp32 range (2^-126) have lost relative precision (a tiny probability, say), so
    /// every bound also allows this much absolute error.
    /// </summary>
    public static readonly double Subnormal = Math.Pow(2, -126);

    private static readonly double Approx = Math.Pow(2, -21);
    private static readonly double Rounding = Math.Pow(2, -24);

    public static double Sum(long terms) => ConvCheck.RelativeTolerance(terms);

    /// <summary>Relative error of exp(x/T − max) when |x/T| ≤ <paramref name="magnitude"/>.</summary>
    public static double ExpRelative(double magnitude) => Approx + 4 * magnitude * Rounding;

    /// <summary>Absolute error of log S for a softmax denominator S ≥ 1.</summary>
    public static double LogAbsolute(double denominator) => Approx + Math.Log(denominator) * Approx;

    /// <summary>The double-precision statistics of one softmax row that the bounds need.</summary>
    public readonly record struct SoftmaxRow(double Magnitude, double Max, double Sum, double SumRelative, double ProbabilityRelative, double LogRelativeAbsolute)
    {
        public double LogSum => Math.Log(Sum);
    }

    /// <summary>
    /// The softmax of x/T and its bounds: the denominator (a sum of positive exponentials) is off by at most
    /// ExpRelative + Sum(classes) relative; a probability adds its own exponential and the division; a
    /// log-probability (x_j/T − max) − log S is off by the argument's rounding, log's error and the denominator's.
    /// </summary>
    public static SoftmaxRow Row(ReadOnlySpan<float> x, double temperature)
    {
        double magnitude = 0, max = double.NegativeInfinity;
        foreach (var v in x)
        {
            magnitude = Math.Max(magnitude, Math.Abs(v / temperature));
            max = Math.Max(max, v / temperature);
        }

        double sum = 0;
        foreach (var v in x)
        {
            sum += Math.Exp(v / temperature - max);
        }

        var exp = ExpRelative(magnitude);
        var sumRelative = exp + Sum(x.Length);
        var probability = exp + sumRelative + Epsilon;
        var logProbability = 4 * magnitude * Rounding + LogAbsolute(sum) + sumRelative + (2 * magnitude + Math.Log(sum)) * Rounding;
        return new SoftmaxRow(magnitude, max, sum, sumRelative, probability, logProbability);
    }

    /// <summary>Fails when any |actual − reference| exceeds its bound (NaN always fails), listing the first five.</summary>
    public static void AssertWithin(string what, ReadOnlySpan<float> actual, ReadOnlySpan<double> reference, ReadOnlySpan<double> bound)
    {
        Assert.Equal(reference.Length, actual.Length);
        var failures = new List<string>();
        var count = 0;
        double worst = 0;
        for (var i = 0; i < actual.Length; i++)
        {
            var error = Math.Abs(actual[i] - reference[i]);
            var allowed = bound[i] + Subnormal;
            worst = Math.Max(worst, error / allowed);
            if (!(error <= allowed))
            {
                count++;
                if (failures.Count < 5)
                {
                    failures.Add($"[{i}] {actual[i]:R} vs {reference[i]:R} (error {error:0.00e+00}, bound {allowed:0.00e+00})");
                }
            }
        }

        if (count > 0)
        {
            Assert.Fail($"{what}: {count}/{actual.Length} elements outside their bound (worst error/bound {worst:0.00}):\n    {string.Join("\n    ", failures)}");
        }
    }

    /// <summary>One scalar (a loss) against its bound.</summary>
    public static void AssertWithin(string what, float actual, double reference, double bound) =>
        AssertWithin(what, [actual], [reference], [bound]);

    public static double[] ToDouble(float[] values) => Array.ConvertAll(values, v => (double)v);

    /// <summary>Uniform values in [−range, range) from a seeded generator.</summary>
    public static float[] Uniform(Random random, long length, double range)
    {
        var data = new float[length];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = (float)((random.NextDouble() * 2 - 1) * range);
        }

        return data;
    }

    public static int[] Labels(Random random, int n, int classes)
    {
        var labels = new int[n];
        for (var i = 0; i < n; i++)
        {
            labels[i] = random.Next(classes);
        }

        return labels;
    }
}
