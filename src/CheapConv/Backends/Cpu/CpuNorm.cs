using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CheapConv.Backends.Cpu;

/// <summary>
/// Vectorised batch norm (plain and fused with ReLU) for the fast CPU paths: the reference's formulas
/// (two-pass mean and variance; y = FMA(γ, (x − mean)·invStd, β); the backward's
/// factor·(M·g − Σg − x̂·Σg·x̂)), one channel per task. Only the channel sums group their additions differently
/// (by vector lane within each image plane, then planes in image order), which is fixed for a given machine.
/// Callers check the sizes first.
/// </summary>
internal static class CpuNorm
{
    /// <summary>Training-mode forward: statistics, running updates (as the reference) and y.</summary>
    public static void TrainForward(int n, int c, int h, int w, float[] x, float[] gamma, float[] beta, float[] runningMean,
        float[] runningVar, float momentum, float eps, float[] y, float[] saveMean, float[] saveInvStd, bool relu, ParallelOptions parallel) =>
        Parallel.For(0, c, parallel, channel => TrainForwardChannel(n, c, h * w, channel, x, gamma, beta, runningMean, runningVar, momentum, eps, y,
            saveMean, saveInvStd, relu));

    /// <summary>Eval-mode forward with the running statistics.</summary>
    public static void EvalForward(int n, int c, int h, int w, float[] x, float[] gamma, float[] beta, float[] runningMean,
        float[] runningVar, float eps, float[] y, bool relu, ParallelOptions parallel) =>
        Parallel.For(0, c, parallel, channel =>
        {
            Normalize(x, y, n, c, h * w, channel, runningMean[channel], EvalInvStd(runningVar[channel], eps), gamma[channel], beta[channel], relu);
        });

    /// <summary>1/√(running variance + ε), the eval-mode scale of one channel.</summary>
    internal static float EvalInvStd(float runningVar, float eps) => 1f / MathF.Sqrt(runningVar + eps);

    /// <summary>Backward with the saved statistics; <paramref name="beta"/> non-null means the fused ReLU (mask recomputed from x).</summary>
    public static void Backward(int n, int c, int h, int w, float[] x, float[] dy, float[] gamma, float[]? beta, float[] saveMean,
        float[] saveInvStd, float[] dx, float[] dgamma, float[] dbeta, bool accumulateDx, ParallelOptions parallel) =>
        Parallel.For(0, c, parallel, channel => BackwardChannel(n, c, h * w, channel, x, dy, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta,
            accumulateDx));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TrainForwardChannel(int n, int c, int hw, int channel, float[] x, float[] gamma, float[] beta, float[] runningMean,
        float[] runningVar, float momentum, float eps, float[] y, float[] saveMean, float[] saveInvStd, bool relu)
    {
        float count = n * hw, countMinusOne = n * hw - 1;
        var sum = 0f;
        for (var s = 0; s < n; s++)
        {
            sum += CpuVector.Sum(x.AsSpan((s * c + channel) * hw, hw));
        }

        var mean = sum / count;
        var squares = 0f;
        for (var s = 0; s < n; s++)
        {
            squares += SquaredDeviations(x.AsSpan((s * c + channel) * hw, hw), mean);
        }

        var invStd = 1f / MathF.Sqrt(squares / count + eps);
        saveMean[channel] = mean;
        saveInvStd[channel] = invStd;
        runningMean[channel] = (1f - momentum) * runningMean[channel] + momentum * mean;
        runningVar[channel] = (1f - momentum) * runningVar[channel] + momentum * (squares / countMinusOne);
        Normalize(x, y, n, c, hw, channel, mean, invStd, gamma[channel], beta[channel], relu);
    }

    /// <summary>Σ (x − mean)², by lane then in lane order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float SquaredDeviations(ReadOnlySpan<float> x, float mean)
    {
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        var vm = new Vector<float>(mean);
        var acc = Vector<float>.Zero;
        for (var i = 0; i < vx.Length; i++)
        {
            var d = vx[i] - vm;
            acc += d * d;
        }

        var sum = 0f;
        for (var lane = 0; lane < Vector<float>.Count; lane++)
        {
            sum += acc[lane];
        }

        for (var i = vx.Length * Vector<float>.Count; i < x.Length; i++)
        {
            var d = x[i] - mean;
            sum += d * d;
        }

        return sum;
    }

    /// <summary>y = FMA(γ, (x − mean)·invStd, β), then 0 where not &gt; 0 with the ReLU: exactly the reference's per-element arithmetic.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Normalize(float[] x, float[] y, int n, int c, int hw, int channel, float mean, float invStd, float gamma, float beta, bool relu)
    {
        for (var s = 0; s < n; s++)
        {
            var offset = (s * c + channel) * hw;
            NormalizeRow(x.AsSpan(offset, hw), y.AsSpan(offset, hw), mean, invStd, gamma, beta, relu);
        }
    }

