using CheapConv.Backends;
using CheapConv.Verification;
using Xunit;

namespace CheapConv.Tests.Kernels;

/// <summary>
/// The Norm-family kernels run through <see cref="GpuBackend"/> (on the emulator or a real GPU) against the
/// reference in float64. Every output is poisoned with NaN before the run, so an element a kernel forgot to
/// write fails. Each bound is |kernel − reference| ≤ atol + rtol·scale with a per-element scale that sums the
/// magnitudes the rounding errors are proportional to, and rtol = <see cref="ConvCheck.RelativeTolerance"/> of
/// the number of terms summed (ε·(4 + 2√n), ε = 2^-23), as for the convolutions; each scale says its derivation.
/// </summary>
public static class NormDeviceChecks
{
    public const float Momentum = 0.1f;
    public const float Eps = 1e-5f;

    /// <summary>Training forward (plain or fused with ReLU): y, the saved statistics and the running statistics.</summary>
    public static void BatchNormTrainForward(GpuBackend gpu, NormShape s, bool relu, double offset = 0, int seed = 1)
    {
        var random = new Random(seed);
        var x = NormTestData.Uniform(random, s.Elements, offset - 1, offset + 1);
        var gamma = NormTestData.SignedScales(random, s.C);
        var beta = NormTestData.Uniform(random, s.C);
        var runningMean = NormTestData.Uniform(random, s.C);
        var runningVar = NormTestData.Uniform(random, s.C, 0.5, 1.5);

        IBackend backend = gpu;
        using var xs = backend.Upload(x);
        using var gammas = backend.Upload(gamma);
        using var betas = backend.Upload(beta);
        using var runningMeans = backend.Upload(runningMean);
        using var runningVars = backend.Upload(runningVar);
        using var ys = Poisoned(backend, s.Elements);
        using var saveMeans = Poisoned(backend, s.C);
        using var saveInvStds = Poisoned(backend, s.C);
        if (relu)
        {
            backend.BatchNormReluTrainForward(s.N, s.C, s.H, s.W, xs, gammas, betas, runningMeans, runningVars, Momentum, Eps, ys, saveMeans, saveInvStds);
        }
        else
        {
            backend.BatchNormTrainForward(s.N, s.C, s.H, s.W, xs, gammas, betas, runningMeans, runningVars, Momentum, Eps, ys, saveMeans, saveInvStds);
        }

        double[] refY = new double[s.Elements], refMean = new double[s.C], refInvStd = new double[s.C];
        double[] refRunningMean = NormTestData.ToDouble(runningMean), refRunningVar = NormTestData.ToDouble(runningVar);
        double[] xd = NormTestData.ToDouble(x), gammaD = NormTestData.ToDouble(gamma), betaD = NormTestData.ToDouble(beta);
        if (relu)
        {
            CpuBackend.BatchNormReluTrainForward(s.N, s.C, s.H, s.W, xd, gammaD, betaD, refRunningMean, refRunningVar, Momentum, Eps, refY, refMean, refInvStd);
        }
        else
        {
            CpuBackend.BatchNormTrainForward(s.N, s.C, s.H, s.W, xd, gammaD, betaD, refRunningMean, refRunningVar, Momentum, Eps, refY, refMean, refInvStd);
        }

        // The mean is a sum of M terms: error ≤ r·mean|x|. The variance sums M squares of deviations from the
        // computed mean; besides its own rounding (≤ r·var) it carries δmean², so its relative error is at most
        // r·k with k = 1 + r·mean|x|²/(var + eps), and invStd = (var + eps)^-1/2 inherits half of that plus two
        // roundings: ≤ r·k. (k ≈ 1 for centred data; it only matters for large means.)
        var m = s.PerChannel;
        var r = ConvCheck.RelativeTolerance(m);
        var meanAbs = PerChannel(s, xd, Math.Abs).Select(sum => sum / m).ToArray();
        var k = Enumerable.Range(0, s.C).Select(c => 1 + (r * meanAbs[c] * meanAbs[c] * refInvStd[c] * refInvStd[c])).ToArray();

        // y = γ·(x − mean)·invStd + β: the mean error moves it by |γ|·invStd·δmean, the invStd error by
        // |γ·(x − mean)|·invStd·r·k, and the subtraction, product and FMA round at most |γ·x̂| + |β| by ~3ε.
        var yScale = new double[s.Elements];
        ForEachElement(s, (index, c) =>
        {
            var deviation = Math.Abs(xd[index] - refMean[c]);
            yScale[index] = (Math.Abs(gammaD[c]) * refInvStd[c] * ((k[c] * deviation) + meanAbs[c] + deviation)) + Math.Abs(betaD[c]);
        });
        NormAssert.Close("y", Download(backend, ys), refY, yScale, r);
        NormAssert.Close("saveMean", Download(backend, saveMeans), refMean, meanAbs, r);
        NormAssert.Close("saveInvStd", Download(backend, saveInvStds), refInvStd, [.. refInvStd.Select((v, c) => v * k[c])], r);

        // running = (1 − m)·running + m·batch: the batch statistic's error scaled by momentum, plus three roundings.
        var unbiased = refInvStd.Select(v => ((1 / (v * v)) - Eps) * m / (m - 1)).ToArray();
        NormAssert.Close("runningMean", Download(backend, runningMeans), refRunningMean,
            [.. runningMean.Select((v, c) => ((1 - Momentum) * Math.Abs(v)) + (Momentum * meanAbs[c]))], r);
        NormAssert.Close("runningVar", Download(backend, runningVars), refRunningVar,
            [.. runningVar.Select((v, c) => ((1 - Momentum) * Math.Abs(v)) + (Momentum * unbiased[c] * k[c]))], r);
    }

