using CheapConv.Autograd;
using CheapConv.Backends;
using Xunit;

namespace CheapConv.Tests.Autograd;

/// <summary>Comparisons that print the first mismatching elements and the largest errors.</summary>
public static class TensorAssert
{
    /// <summary>Bit-for-bit equality (the same backend op run by two routes).</summary>
    public static void Identical(float[] expected, float[] actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} elements, expected {expected.Length}");
        var mismatches = Enumerable.Range(0, expected.Length).Where(i => BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i])).ToList();
        Assert.True(mismatches.Count == 0,
            $"{what}: {mismatches.Count}/{expected.Length} elements differ; first: " +
            string.Join(", ", mismatches.Take(5).Select(i => $"[{i}] expected {expected[i]:R} got {actual[i]:R}")));
    }

    /// <summary>|actual − expected| ≤ tolerance·max|expected| element-wise (the tolerance is relative to the tensor's scale).</summary>
    public static void Close(float[] expected, float[] actual, double tolerance, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} elements, expected {expected.Length}");
        var scale = Math.Max(expected.Max(v => Math.Abs((double)v)), 1e-30);
        var limit = tolerance * scale;
        var errors = expected.Select((e, i) => Math.Abs((double)actual[i] - e)).ToArray();
        var failing = Enumerable.Range(0, errors.Length).Where(i => !(errors[i] <= limit)).ToList();
        Assert.True(failing.Count == 0,
            $"{what}: {failing.Count}/{expected.Length} elements beyond {limit:0.00e+00} (= {tolerance:0.00e+00} × max|ref| {scale:0.00e+00}); " +
            $"max abs error {errors.Max():0.00e+00}; first: " +
            string.Join(", ", failing.Take(5).Select(i => $"[{i}] expected {expected[i]:R} got {actual[i]:R}")));
    }

    /// <summary>Random values in [−1, 1) from a seed.</summary>
    public static float[] Random(long count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, (int)count).Select(_ => 2 * random.NextSingle() - 1).ToArray();
    }

    /// <summary>A storage's contents on the host.</summary>
    public static float[] Read(IBackend backend, Storage storage)
    {
        var data = new float[storage.Length];
        backend.Download(storage, data);
        return data;
    }
}
