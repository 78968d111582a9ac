using System.Globalization;
using CheapConv.Problems;
using CheapConv.Verification;
using Xunit;

namespace CheapConv.Tests.Kernels;

/// <summary>An N×C×H×W activation shape, written "NxCxHxW" in theory data so xunit shows it.</summary>
public readonly record struct NormShape(int N, int C, int H, int W)
{
    public int Elements => N * C * H * W;

    /// <summary>Values per channel that batch norm reduces over.</summary>
    public int PerChannel => N * H * W;

    public int Planes => N * C;

    public static NormShape Parse(string text)
    {
        var parts = text.Split('x').Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        return new NormShape(parts[0], parts[1], parts[2], parts[3]);
    }

    public override string ToString() => $"{N}x{C}x{H}x{W}";
}

/// <summary>The shapes and data the Norm-family tests share.</summary>
public static class NormTestData
{
    /// <summary>
    /// The activations batch norm sees in the catalogue networks: every distinct conv output (K×P×Q) of the
    /// real WRN-40-2 / Moonshine problems at the emulator batch, then odd shapes: batch 1, C = 3, H ≠ W,
    /// H·W = 1, N·H·W = 2 (the fewest values training batch norm accepts), per-channel counts that are not a
    /// multiple of the 256-thread block, and C above 128.
    /// </summary>
    public static IReadOnlyList<NormShape> TrainingShapes { get; } =
    [
        .. TestCatalogue.Real
            .Select(e => e.Problem.WithBatch(TestCatalogue.EmulatorBatch))
            .Select(p => new NormShape(p.N, p.K, p.P, p.Q))
            .Distinct()
            .OrderBy(s => s.Elements).ThenBy(s => s.C),
        new(1, 3, 5, 7),
        new(2, 5, 1, 1),
        new(1, 4, 2, 1),
        new(3, 33, 17, 19),
        new(1, 7, 1, 300),
        new(2, 130, 3, 3),
    ];

    /// <summary>Shapes valid only in eval mode (and for pooling): one value per channel.</summary>
    public static IReadOnlyList<NormShape> EvalOnlyShapes { get; } = [new(1, 5, 1, 1)];

    public static TheoryData<string> Training() => ToTheory(TrainingShapes);

    public static TheoryData<string> All() => ToTheory(TrainingShapes.Concat(EvalOnlyShapes));

    /// <summary>Flat lengths around the 256-thread block and the 256-block grid of Sum, and one far above.</summary>
    public static TheoryData<int> Lengths() => [0, 1, 255, 256, 257, 65537, 100003];

    /// <summary>Uniform values in [low, high) from a seeded generator.</summary>
    public static float[] Uniform(Random random, int length, double low = -1, double high = 1)
    {
        var data = new float[length];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = (float)(low + (random.NextDouble() * (high - low)));
        }

        return data;
    }

    /// <summary>Uniform magnitudes in [0.5, 1.5) with random signs: a γ that exercises negative scales.</summary>
    public static float[] SignedScales(Random random, int length)
    {
        var data = Uniform(random, length, 0.5, 1.5);
        for (var i = 0; i < data.Length; i++)
        {
            if (random.Next(2) == 0)
            {
                data[i] = -data[i];
            }
        }

        return data;
    }

    public static double[] ToDouble(float[] values) => Array.ConvertAll(values, v => (double)v);

    private static TheoryData<string> ToTheory(IEnumerable<NormShape> shapes)
    {
        var data = new TheoryData<string>();
        foreach (var shape in shapes)
        {
            data.Add(shape.ToString());
        }

        return data;
    }
}

/// <summary>Assertions that print the first mismatching elements.</summary>
public static class NormAssert
{
    /// <summary>
    /// |actual − reference| ≤ <see cref="ConvCheck.AbsoluteTolerance"/> + tolerance·scale for every element
    /// (NaN, e.g. an unwritten poisoned element, always fails).
    /// </summary>
    public static void Close(string what, float[] actual, double[] reference, double[] scale, double tolerance)
    {
        var result = ConvCheck.ComparePass(what, actual, reference, scale, tolerance);
        if (!result.Passed)
        {
            Assert.Fail($"{what}: max abs {result.MaxAbsError:0.00e+00}, max rel {result.MaxRelError:0.00e+00}, tolerance {tolerance:0.00e+00}, " +
                $"{result.Failures}/{result.Elements} failing" + string.Concat(result.FirstFailures.Select(f => "\n    " + f)));
        }
    }

    /// <summary>Bit-for-bit equality (for copies, masks and fills, where no rounding happens).</summary>
    public static void Identical(string what, float[] actual, float[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        var failures = Enumerable.Range(0, actual.Length)
            .Where(i => BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
            .ToList();
        if (failures.Count > 0)
        {
            Assert.Fail($"{what}: {failures.Count}/{actual.Length} elements differ" +
                string.Concat(failures.Take(5).Select(i => $"\n    [{i}] {actual[i]:R} vs {expected[i]:R}")));
        }
    }
}
