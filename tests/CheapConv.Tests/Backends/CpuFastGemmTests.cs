using CheapConv.Backends;
using CheapConv.Backends.Cpu;
using CheapConv.Verification;
using Xunit;

namespace CheapConv.Tests.Backends;

/// <summary>
/// The packed SGEMM of the fast CPU paths against a float64 product of the same float inputs, on sizes that are
/// 1, below, at and across the micro-tile and block edges (m, n, k ∈ {1, 7, 33, 64, 65, 130, 1000}), in all four
/// transpose combinations, overwriting and accumulating. Bound per element: ε·(4 + 2√k) of Σ|a·b| (ConvCheck's
/// rule for a sum of k products; cutting the sum into blocks of at most 256 only shortens its chains), with k + 1 terms and |C₀| in the
/// sum of magnitudes when accumulating. Serial and parallel runs must agree bit for bit.
/// </summary>
public class CpuFastGemmTests
{
    private static readonly int[] Sizes = [1, 7, 33, 64, 65, 130, 1000];

    public static TheoryData<int, int, int> Shapes()
    {
        var data = new TheoryData<int, int, int>();
        foreach (var size in Sizes)
        {
            data.Add(size, 65, 33);
            data.Add(33, size, 65);
            data.Add(65, 33, size);
        }

        data.Add(130, 1000, 64);
        data.Add(64, 130, 1000);
        data.Add(1000, 7, 130);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public unsafe void Multiply_AllTransposes_MatchFloat64WithinBound(int m, int n, int k)
    {
        var random = new Random(m * 1_000_003 + n * 1009 + k);
        var a = RandomArray(random, m * k);
        var b = RandomArray(random, k * n);
        var c0 = RandomArray(random, m * n);
        foreach (var transposeA in new[] { false, true })
        {
            foreach (var transposeB in new[] { false, true })
            {
                int lda = transposeA ? m : k, ldb = transposeB ? k : n;
                double A(int i, int p) => a[transposeA ? p * lda + i : i * lda + p];
                double B(int p, int j) => b[transposeB ? j * ldb + p : p * ldb + j];
                foreach (var accumulate in new[] { false, true })
                {
                    var serial = (float[])c0.Clone();
                    var parallel = (float[])c0.Clone();
                    CpuGemm.Multiply(transposeA, transposeB, m, n, k, a, 0, lda, b, 0, ldb, serial, 0, n, accumulate, parallel: null);
                    CpuGemm.Multiply(transposeA, transposeB, m, n, k, a, 0, lda, b, 0, ldb, parallel, 0, n, accumulate, parallel: new ParallelOptions());
                    Assert.Equal(serial, parallel);

                    var bound = ConvCheck.RelativeTolerance(k);
                    for (var i = 0; i < m; i++)
                    {
                        for (var j = 0; j < n; j++)
                        {
                            double exact = accumulate ? c0[i * n + j] : 0, scale = 0;
                            for (var p = 0; p < k; p++)
                            {
                                exact += A(i, p) * B(p, j);
                                scale += Math.Abs(A(i, p) * B(p, j));
                            }

                            // Accumulating adds one more term, the old value: k + 1 terms.
                            var allowed = ConvCheck.AbsoluteTolerance + (accumulate ? ConvCheck.RelativeTolerance(k + 1) * (scale + Math.Abs(c0[i * n + j])) : bound * scale);
                            var actual = serial[i * n + j];
                            if (!(Math.Abs(actual - exact) <= allowed))
                            {
                                Assert.Fail($"m={m} n={n} k={k} transA={transposeA} transB={transposeB} accumulate={accumulate}: C[{i},{j}] = {actual:R}, exact {exact:R}, allowed ±{allowed:0.00e+00}");
                            }
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void Multiply_StridedOperands_LeaveOtherElementsAlone()
    {
        // A 5×4 window of a 9-wide C with lda/ldb larger than the logical sizes: elements outside the window stay put.
        var random = new Random(3);
        var a = RandomArray(random, 5 * 11);
        var b = RandomArray(random, 3 * 8);
        var c = RandomArray(random, 7 * 9);
        var before = (float[])c.Clone();
        CpuGemm.Multiply(false, false, 5, 4, 3, a, 2, 11, b, 1, 8, c, 10, 9, accumulate: false, parallel: null);
        for (var index = 0; index < c.Length; index++)
        {
            int row = (index - 10) / 9, column = (index - 10) % 9;
            var inside = index >= 10 && row < 5 && column < 4;
            if (!inside)
            {
                Assert.Equal(before[index], c[index]);
                continue;
            }

            double exact = 0;
            for (var p = 0; p < 3; p++)
            {
                exact += (double)a[2 + row * 11 + p] * b[1 + p * 8 + column];
            }

            Assert.InRange(c[index], exact - 1e-5, exact + 1e-5);
        }
    }

    [Theory]
    [MemberData(nameof(GemmCasesLinear))]
    public void Linear_AllPasses_MatchFloat64Reference(int n, int inFeatures, int outFeatures)
    {
        var random = new Random(17);
        var x = RandomArray(random, n * inFeatures);
        var w = RandomArray(random, outFeatures * inFeatures);
        var bias = RandomArray(random, outFeatures);
        var dy = RandomArray(random, n * outFeatures);
        IBackend cpu = new CpuBackend();
        using var sx = cpu.Upload(x);
        using var sw = cpu.Upload(w);
        using var sb = cpu.Upload(bias);
        using var sdy = cpu.Upload(dy);
        using var y = cpu.Allocate(n * outFeatures);
        using var dx = cpu.Allocate(n * inFeatures);
        using var dw = cpu.Allocate(outFeatures * inFeatures);
        cpu.LinearForward(n, inFeatures, outFeatures, sx, sw, sb, y);
        cpu.LinearBackwardData(n, inFeatures, outFeatures, sdy, sw, dx);
        cpu.LinearBackwardWeight(n, inFeatures, outFeatures, sx, sdy, dw);

        double[] dxd = Array.ConvertAll(x, v => (double)v), wd = Array.ConvertAll(w, v => (double)v), bd = Array.ConvertAll(bias, v => (double)v),
            dyd = Array.ConvertAll(dy, v => (double)v);
        double[] AbsOf(double[] v) => Array.ConvertAll(v, Math.Abs);
        var expected = new double[n * outFeatures];
        var scale = new double[n * outFeatures];
        CpuBackend.LinearForward(n, inFeatures, outFeatures, dxd, wd, bd, expected);
        CpuBackend.LinearForward(n, inFeatures, outFeatures, AbsOf(dxd), AbsOf(wd), AbsOf(bd), scale);
        AssertPass(ConvCheck.ComparePass("linear forward", Download(cpu, y), expected, scale, ConvCheck.RelativeTolerance(inFeatures + 1)));

        expected = new double[n * inFeatures];
        scale = new double[n * inFeatures];
        CpuBackend.LinearBackwardData(n, inFeatures, outFeatures, dyd, wd, expected);
        CpuBackend.LinearBackwardData(n, inFeatures, outFeatures, AbsOf(dyd), AbsOf(wd), scale);
        AssertPass(ConvCheck.ComparePass("linear backward-data", Download(cpu, dx), expected, scale, ConvCheck.RelativeTolerance(outFeatures)));

        expected = new double[outFeatures * inFeatures];
        scale = new double[outFeatures * inFeatures];
        CpuBackend.LinearBackwardWeight(n, inFeatures, outFeatures, dxd, dyd, expected);
        CpuBackend.LinearBackwardWeight(n, inFeatures, outFeatures, AbsOf(dxd), AbsOf(dyd), scale);
        AssertPass(ConvCheck.ComparePass("linear backward-weight", Download(cpu, dw), expected, scale, ConvCheck.RelativeTolerance(n)));
    }

    public static TheoryData<int, int, int> GemmCasesLinear() => Kernels.GemmCases.Linear();

    private static float[] Download(IBackend cpu, Storage storage)
    {
        var values = new float[storage.Length];
        cpu.Download(storage, values);
        return values;
    }

    private static void AssertPass(PassComparison pass) =>
        Assert.True(pass.Passed, $"{pass.Pass}: {pass.Failures} failures\n{string.Join("\n", pass.FirstFailures)}");

    internal static float[] RandomArray(Random random, int length)
    {
        var values = new float[length];
        for (var i = 0; i < length; i++)
        {
            values[i] = (float)(random.NextDouble() * 2 - 1);
        }

        return values;
    }
}