    /// <summary>Eval forward (plain or fused with ReLU) with the running statistics.</summary>
    public static void BatchNormEvalForward(GpuBackend gpu, NormShape s, bool relu, int seed = 2)
    {
        var random = new Random(seed);
        var x = NormTestData.Uniform(random, s.Elements, -3, 3);
        var gamma = NormTestData.SignedScales(random, s.C);
        var beta = NormTestData.Uniform(random, s.C);
        var runningMean = NormTestData.Uniform(random, s.C);
        var runningVar = NormTestData.Uniform(random, s.C, 0.1, 2);

        IBackend backend = gpu;
        using var xs = backend.Upload(x);
        using var gammas = backend.Upload(gamma);
        using var betas = backend.Upload(beta);
        using var runningMeans = backend.Upload(runningMean);
        using var runningVars = backend.Upload(runningVar);
        using var ys = Poisoned(backend, s.Elements);
        if (relu)
        {
            backend.BatchNormReluEvalForward(s.N, s.C, s.H, s.W, xs, gammas, betas, runningMeans, runningVars, Eps, ys);
        }
        else
        {
            backend.BatchNormEvalForward(s.N, s.C, s.H, s.W, xs, gammas, betas, runningMeans, runningVars, Eps, ys);
        }

        var refY = new double[s.Elements];
        double[] xd = NormTestData.ToDouble(x), gammaD = NormTestData.ToDouble(gamma), betaD = NormTestData.ToDouble(beta);
        double[] meanD = NormTestData.ToDouble(runningMean), varD = NormTestData.ToDouble(runningVar);
        if (relu)
        {
            CpuBackend.BatchNormReluEvalForward(s.N, s.C, s.H, s.W, xd, gammaD, betaD, meanD, varD, Eps, refY);
        }
        else
        {
            CpuBackend.BatchNormEvalForward(s.N, s.C, s.H, s.W, xd, gammaD, betaD, meanD, varD, Eps, refY);
        }

        // Six roundings (var + eps, sqrt, 1/·, x − μ, ·invStd, FMA), each relative to a term of
        // |γ|·invStd·(|x| + |μ|) + |β|: rtol for 4 terms (8ε) covers them.
        var yScale = new double[s.Elements];
        ForEachElement(s, (index, c) =>
            yScale[index] = (Math.Abs(gammaD[c]) * (Math.Abs(xd[index]) + Math.Abs(meanD[c])) / Math.Sqrt(varD[c] + Eps)) + Math.Abs(betaD[c]));
        NormAssert.Close("y", Download(backend, ys), refY, yScale, ConvCheck.RelativeTolerance(4));
    }

