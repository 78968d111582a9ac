using CheapConv.Backends;
using CheapConv.Verification;
using Xunit;

namespace CheapConv.Tests.Backends;

/// <summary>
/// The vectorised batch norm, element-wise ops, attention transfer and SGD step behind <see cref="CpuBackend"/>'s
/// <see cref="IBackend"/> members. Ops that only reorder a channel sum (training batch norm) are checked against
/// the float64 reference with bounds derived from the sums; ops that compute every element with the reference's own
/// float operations in the reference's order (eval batch norm, ReLU, add, scale, axpy, attention transfer, SGD)
/// must equal the float reference bit for bit. Shapes include planes that are not a multiple of the vector width.
/// </summary>
public class CpuFastNormLossTests
{
    private const double Epsilon = 1.0 / (1 << 23);

    public static TheoryData<int, int, int, int> Shapes() => new()
    {
        { 2, 3, 5, 7 },
        { 4, 16, 8, 8 },
        { 3, 5, 1, 33 },
        { 8, 4, 16, 16 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void BatchNormTrain_PlainAndRelu_MatchFloat64WithinSumBounds(int n, int c, int h, int w)
    {
        foreach (var relu in new[] { false, true })
        {
            var random = new Random(n * 100 + c);
            int elements = n * c * h * w, m = n * h * w;
            // An offset of 3 makes the mean matter: a one-pass variance would lose digits here.
            var x = Array.ConvertAll(CpuFastGemmTests.RandomArray(random, elements), v => v + 3f);
            var gamma = CpuFastGemmTests.RandomArray(random, c);
            var beta = CpuFastGemmTests.RandomArray(random, c);
            var runningMean = CpuFastGemmTests.RandomArray(random, c);
            var runningVar = Array.ConvertAll(CpuFastGemmTests.RandomArray(random, c), v => v + 2f);
            const float momentum = 0.1f, eps = 1e-5f;

            IBackend cpu = new CpuBackend();
            using var sx = cpu.Upload(x);
            using var sg = cpu.Upload(gamma);
            using var sb = cpu.Upload(beta);
            using var srm = cpu.Upload(runningMean);
            using var srv = cpu.Upload(runningVar);
            using var sy = cpu.Allocate(elements);
            using var sMean = cpu.Allocate(c);
            using var sInv = cpu.Allocate(c);
            if (relu)
            {
                cpu.BatchNormReluTrainForward(n, c, h, w, sx, sg, sb, srm, srv, momentum, eps, sy, sMean, sInv);
            }
            else
            {
                cpu.BatchNormTrainForward(n, c, h, w, sx, sg, sb, srm, srv, momentum, eps, sy, sMean, sInv);
            }

            double[] D(float[] v) => Array.ConvertAll(v, f => (double)f);
            double[] y = new double[elements], mean = new double[c], invStd = new double[c], rm = D(runningMean), rv = D(runningVar);
            if (relu)
            {
                CpuBackend.BatchNormReluTrainForward(n, c, h, w, D(x), D(gamma), D(beta), rm, rv, momentum, eps, y, mean, invStd);
            }
            else
            {
                CpuBackend.BatchNormTrainForward(n, c, h, w, D(x), D(gamma), D(beta), rm, rv, momentum, eps, y, mean, invStd);
            }

            // Each channel sum has M terms: within ε_s = ε·(4+2√M) of Σ|terms|. The mean's error is ε_s·mean|x|; the variance
            // sums positive terms, so its relative error is ε_s (the mean's error enters only squared), and invStd's
            // relative error is at most ε_s plus a few roundings. y = γ·(x − mean)·invStd + β then carries γ·invStd·δmean
            // and |γ·x̂|·δinvStd/invStd, plus 4 roundings of its own on |γ·x̂| + |β|.
            var sumBound = ConvCheck.RelativeTolerance(m);
            var fastMean = Download(cpu, sMean);
            var fastInv = Download(cpu, sInv);
            var fastY = Download(cpu, sy);
            var fastRm = Download(cpu, srm);
            var fastRv = Download(cpu, srv);
            var hw = h * w;
            for (var ch = 0; ch < c; ch++)
            {
                double meanAbs = 0;
                for (var s = 0; s < n; s++)
                {
                    for (var i = 0; i < hw; i++)
                    {
                        meanAbs += Math.Abs(x[(s * c + ch) * hw + i]) / m;
                    }
                }

                var meanAllowed = sumBound * meanAbs + 2 * Epsilon * Math.Abs(mean[ch]);
                var invAllowed = (sumBound + 4 * Epsilon) * invStd[ch];
                Within(fastMean[ch], mean[ch], meanAllowed, $"{relu} mean[{ch}]");
                Within(fastInv[ch], invStd[ch], invAllowed, $"{relu} invStd[{ch}]");
                Within(fastRm[ch], rm[ch], momentum * meanAllowed + 4 * Epsilon * Math.Abs(rm[ch]), $"{relu} runningMean[{ch}]");
                Within(fastRv[ch], rv[ch], (sumBound + 4 * Epsilon) * Math.Abs(rv[ch]), $"{relu} runningVar[{ch}]");
                for (var s = 0; s < n; s++)
                {
                    for (var i = 0; i < hw; i++)
                    {
                        var index = (s * c + ch) * hw + i;
                        var gxHat = Math.Abs(gamma[ch] * (x[index] - mean[ch]) * invStd[ch]);
                        var allowed = 1e-6 + Math.Abs(gamma[ch]) * invStd[ch] * meanAllowed + gxHat * (sumBound + 4 * Epsilon)
                            + 4 * Epsilon * (gxHat + Math.Abs(beta[ch]));
                        Within(fastY[index], y[index], allowed, $"{relu} y[{index}]");
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void BatchNormBackward_PlainAndRelu_MatchFloat64WithinSumBounds(int n, int c, int h, int w)
    {
        foreach (var relu in new[] { false, true })
        {
            var random = new Random(n * 100 + c + 1);
            int elements = n * c * h * w, m = n * h * w, hw = h * w;
            var x = CpuFastGemmTests.RandomArray(random, elements);
            var dy = CpuFastGemmTests.RandomArray(random, elements);
            var gamma = CpuFastGemmTests.RandomArray(random, c);
            var beta = CpuFastGemmTests.RandomArray(random, c);
            var mean = Array.ConvertAll(CpuFastGemmTests.RandomArray(random, c), v => v * 0.1f);
            var invStd = Array.ConvertAll(CpuFastGemmTests.RandomArray(random, c), v => 1.5f + v);

            IBackend cpu = new CpuBackend();
            using var sx = cpu.Upload(x);
            using var sdy = cpu.Upload(dy);
            using var sg = cpu.Upload(gamma);
            using var sb = cpu.Upload(beta);
            using var sm = cpu.Upload(mean);
            using var si = cpu.Upload(invStd);
            using var sdx = cpu.Allocate(elements);
            using var sdg = cpu.Allocate(c);
            using var sdb = cpu.Allocate(c);
            double[] D(float[] v) => Array.ConvertAll(v, f => (double)f);
            double[] dx = new double[elements], dgamma = new double[c], dbeta = new double[c];
            if (relu)
            {
                cpu.BatchNormReluBackward(n, c, h, w, sx, sdy, sg, sb, sm, si, sdx, sdg, sdb);
                CpuBackend.BatchNormReluBackward(n, c, h, w, D(x), D(dy), D(gamma), D(beta), D(mean), D(invStd), dx, dgamma, dbeta);
            }
            else
            {
                cpu.BatchNormBackward(n, c, h, w, sx, sdy, sg, sm, si, sdx, sdg, sdb);
                CpuBackend.BatchNormBackward(n, c, h, w, D(x), D(dy), D(gamma), D(mean), D(invStd), dx, dgamma, dbeta);
            }

            // dβ = Σg and dγ = Σg·x̂ are sums of M terms (x̂ adds two roundings); dx = f·(M·g − dβ − x̂·dγ) carries f·(δdβ + |x̂|·δdγ)
            // plus six roundings on f·(M|g| + |dβ| + |x̂·dγ|).
            var sumBound = ConvCheck.RelativeTolerance(m);
            var fastDx = Download(cpu, sdx);
            var fastDg = Download(cpu, sdg);
            var fastDb = Download(cpu, sdb);
            for (var ch = 0; ch < c; ch++)
            {
                double sumG = 0, sumGx = 0;
                double XHat(int index) => (x[index] - (double)mean[ch]) * invStd[ch];
                bool Active(int index) => !relu || gamma[ch] * XHat(index) + beta[ch] > 0;
                for (var s = 0; s < n; s++)
                {
                    for (var i = 0; i < hw; i++)
                    {
                        var index = (s * c + ch) * hw + i;
                        var g = Active(index) ? Math.Abs(dy[index]) : 0;
                        sumG += g;
                        sumGx += g * Math.Abs(XHat(index));
                    }
                }

                double dbAllowed = 1e-6 + sumBound * sumG, dgAllowed = 1e-6 + (sumBound + 2 * Epsilon) * sumGx;
                Within(fastDb[ch], dbeta[ch], dbAllowed, $"{relu} dbeta[{ch}]");
                Within(fastDg[ch], dgamma[ch], dgAllowed, $"{relu} dgamma[{ch}]");
                var factor = Math.Abs(gamma[ch] * (double)invStd[ch] / m);
                for (var s = 0; s < n; s++)
                {
                    for (var i = 0; i < hw; i++)
                    {
                        var index = (s * c + ch) * hw + i;
                        var xHat = Math.Abs(XHat(index));
                        var g = Active(index) ? Math.Abs(dy[index]) : 0;
                        var allowed = 1e-6 + factor * (dbAllowed + xHat * dgAllowed)
                            + 6 * Epsilon * factor * (m * g + Math.Abs(dbeta[ch]) + xHat * Math.Abs(dgamma[ch]));
                        Within(fastDx[index], dx[index], allowed, $"{relu} dx[{index}]");
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ElementwiseAndEvalNorm_EqualFloatReferenceBitForBit(int n, int c, int h, int w)
    {
        var random = new Random(n + c + h + w);
        var elements = n * c * h * w;
        var x = CpuFastGemmTests.RandomArray(random, elements);
        var other = CpuFastGemmTests.RandomArray(random, elements);
        x[0] = float.NaN;
        x[1] = -0f;
        var gamma = CpuFastGemmTests.RandomArray(random, c);
        var beta = CpuFastGemmTests.RandomArray(random, c);
        var runningMean = CpuFastGemmTests.RandomArray(random, c);
        var runningVar = Array.ConvertAll(CpuFastGemmTests.RandomArray(random, c), v => v + 1.5f);
        IBackend cpu = new CpuBackend();
        using var sx = cpu.Upload(x);
        using var so = cpu.Upload(other);
        using var sg = cpu.Upload(gamma);
        using var sb = cpu.Upload(beta);
        using var srm = cpu.Upload(runningMean);
        using var srv = cpu.Upload(runningVar);
        using var result = cpu.Allocate(elements);
        var expected = new float[elements];

        foreach (var relu in new[] { false, true })
        {
            if (relu)
            {
                cpu.BatchNormReluEvalForward(n, c, h, w, sx, sg, sb, srm, srv, 1e-5f, result);
                CpuBackend.BatchNormReluEvalForward(n, c, h, w, x, gamma, beta, runningMean, runningVar, 1e-5f, expected);
            }
            else
            {
                cpu.BatchNormEvalForward(n, c, h, w, sx, sg, sb, srm, srv, 1e-5f, result);
                CpuBackend.BatchNormEvalForward(n, c, h, w, x, gamma, beta, runningMean, runningVar, 1e-5f, expected);
            }

            AssertBits(expected, Download(cpu, result), $"eval batch norm relu={relu}");
        }

        cpu.ReluForward(elements, sx, result);
        CpuBackend.ReluForward(elements, x, expected);
        AssertBits(expected, Download(cpu, result), "relu");

        cpu.ReluBackward(elements, sx, so, result);
        CpuBackend.ReluBackward(elements, x, other, expected);
        AssertBits(expected, Download(cpu, result), "relu backward");

        cpu.Add(elements, sx, so, result);
        CpuBackend.Add(elements, x, other, expected);
        AssertBits(expected, Download(cpu, result), "add");

        using var scaled = cpu.Upload(other);
        cpu.Scale(scaled, 0.3f);
        expected = (float[])other.Clone();
        CpuBackend.Scale(expected, 0.3f);
        AssertBits(expected, Download(cpu, scaled), "scale");

        using var accumulated = cpu.Upload(other);
        cpu.Axpy(-1.7f, sx, accumulated);
        expected = (float[])other.Clone();
        CpuBackend.Axpy(-1.7f, x, expected);
        AssertBits(expected, Download(cpu, accumulated), "axpy");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void AttentionTransfer_ForwardAndBackward_EqualFloatReferenceBitForBit(int n, int c, int h, int w)
    {
        var random = new Random(31 * n + c);
        int elements = n * c * h * w, hw = h * w;
        var student = CpuFastGemmTests.RandomArray(random, elements);
        var teacher = CpuFastGemmTests.RandomArray(random, elements);
        Array.Clear(student, 0, c * hw); // sample 0 all zero: its norm is clamped
        IBackend cpu = new CpuBackend();
        using var ss = cpu.Upload(student);
        using var st = cpu.Upload(teacher);
        using var loss = cpu.Allocate(1);
        using var qs = cpu.Allocate(n * hw);
        using var qt = cpu.Allocate(n * hw);
        using var norm = cpu.Allocate(n);
        using var dloss = cpu.Upload([0.7f]);
        using var ds = cpu.Allocate(elements);
        cpu.AtForward(n, c, h, w, ss, st, loss, qs, qt, norm);
        cpu.AtBackward(n, c, h, w, ss, qs, qt, norm, dloss, ds);

        float[] eLoss = new float[1], eQs = new float[n * hw], eQt = new float[n * hw], eNorm = new float[n], eDs = new float[elements];
        CpuBackend.AtForward(n, c, h, w, student, teacher, eLoss, eQs, eQt, eNorm);
        CpuBackend.AtBackward(n, c, h, w, student, eQs, eQt, eNorm, [0.7f], eDs);
        AssertBits(eLoss, Download(cpu, loss), "AT loss");
        AssertBits(eQs, Download(cpu, qs), "AT student map");
        AssertBits(eQt, Download(cpu, qt), "AT teacher map");
        AssertBits(eNorm, Download(cpu, norm), "AT norm");
        AssertBits(eDs, Download(cpu, ds), "AT dstudent");
    }

    [Theory]
    [InlineData(0f, 0f, false)]
    [InlineData(0.9f, 5e-4f, false)]
    [InlineData(0.9f, 5e-4f, true)]
    public void SgdStep_EqualsFloatReferenceBitForBit(float momentum, float weightDecay, bool nesterov)
    {
        var random = new Random(5);
        const int Length = 100_003; // above the parallel threshold, not a multiple of the vector width
        var parameter = CpuFastGemmTests.RandomArray(random, Length);
        var gradient = CpuFastGemmTests.RandomArray(random, Length);
        IBackend cpu = new CpuBackend();
        using var sp = cpu.Upload(parameter);
        using var sgrad = cpu.Upload(gradient);
        using var buffer = cpu.Allocate(Length);
        cpu.Fill(buffer, 0f);
        var expectedBuffer = new float[Length];
        for (var step = 0; step < 2; step++)
        {
            cpu.SgdStep(Length, sp, sgrad, buffer, 0.1f, momentum, weightDecay, nesterov);
            CpuBackend.SgdStep(parameter, gradient, expectedBuffer, 0.1f, momentum, weightDecay, nesterov);
        }

        AssertBits(parameter, Download(cpu, sp), "parameter");
        AssertBits(expectedBuffer, Download(cpu, buffer), "momentum buffer");
    }

    private static void Within(float actual, double expected, double allowed, string what)
    {
        if (!(Math.Abs(actual - expected) <= allowed))
        {
            Assert.Fail($"{what}: {actual:R} vs float64 {expected:R}, allowed ±{allowed:0.00e+00}");
        }
    }

    private static void AssertBits(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
            {
                Assert.Fail($"{what}[{i}]: {actual[i]:R} where the float reference gives {expected[i]:R}");
            }
        }
    }

    private static float[] Download(IBackend cpu, Storage storage)
    {
        var values = new float[storage.Length];
        cpu.Download(storage, values);
        return values;
    }
}