    /// <summary>
    /// y = γ·(x − mean)·invStd + β (one fused multiply-add), then ReLU if asked, over one (image, channel) row; y may be x.
    /// Also run image by image right after a convolution (<see cref="ConvEpilogue"/>): the same bits as here.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void NormalizeRow(ReadOnlySpan<float> sx, Span<float> sy, float mean, float invStd, float gamma, float beta, bool relu)
    {
        Vector<float> vm = new(mean), vi = new(invStd), vg = new(gamma), vb = new(beta);
        var vx = MemoryMarshal.Cast<float, Vector<float>>(sx);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(sy);
        for (var i = 0; i < vx.Length; i++)
        {
            var v = Vector.FusedMultiplyAdd(vg, (vx[i] - vm) * vi, vb);
            vy[i] = relu ? Vector.ConditionalSelect(Vector.GreaterThan(v, Vector<float>.Zero), v, Vector<float>.Zero) : v;
        }

        for (var i = vx.Length * Vector<float>.Count; i < sx.Length; i++)
        {
            var v = MathF.FusedMultiplyAdd(gamma, (sx[i] - mean) * invStd, beta);
            sy[i] = relu && !(v > 0) ? 0 : v;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardChannel(int n, int c, int hw, int channel, float[] x, float[] dy, float[] gamma, float[]? beta,
        float[] saveMean, float[] saveInvStd, float[] dx, float[] dgamma, float[] dbeta, bool accumulateDx)
    {
        float mean = saveMean[channel], invStd = saveInvStd[channel], g = gamma[channel], b = beta is null ? 0f : beta[channel];
        var relu = beta is not null;
        Vector<float> vm = new(mean), vi = new(invStd), vg = new(g), vb = new(b);
        float sumG = 0f, sumGXHat = 0f;
        for (var s = 0; s < n; s++)
        {
            var offset = (s * c + channel) * hw;
            ReadOnlySpan<float> sx = x.AsSpan(offset, hw), sdy = dy.AsSpan(offset, hw);
            var vx = MemoryMarshal.Cast<float, Vector<float>>(sx);
            var vdy = MemoryMarshal.Cast<float, Vector<float>>(sdy);
            Vector<float> accG = Vector<float>.Zero, accGX = Vector<float>.Zero;
            for (var i = 0; i < vx.Length; i++)
            {
                var xHat = (vx[i] - vm) * vi;
                var gradient = relu ? Vector.ConditionalSelect(Vector.GreaterThan(Vector.FusedMultiplyAdd(vg, xHat, vb), Vector<float>.Zero), vdy[i], Vector<float>.Zero) : vdy[i];
                accG += gradient;
                accGX += gradient * xHat;
            }

            float planeG = 0f, planeGX = 0f;
            for (var lane = 0; lane < Vector<float>.Count; lane++)
            {
                planeG += accG[lane];
                planeGX += accGX[lane];
            }

            for (var i = vx.Length * Vector<float>.Count; i < hw; i++)
            {
                var xHat = (sx[i] - mean) * invStd;
                var gradient = relu && !(MathF.FusedMultiplyAdd(g, xHat, b) > 0) ? 0f : sdy[i];
                planeG += gradient;
                planeGX += gradient * xHat;
            }

            sumG += planeG;
            sumGXHat += planeGX;
        }

        dbeta[channel] = sumG;
        dgamma[channel] = sumGXHat;
        float count = n * hw, factor = g * invStd / count;
        Vector<float> vCount = new(count), vFactor = new(factor), vSumG = new(sumG), vSumGX = new(sumGXHat);
        for (var s = 0; s < n; s++)
        {
            var offset = (s * c + channel) * hw;
            ReadOnlySpan<float> sx = x.AsSpan(offset, hw), sdy = dy.AsSpan(offset, hw);
            var sdx = dx.AsSpan(offset, hw);
            var vx = MemoryMarshal.Cast<float, Vector<float>>(sx);
            var vdy = MemoryMarshal.Cast<float, Vector<float>>(sdy);
            var vdx = MemoryMarshal.Cast<float, Vector<float>>(sdx);
            for (var i = 0; i < vx.Length; i++)
            {
                var xHat = (vx[i] - vm) * vi;
                var gradient = relu ? Vector.ConditionalSelect(Vector.GreaterThan(Vector.FusedMultiplyAdd(vg, xHat, vb), Vector<float>.Zero), vdy[i], Vector<float>.Zero) : vdy[i];
                var v = vFactor * (vCount * gradient - vSumG - xHat * vSumGX);
                vdx[i] = accumulateDx ? vdx[i] + v : v; // one rounded add of the rounded gradient: Axpy's bits (α = 1)
            }

            for (var i = vx.Length * Vector<float>.Count; i < hw; i++)
            {
                var xHat = (sx[i] - mean) * invStd;
                var gradient = relu && !(MathF.FusedMultiplyAdd(g, xHat, b) > 0) ? 0f : sdy[i];
                var v = factor * (count * gradient - sumG - xHat * sumGXHat);
                sdx[i] = accumulateDx ? sdx[i] + v : v;
            }
        }
    }
}