    /// <summary>
    /// Training backward (plain or fused with ReLU). The saved statistics are inputs here, the same float values
    /// for the kernel and the reference, so the check isolates the backward arithmetic. For the fused pass dy is
    /// zero where the forward output lies within 1e-4 of the kink: there the float and float64 masks may
    /// legitimately disagree, and with dy = 0 either mask gives the same gradients.
    /// </summary>
    public static void BatchNormBackward(GpuBackend gpu, NormShape s, bool relu, int seed = 3)
    {
        var random = new Random(seed);
        var x = NormTestData.Uniform(random, s.Elements);
        var dy = NormTestData.Uniform(random, s.Elements);
        var gamma = NormTestData.SignedScales(random, s.C);
        var beta = NormTestData.Uniform(random, s.C, -0.5, 0.5);
        double[] xd = NormTestData.ToDouble(x), gammaD = NormTestData.ToDouble(gamma), betaD = NormTestData.ToDouble(beta);

        double[] statMean = new double[s.C], statInvStd = new double[s.C], preActivation = new double[s.Elements];
        CpuBackend.BatchNormTrainForward(s.N, s.C, s.H, s.W, xd, gammaD, betaD, new double[s.C], new double[s.C], Momentum, Eps,
            preActivation, statMean, statInvStd);
        var saveMean = Array.ConvertAll(statMean, v => (float)v);
        var saveInvStd = Array.ConvertAll(statInvStd, v => (float)v);
        if (relu)
        {
            for (var i = 0; i < dy.Length; i++)
            {
                if (Math.Abs(preActivation[i]) < 1e-4)
                {
                    dy[i] = 0;
                }
            }
        }

        IBackend backend = gpu;
        using var xs = backend.Upload(x);
        using var dys = backend.Upload(dy);
        using var gammas = backend.Upload(gamma);
        using var betas = backend.Upload(beta);
        using var means = backend.Upload(saveMean);
        using var invStds = backend.Upload(saveInvStd);
        using var dxs = Poisoned(backend, s.Elements);
        using var dgammas = Poisoned(backend, s.C);
        using var dbetas = Poisoned(backend, s.C);
        if (relu)
        {
            backend.BatchNormReluBackward(s.N, s.C, s.H, s.W, xs, dys, gammas, betas, means, invStds, dxs, dgammas, dbetas);
        }
        else
        {
            backend.BatchNormBackward(s.N, s.C, s.H, s.W, xs, dys, gammas, means, invStds, dxs, dgammas, dbetas);
        }

        double[] dyD = NormTestData.ToDouble(dy), meanD = NormTestData.ToDouble(saveMean), invStdD = NormTestData.ToDouble(saveInvStd);
        double[] refDx = new double[s.Elements], refDgamma = new double[s.C], refDbeta = new double[s.C];
        if (relu)
        {
            CpuBackend.BatchNormReluBackward(s.N, s.C, s.H, s.W, xd, dyD, gammaD, betaD, meanD, invStdD, refDx, refDgamma, refDbeta);
        }
        else
        {
            CpuBackend.BatchNormBackward(s.N, s.C, s.H, s.W, xd, dyD, gammaD, meanD, invStdD, refDx, refDgamma, refDbeta);
        }

        // The masked gradient g and x̂ as the reference sees them, for the scales.
        var g = new double[s.Elements];
        var xHat = new double[s.Elements];
        ForEachElement(s, (index, c) =>
        {
            xHat[index] = (xd[index] - meanD[c]) * invStdD[c];
            g[index] = relu && !((gammaD[c] * xHat[index]) + betaD[c] > 0) ? 0 : dyD[index];
        });

        // dβ sums M terms |g|, dγ sums M terms |g·x̂| (x̂ itself is off by ~2ε, inside rtol's 4ε). dx combines
        // M·g, dβ and x̂·dγ, so it inherits their errors: scale |γ|·invStd/M·(M|g| + Σ|g| + |x̂|·Σ|g·x̂|).
        var m = s.PerChannel;
        var r = ConvCheck.RelativeTolerance(m);
        var sumAbsG = PerChannel(s, g, Math.Abs);
        var sumAbsGXHat = new double[s.C];
        ForEachElement(s, (index, c) => sumAbsGXHat[c] += Math.Abs(g[index] * xHat[index]));
        var dxScale = new double[s.Elements];
        ForEachElement(s, (index, c) => dxScale[index] = Math.Abs(gammaD[c]) * invStdD[c] / m *
            ((m * Math.Abs(g[index])) + sumAbsG[c] + (Math.Abs(xHat[index]) * sumAbsGXHat[c])));
        NormAssert.Close("dbeta", Download(backend, dbetas), refDbeta, sumAbsG, r);
        NormAssert.Close("dgamma", Download(backend, dgammas), refDgamma, sumAbsGXHat, r);
        NormAssert.Close("dx", Download(backend, dxs), refDx, dxScale, r);
    }

