using System.Runtime.InteropServices;
using CheapConv.Problems;
using Xunit;

namespace CheapConv.Tests.Problems;

public class ConvProblemTests
{
    [Fact]
    public void Layout_MatchesTheNativeStruct()
    {
        // cc_conv_problem in native/include/cheapconv/problem.h: 16 ints.
        Assert.Equal(ConvProblem.NativeSize, Marshal.SizeOf<ConvProblem>());
        Assert.Equal(ConvProblem.NativeSize, System.Runtime.CompilerServices.Unsafe.SizeOf<ConvProblem>());
        var header = File.ReadAllText(TestPaths.Native("include", "cheapconv", "problem.h"));
        Assert.Contains("int n, c, h, w;", header);
        Assert.Contains("int k, r, s;", header);
        Assert.Contains("int pad_h, pad_w;", header);
        Assert.Contains("int stride_h, stride_w;", header);
        Assert.Contains("int p, q;", header);
    }

    [Theory]
    [InlineData(32, 3, 1, 32)]
    [InlineData(32, 3, 2, 16)]
    [InlineData(7, 3, 2, 4)]
    [InlineData(8, 1, 2, 4)]
    public void Create_DerivesOutputSize(int size, int kernel, int stride, int expected)
    {
        var problem = ConvProblem.Create(2, 4, size, size, 4, kernel, kernel, stride, kernel / 2, 1);
        Assert.Equal(expected, problem.P);
        Assert.Equal(expected, problem.Q);
    }

    [Theory]
    [InlineData(2, 6, 8, 8, 6, 3, 3, 1, 1, 4, "must divide the input channels")]
    [InlineData(2, 8, 8, 8, 6, 3, 3, 1, 1, 4, "must divide the output channels")]
    [InlineData(2, 4, 2, 2, 4, 5, 5, 1, 1, 1, "larger than the padded")]
    [InlineData(0, 4, 8, 8, 4, 3, 3, 1, 1, 1, "N must be positive")]
    [InlineData(2, 4, 8, 8, 4, 3, 3, 0, 1, 1, "stride must be positive")]
    [InlineData(2, 4, 8, 8, 4, 3, 3, 1, -1, 1, "padding must not be negative")]
    [InlineData(2, 4, 8, 8, 4, 3, 3, 1, 1, 0, "groups must be positive")]
    public void Create_RejectsImpossibleProblems(int n, int c, int h, int w, int k, int r, int s, int stride, int pad, int groups, string message)
    {
        var error = Assert.Throws<InvalidProblemException>(() => ConvProblem.Create(n, c, h, w, k, r, s, stride, pad, groups));
        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void Catalogue_HoldsTheRealAndRigorousShapes()
    {
        Assert.Equal(45, TestCatalogue.Real.Count);
        Assert.Contains(TestCatalogue.Real, e => e.Problem.Groups == e.Problem.C && e.Problem.R == 3);
        Assert.Contains(TestCatalogue.Rigorous, e => e.Problem.N == 1);
        Assert.Contains(TestCatalogue.Rigorous, e => e.Problem.H != e.Problem.W);
        Assert.Contains(TestCatalogue.Rigorous, e => e.Problem.H % 2 == 1 && e.Problem.StrideH == 2);
        Assert.Contains(TestCatalogue.Rigorous, e => e.Problem.C % 4 != 0);
        foreach (var groups in new[] { 1, 2, 3 })
        {
            Assert.Contains(TestCatalogue.Rigorous, e => e.Problem.Groups == groups);
        }
    }

    [Fact]
    public void Catalogue_RejectsMalformedLines()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cheapconv-bad-{Guid.NewGuid():N}.txt");
        try
        {
            File.WriteAllText(path, "# comment\n2 4 8 8 4 3 3 1 1 | too few\n");
            Assert.Contains(":2: expected 10 numbers", Assert.Throws<FormatException>(() => ShapeCatalogue.Load(path)).Message);
            File.WriteAllText(path, "2 6 8 8 6 3 3 1 1 4 | bad groups\n");
            Assert.Contains("must divide", Assert.Throws<FormatException>(() => ShapeCatalogue.Load(path)).Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
