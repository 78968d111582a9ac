using System.Globalization;
using CheapConv.Backends;
using CheapConv.Problems;
using Xunit;

namespace CheapConv.Tests.Kernels;

/// <summary>
/// The shapes the GEMM family is checked on: every pointwise problem of the shape catalogue (the WRN problems at
/// <see cref="TestCatalogue.EmulatorBatch"/>, stride-2 shortcuts included) plus odd ones, and linear layers.
/// Pointwise cases are "N C H W K strideH strideW" strings so xunit names each one.
/// </summary>
public static class GemmCases
{
    /// <summary>Odd pointwise shapes: C and K not multiples of 4, H ≠ W, stride 2 and 3 on odd sizes, batch 1, M and N crossing a 64-wide tile, unequal strides.</summary>
    private static readonly string[] OddPointwise =
    [
        "1 7 3 5 5 1 1",
        "2 7 3 5 5 2 2",
        "1 5 9 7 3 2 2",
        "2 3 7 7 7 3 3",
        "1 1 1 1 1 1 1",
        "1 1 1 1 1 2 2",
        "2 66 9 11 70 2 2",
        "3 17 5 8 65 1 1",
        "2 6 7 9 4 2 1",
        "1 130 4 4 3 1 1",
    ];

    public static TheoryData<string> Pointwise()
    {
        var data = new TheoryData<string>();
        foreach (var name in PointwiseNames())
        {
            data.Add(name);
        }

        return data;
    }

    public static IEnumerable<string> PointwiseNames() =>
        TestCatalogue.Real.Select(e => e.Problem.WithBatch(TestCatalogue.EmulatorBatch))
            .Concat(TestCatalogue.Rigorous.Select(e => e.Problem))
            .Where(GpuBackend.IsPointwise)
            .Select(Name)
            .Concat(OddPointwise);

    public static ConvProblem Problem(string name)
    {
        var v = name.Split(' ').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        return ConvProblem.Create(v[0], v[1], v[2], v[3], v[4], 1, 1, v[5], v[6], 0, 0, 1);
    }

    /// <summary>(n, in, out) of linear layers: the WRN heads (CIFAR-10 and 100 classes), degenerate and odd sizes, tile edges.</summary>
    public static TheoryData<int, int, int> Linear() => new()
    {
        { 2, 128, 10 },
        { 1, 3, 1 },
        { 5, 33, 17 },
        { 128, 64, 100 },
        { 128, 128, 10 },
        { 3, 1, 2 },
        { 65, 70, 64 },
        { 7, 200, 129 },
    };

    private static string Name(ConvProblem p) =>
        string.Create(CultureInfo.InvariantCulture, $"{p.N} {p.C} {p.H} {p.W} {p.K} {p.StrideH} {p.StrideW}");
}