    /// <summary>Global average pooling forward and backward.</summary>
    public static void GlobalAvgPool(GpuBackend gpu, NormShape s, int seed = 4)
    {
        var random = new Random(seed);
        var x = NormTestData.Uniform(random, s.Elements);
        var dy = NormTestData.Uniform(random, s.Planes);
        IBackend backend = gpu;
        using var xs = backend.Upload(x);
        using var dys = backend.Upload(dy);
        using var ys = Poisoned(backend, s.Planes);
        using var dxs = Poisoned(backend, s.Elements);
        backend.GlobalAvgPoolForward(s.N, s.C, s.H, s.W, xs, ys);
        backend.GlobalAvgPoolBackward(s.N, s.C, s.H, s.W, dys, dxs);

        double[] xd = NormTestData.ToDouble(x), dyD = NormTestData.ToDouble(dy);
        double[] refY = new double[s.Planes], refDx = new double[s.Elements];
        CpuBackend.GlobalAvgPoolForward(s.N, s.C, s.H, s.W, xd, refY);
        CpuBackend.GlobalAvgPoolBackward(s.N, s.C, s.H, s.W, dyD, refDx);
        int hw = s.H * s.W;
        // Forward: a sum of H·W terms and one division; backward: one division.
        var yScale = Enumerable.Range(0, s.Planes).Select(p => xd.Skip(p * hw).Take(hw).Sum(Math.Abs) / hw).ToArray();
        NormAssert.Close("y", Download(backend, ys), refY, yScale, ConvCheck.RelativeTolerance(hw));
        NormAssert.Close("dx", Download(backend, dxs), refDx, [.. refDx.Select(Math.Abs)], ConvCheck.RelativeTolerance(1));
    }

    /// <summary>Zero padding forward and backward: pure copies, so bit-for-bit equal to the float reference.</summary>
    public static void ZeroPad(GpuBackend gpu, NormShape s, int top, int bottom, int left, int right, int seed = 5)
    {
        var random = new Random(seed);
        var padded = s.Planes * (s.H + top + bottom) * (s.W + left + right);
        var x = NormTestData.Uniform(random, s.Elements);
        var dy = NormTestData.Uniform(random, padded);
        IBackend backend = gpu;
        using var xs = backend.Upload(x);
        using var dys = backend.Upload(dy);
        using var ys = Poisoned(backend, padded);
        using var dxs = Poisoned(backend, s.Elements);
        backend.ZeroPadForward(s.N, s.C, s.H, s.W, top, bottom, left, right, xs, ys);
        backend.ZeroPadBackward(s.N, s.C, s.H, s.W, top, bottom, left, right, dys, dxs);

        float[] refY = new float[padded], refDx = new float[s.Elements];
        CpuBackend.ZeroPadForward(s.N, s.C, s.H, s.W, top, bottom, left, right, x, refY);
        CpuBackend.ZeroPadBackward(s.N, s.C, s.H, s.W, top, bottom, left, right, dy, refDx);
        NormAssert.Identical("y", Download(backend, ys), refY);
        NormAssert.Identical("dx", Download(backend, dxs), refDx);
    }

    /// <summary>
    /// ReLU forward (out of place and in place), ReLU backward and the residual add (out of place and into a):
    /// the masks and copies are exact, the add rounds once.
    /// </summary>
    public static void ReluAndAdd(GpuBackend gpu, int length, int seed = 6)
    {
        var random = new Random(seed);
        var a = NormTestData.Uniform(random, length);
        var b = NormTestData.Uniform(random, length);
        var dy = NormTestData.Uniform(random, length);
        IBackend backend = gpu;

        float[] refRelu = new float[length], refReluBackward = new float[length];
        CpuBackend.ReluForward(length, a, refRelu);
        CpuBackend.ReluBackward(length, refRelu, dy, refReluBackward);

        using var xs = backend.Upload(a);
        using var ys = Poisoned(backend, length);
        backend.ReluForward(length, xs, ys);
        NormAssert.Identical("relu", Download(backend, ys), refRelu);
        backend.ReluForward(length, xs, xs);
        NormAssert.Identical("relu in place", Download(backend, xs), refRelu);

        using var dys = backend.Upload(dy);
        using var dxs = Poisoned(backend, length);
        backend.ReluBackward(length, ys, dys, dxs);
        NormAssert.Identical("relu backward", Download(backend, dxs), refReluBackward);

        double[] ad = NormTestData.ToDouble(a), bd = NormTestData.ToDouble(b);
        var refSum = ad.Zip(bd, (u, v) => u + v).ToArray();
        var sumScale = ad.Zip(bd, (u, v) => Math.Abs(u) + Math.Abs(v)).ToArray();
        using var aStorage = backend.Upload(a);
        using var bStorage = backend.Upload(b);
        using var sums = Poisoned(backend, length);
        backend.Add(length, aStorage, bStorage, sums);
        NormAssert.Close("add", Download(backend, sums), refSum, sumScale, ConvCheck.RelativeTolerance(1));
        backend.Add(length, aStorage, bStorage, aStorage);
        NormAssert.Close("add into a", Download(backend, aStorage), refSum, sumScale, ConvCheck.RelativeTolerance(1));
    }

    /// <summary>Fill (exact), Scale (one rounding) and Axpy (one FMA rounding).</summary>
    public static void FillScaleAxpy(GpuBackend gpu, int length, int seed = 7)
    {
        var random = new Random(seed);
        var x = NormTestData.Uniform(random, length);
        var y = NormTestData.Uniform(random, length);
        const float alpha = -0.37f;
        IBackend backend = gpu;

        using var filled = Poisoned(backend, length);
        backend.Fill(filled, 2.5f);
        NormAssert.Identical("fill", Download(backend, filled), Enumerable.Repeat(2.5f, length).ToArray());

        double[] xd = NormTestData.ToDouble(x), yd = NormTestData.ToDouble(y);
        using var scaled = backend.Upload(x);
        backend.Scale(scaled, alpha);
        NormAssert.Close("scale", Download(backend, scaled), [.. xd.Select(v => v * alpha)], [.. xd.Select(v => Math.Abs(v * alpha))],
            ConvCheck.RelativeTolerance(1));

        using var xs = backend.Upload(x);
        using var ys = backend.Upload(y);
        backend.Axpy(alpha, xs, ys);
        NormAssert.Close("axpy", Download(backend, ys), [.. xd.Zip(yd, (u, v) => v + (alpha * u))],
            [.. xd.Zip(yd, (u, v) => Math.Abs(v) + Math.Abs(alpha * u))], ConvCheck.RelativeTolerance(1));
    }

    /// <summary>Sum against the float64 sum (a sum of length terms), and bit-identical on a second run.</summary>
    public static void Sum(GpuBackend gpu, int length, int seed = 8)
    {
        var random = new Random(seed);
        var x = NormTestData.Uniform(random, length);
        IBackend backend = gpu;
        using var xs = backend.Upload(x);
        using var result = Poisoned(backend, 1);
        backend.Sum(xs, result);
        var first = Download(backend, result);
        var xd = NormTestData.ToDouble(x);
        NormAssert.Close("sum", first, [xd.Sum()], [xd.Sum(Math.Abs)], ConvCheck.RelativeTolerance(Math.Max(1, length)));

        using var again = Poisoned(backend, 1);
        backend.Sum(xs, again);
        NormAssert.Identical("sum, second run", Download(backend, again), first);
    }

    /// <summary>A device storage of <paramref name="length"/> NaNs (0xFF bytes).</summary>
    public static Storage Poisoned(IBackend backend, long length)
    {
        var storage = backend.Allocate(length);
        ((DeviceStorage)storage).Buffer.FillBytes(0xFF);
        return storage;
    }

    public static float[] Download(IBackend backend, Storage storage)
    {
        var data = new float[storage.Length];
        backend.Download(storage, data);
        return data;
    }

    /// <summary>Calls <paramref name="action"/>(index, channel) for every element, channel by channel.</summary>
    private static void ForEachElement(NormShape s, Action<int, int> action)
    {
        for (var c = 0; c < s.C; c++)
        {
            for (var n = 0; n < s.N; n++)
            {
                for (var p = 0; p < s.H * s.W; p++)
                {
                    action((((n * s.C) + c) * s.H * s.W) + p, c);
                }
            }
        }
    }

    /// <summary>Σ f(values) per channel.</summary>
    private static double[] PerChannel(NormShape s, double[] values, Func<double, double> f)
    {
        var sums = new double[s.C];
        ForEachElement(s, (index, c) => sums[c] += f(values[index]));
        return sums;
    }
}
