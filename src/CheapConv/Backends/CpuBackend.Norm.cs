using System.Numerics;
using CheapConv.Backends.Cpu;

namespace CheapConv.Backends;

// The Norm family of the reference (see CpuBackend.cs): batch norm (plain and fused with ReLU), ReLU, the
// residual add, global average pooling, zero padding and the element-wise utilities. Each static method is
// the textbook definition in T; the kernels in native/kernels/{batchnorm,elementwise,pooling}.cu compute
// the same expressions (y = FMA(γ, (x − mean)·invStd, β) included, so that in float the fused ReLU's mask
// is the same on both sides).
public sealed partial class CpuBackend
{
    /// <summary>
    /// Training-mode batch norm: per channel, mean and biased variance over (n, h, w) by two passes (mean
    /// first, then Σ(x − mean)², accurate for large means), y = γ·(x − mean)·invStd + β with
    /// invStd = 1/√(var + eps); saves mean and invStd and updates the running statistics as PyTorch does
    /// (running = (1 − momentum)·running + momentum·batch, with the unbiased variance Σ(x − mean)²/(M − 1)).
    /// </summary>
    internal static void BatchNormTrainForward<T>(int n, int c, int h, int w, T[] x, T[] gamma, T[] beta, T[] runningMean,
        T[] runningVar, T momentum, T eps, T[] y, T[] saveMean, T[] saveInvStd, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T> =>
        BatchNormTrain(n, c, h, w, x, gamma, beta, runningMean, runningVar, momentum, eps, y, saveMean, saveInvStd, relu: false, parallel);

    /// <summary>y = relu(<see cref="BatchNormTrainForward{T}"/>), with the same statistics and running updates.</summary>
    internal static void BatchNormReluTrainForward<T>(int n, int c, int h, int w, T[] x, T[] gamma, T[] beta, T[] runningMean,
        T[] runningVar, T momentum, T eps, T[] y, T[] saveMean, T[] saveInvStd, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T> =>
        BatchNormTrain(n, c, h, w, x, gamma, beta, runningMean, runningVar, momentum, eps, y, saveMean, saveInvStd, relu: true, parallel);

    /// <summary>Eval-mode batch norm: y = γ·(x − runningMean)/√(runningVar + eps) + β.</summary>
    internal static void BatchNormEvalForward<T>(int n, int c, int h, int w, T[] x, T[] gamma, T[] beta, T[] runningMean,
        T[] runningVar, T eps, T[] y, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T> =>
        BatchNormEval(n, c, h, w, x, gamma, beta, runningMean, runningVar, eps, y, relu: false, parallel);

    /// <summary>y = relu(<see cref="BatchNormEvalForward{T}"/>).</summary>
    internal static void BatchNormReluEvalForward<T>(int n, int c, int h, int w, T[] x, T[] gamma, T[] beta, T[] runningMean,
        T[] runningVar, T eps, T[] y, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T> =>
        BatchNormEval(n, c, h, w, x, gamma, beta, runningMean, runningVar, eps, y, relu: true, parallel);

    /// <summary>
    /// Backward of training-mode batch norm with the saved statistics: x̂ = (x − mean)·invStd, dβ = Σ dy,
    /// dγ = Σ dy·x̂, dx = γ·invStd/M·(M·dy − dβ − x̂·dγ), M = N·H·W.
    /// </summary>
    internal static void BatchNormBackward<T>(int n, int c, int h, int w, T[] x, T[] dy, T[] gamma, T[] saveMean,
        T[] saveInvStd, T[] dx, T[] dgamma, T[] dbeta, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T> =>
        BatchNormBackwardCore(n, c, h, w, x, dy, gamma, beta: null, saveMean, saveInvStd, dx, dgamma, dbeta, parallel);

    /// <summary>
    /// Backward of relu(training-mode batch norm): as <see cref="BatchNormBackward{T}"/> with dy replaced by
    /// dy·[y &gt; 0], the forward output y recomputed from x, the saved statistics, γ and β.
    /// </summary>
    internal static void BatchNormReluBackward<T>(int n, int c, int h, int w, T[] x, T[] dy, T[] gamma, T[] beta, T[] saveMean,
        T[] saveInvStd, T[] dx, T[] dgamma, T[] dbeta, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T> =>
        BatchNormBackwardCore(n, c, h, w, x, dy, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta, parallel);

    /// <summary>y = max(x, 0) over the first <paramref name="length"/> elements (y may be x); NaN stays NaN.</summary>
    internal static void ReluForward<T>(long length, T[] x, T[] y) where T : IFloatingPointIeee754<T>
    {
        var count = CheckNormElementCount(length, ("x", x.LongLength), ("y", y.LongLength));
        for (var i = 0; i < count; i++)
        {
            y[i] = x[i] < T.Zero ? T.Zero : x[i];
        }
    }

    /// <summary>dx = dy where y &gt; 0, else 0.</summary>
    internal static void ReluBackward<T>(long length, T[] y, T[] dy, T[] dx) where T : IFloatingPointIeee754<T>
    {
        var count = CheckNormElementCount(length, ("y", y.LongLength), ("dy", dy.LongLength), ("dx", dx.LongLength));
        for (var i = 0; i < count; i++)
        {
            dx[i] = y[i] > T.Zero ? dy[i] : T.Zero;
        }
    }

    /// <summary>y = a + b (y may alias a or b).</summary>
    internal static void Add<T>(long length, T[] a, T[] b, T[] y) where T : IFloatingPointIeee754<T>
    {
        var count = CheckNormElementCount(length, ("a", a.LongLength), ("b", b.LongLength), ("y", y.LongLength));
        for (var i = 0; i < count; i++)
        {
            y[i] = a[i] + b[i];
        }
    }

    /// <summary>y[n,c] = (Σ_{h,w} x[n,c,h,w]) / (H·W).</summary>
    internal static void GlobalAvgPoolForward<T>(int n, int c, int h, int w, T[] x, T[] y, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T>
    {
        var elements = CheckNormShape(n, c, h, w);
        CheckNormLengths(("x", x.LongLength, elements), ("y", y.LongLength, (long)n * c));
        int hw = h * w;
        var count = T.CreateChecked(hw);
        Parallel.For(0, n * c, parallel ?? Unbounded, plane =>
        {
            var sum = T.Zero;
            for (var i = 0; i < hw; i++)
            {
                sum += x[plane * hw + i];
            }

            y[plane] = sum / count;
        });
    }

    /// <summary>dx[n,c,h,w] = dy[n,c] / (H·W).</summary>
    internal static void GlobalAvgPoolBackward<T>(int n, int c, int h, int w, T[] dy, T[] dx) where T : IFloatingPointIeee754<T>
    {
        var elements = CheckNormShape(n, c, h, w);
        CheckNormLengths(("dy", dy.LongLength, (long)n * c), ("dx", dx.LongLength, elements));
        int hw = h * w;
        var count = T.CreateChecked(hw);
        for (var i = 0; i < elements; i++)
        {
            dx[i] = dy[i / hw] / count;
        }
    }

    /// <summary>y = x surrounded by zeros: N×C×(H+top+bottom)×(W+left+right).</summary>
    internal static void ZeroPadForward<T>(int n, int c, int h, int w, int top, int bottom, int left, int right, T[] x, T[] y)
        where T : IFloatingPointIeee754<T>
    {
        var (inputElements, outputElements) = CheckPadding(n, c, h, w, top, bottom, left, right);
        CheckNormLengths(("x", x.LongLength, inputElements), ("y", y.LongLength, outputElements));
        int outH = h + top + bottom, outW = w + left + right;
        Array.Fill(y, T.Zero, 0, (int)outputElements);
        for (var plane = 0; plane < n * c; plane++)
        {
            for (var i = 0; i < h; i++)
            {
                Array.Copy(x, (plane * h + i) * w, y, (plane * outH + i + top) * outW + left, w);
            }
        }
    }

    /// <summary>dx = the middle H×W window of dy, whose planes are (H+top+bottom)×(W+left+right).</summary>
    internal static void ZeroPadBackward<T>(int n, int c, int h, int w, int top, int bottom, int left, int right, T[] dy, T[] dx)
        where T : IFloatingPointIeee754<T>
    {
        var (inputElements, outputElements) = CheckPadding(n, c, h, w, top, bottom, left, right);
        CheckNormLengths(("dy", dy.LongLength, outputElements), ("dx", dx.LongLength, inputElements));
        int outH = h + top + bottom, outW = w + left + right;
        for (var plane = 0; plane < n * c; plane++)
        {
            for (var i = 0; i < h; i++)
            {
                Array.Copy(dy, (plane * outH + i + top) * outW + left, dx, (plane * h + i) * w, w);
            }
        }
    }

    /// <summary>Every element = <paramref name="value"/>.</summary>
    internal static void Fill<T>(T[] x, T value) where T : IFloatingPointIeee754<T> => Array.Fill(x, value);

    /// <summary>x *= alpha.</summary>
    internal static void Scale<T>(T[] x, T alpha) where T : IFloatingPointIeee754<T>
    {
        for (var i = 0; i < x.Length; i++)
        {
            x[i] *= alpha;
        }
    }

    /// <summary>y += alpha·x, one rounding per element (FMA, as the kernel).</summary>
    internal static void Axpy<T>(T alpha, T[] x, T[] y) where T : IFloatingPointIeee754<T>
    {
        CheckNormLengths(("y", y.LongLength, x.LongLength));
        for (var i = 0; i < x.Length; i++)
        {
            y[i] = T.FusedMultiplyAdd(alpha, x[i], y[i]);
        }
    }

    /// <summary>result[0] = Σ x, added in index order.</summary>
    internal static void Sum<T>(T[] x, T[] result) where T : IFloatingPointIeee754<T>
    {
        CheckNormLengths(("result", result.LongLength, 1));
        var sum = T.Zero;
        foreach (var v in x)
        {
            sum += v;
        }

        result[0] = sum;
    }

    // The IBackend members: the same argument checks as the reference, then the vectorised float loops of
    // Backends/Cpu (CpuNorm, CpuVector), which compute each element with the reference's arithmetic.
    void IBackend.BatchNormTrainForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float momentum, float eps, Storage y, Storage saveMean, Storage saveInvStd) =>
        FastBatchNormTrain(n, c, h, w, x, gamma, beta, runningMean, runningVar, momentum, eps, y, saveMean, saveInvStd, relu: false, Parallelism);

    void IBackend.BatchNormEvalForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float eps, Storage y) =>
        FastBatchNormEval(n, c, h, w, x, gamma, beta, runningMean, runningVar, eps, y, relu: false, Parallelism);

    void IBackend.BatchNormBackward(int n, int c, int h, int w, Storage x, Storage dy, Storage gamma, Storage saveMean,
        Storage saveInvStd, Storage dx, Storage dgamma, Storage dbeta, bool accumulateDx) =>
        FastBatchNormBackward(n, c, h, w, x, dy, gamma, beta: null, saveMean, saveInvStd, dx, dgamma, dbeta, accumulateDx, Parallelism);

    void IBackend.BatchNormReluTrainForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float momentum, float eps, Storage y, Storage saveMean, Storage saveInvStd) =>
        FastBatchNormTrain(n, c, h, w, x, gamma, beta, runningMean, runningVar, momentum, eps, y, saveMean, saveInvStd, relu: true, Parallelism);

    void IBackend.BatchNormReluEvalForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float eps, Storage y) =>
        FastBatchNormEval(n, c, h, w, x, gamma, beta, runningMean, runningVar, eps, y, relu: true, Parallelism);

    void IBackend.BatchNormReluBackward(int n, int c, int h, int w, Storage x, Storage dy, Storage gamma, Storage beta,
        Storage saveMean, Storage saveInvStd, Storage dx, Storage dgamma, Storage dbeta, bool accumulateDx) =>
        FastBatchNormBackward(n, c, h, w, x, dy, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta, accumulateDx, Parallelism);

    void IBackend.ReluForward(long length, Storage x, Storage y)
    {
        float[] hx = Host(x), hy = Host(y);
        CpuVector.Relu(CheckNormElementCount(length, ("x", hx.LongLength), ("y", hy.LongLength)), hx, hy, Parallelism);
    }

    void IBackend.ReluBackward(long length, Storage y, Storage dy, Storage dx)
    {
        float[] hy = Host(y), hdy = Host(dy), hdx = Host(dx);
        CpuVector.ReluBackward(CheckNormElementCount(length, ("y", hy.LongLength), ("dy", hdy.LongLength), ("dx", hdx.LongLength)), hy, hdy, hdx, Parallelism);
    }

    void IBackend.Add(long length, Storage a, Storage b, Storage y)
    {
        float[] ha = Host(a), hb = Host(b), hy = Host(y);
        CpuVector.Add(CheckNormElementCount(length, ("a", ha.LongLength), ("b", hb.LongLength), ("y", hy.LongLength)), ha, hb, hy, Parallelism);
    }

    void IBackend.GlobalAvgPoolForward(int n, int c, int h, int w, Storage x, Storage y) =>
        GlobalAvgPoolForward(n, c, h, w, Host(x), Host(y), Parallelism);

    void IBackend.GlobalAvgPoolBackward(int n, int c, int h, int w, Storage dy, Storage dx) =>
        GlobalAvgPoolBackward(n, c, h, w, Host(dy), Host(dx));

    void IBackend.ZeroPadForward(int n, int c, int h, int w, int top, int bottom, int left, int right, Storage x, Storage y) =>
        ZeroPadForward(n, c, h, w, top, bottom, left, right, Host(x), Host(y));

    void IBackend.ZeroPadBackward(int n, int c, int h, int w, int top, int bottom, int left, int right, Storage dy, Storage dx) =>
        ZeroPadBackward(n, c, h, w, top, bottom, left, right, Host(dy), Host(dx));

    void IBackend.Fill(Storage x, float value) => Fill(Host(x), value);

    void IBackend.Scale(Storage x, float alpha) => CpuVector.Scale(Host(x), alpha, Parallelism);

    void IBackend.Axpy(float alpha, Storage x, Storage y)
    {
        float[] hx = Host(x), hy = Host(y);
        CheckNormLengths(("y", hy.LongLength, hx.LongLength));
        CpuVector.Axpy(alpha, hx, hy, Parallelism);
    }

    void IBackend.Sum(Storage x, Storage result) => Sum(Host(x), Host(result));

    private static void FastBatchNormTrain(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float momentum, float eps, Storage y, Storage saveMean, Storage saveInvStd, bool relu, ParallelOptions parallel)
    {
        float[] hx = Host(x), hg = Host(gamma), hb = Host(beta), hrm = Host(runningMean), hrv = Host(runningVar), hy = Host(y),
            hsm = Host(saveMean), hsi = Host(saveInvStd);
        CheckBatchNormTraining(n, c, h, w, hx.LongLength, hy.LongLength, hg.LongLength, hb.LongLength, hrm.LongLength, hrv.LongLength,
            hsm.LongLength, hsi.LongLength);
        CpuNorm.TrainForward(n, c, h, w, hx, hg, hb, hrm, hrv, momentum, eps, hy, hsm, hsi, relu, parallel);
    }

    private static void FastBatchNormEval(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float eps, Storage y, bool relu, ParallelOptions parallel)
    {
        float[] hx = Host(x), hg = Host(gamma), hb = Host(beta), hrm = Host(runningMean), hrv = Host(runningVar), hy = Host(y);
        var elements = CheckNormShape(n, c, h, w);
        CheckNormLengths(("x", hx.LongLength, elements), ("y", hy.LongLength, elements), ("gamma", hg.LongLength, c),
            ("beta", hb.LongLength, c), ("runningMean", hrm.LongLength, c), ("runningVar", hrv.LongLength, c));
        CpuNorm.EvalForward(n, c, h, w, hx, hg, hb, hrm, hrv, eps, hy, relu, parallel);
    }

    private static void FastBatchNormBackward(int n, int c, int h, int w, Storage x, Storage dy, Storage gamma, Storage? beta,
        Storage saveMean, Storage saveInvStd, Storage dx, Storage dgamma, Storage dbeta, bool accumulateDx, ParallelOptions parallel)
    {
        float[] hx = Host(x), hdy = Host(dy), hg = Host(gamma), hsm = Host(saveMean), hsi = Host(saveInvStd), hdx = Host(dx),
            hdg = Host(dgamma), hdb = Host(dbeta);
        var hb = beta is null ? null : Host(beta);
        var elements = CheckNormShape(n, c, h, w);
        CheckNormLengths(("x", hx.LongLength, elements), ("dy", hdy.LongLength, elements), ("dx", hdx.LongLength, elements),
            ("gamma", hg.LongLength, c), ("beta", hb?.LongLength ?? c, c), ("saveMean", hsm.LongLength, c),
            ("saveInvStd", hsi.LongLength, c), ("dgamma", hdg.LongLength, c), ("dbeta", hdb.LongLength, c));
        CpuNorm.Backward(n, c, h, w, hx, hdy, hg, hb, hsm, hsi, hdx, hdg, hdb, accumulateDx, parallel);
    }

    private static void BatchNormTrain<T>(int n, int c, int h, int w, T[] x, T[] gamma, T[] beta, T[] runningMean, T[] runningVar,
        T momentum, T eps, T[] y, T[] saveMean, T[] saveInvStd, bool relu, ParallelOptions? parallel) where T : IFloatingPointIeee754<T>
    {
        CheckBatchNormTraining(n, c, h, w, x.LongLength, y.LongLength, gamma.LongLength, beta.LongLength, runningMean.LongLength,
            runningVar.LongLength, saveMean.LongLength, saveInvStd.LongLength);
        int hw = h * w, m = n * hw;
        T count = T.CreateChecked(m), countMinusOne = T.CreateChecked(m - 1);
        Parallel.For(0, c, parallel ?? Unbounded, channel =>
        {
            var sum = T.Zero;
            for (var s = 0; s < n; s++)
            {
                for (var p = 0; p < hw; p++)
                {
                    sum += x[(s * c + channel) * hw + p];
                }
            }

            var mean = sum / count;
            var squares = T.Zero;
            for (var s = 0; s < n; s++)
            {
                for (var p = 0; p < hw; p++)
                {
                    var d = x[(s * c + channel) * hw + p] - mean;
                    squares += d * d;
                }
            }

            var invStd = T.One / T.Sqrt(squares / count + eps);
            saveMean[channel] = mean;
            saveInvStd[channel] = invStd;
            runningMean[channel] = (T.One - momentum) * runningMean[channel] + momentum * mean;
            runningVar[channel] = (T.One - momentum) * runningVar[channel] + momentum * (squares / countMinusOne);
            Normalize(x, y, n, c, hw, channel, mean, invStd, gamma[channel], beta[channel], relu);
        });
    }

    private static void BatchNormEval<T>(int n, int c, int h, int w, T[] x, T[] gamma, T[] beta, T[] runningMean, T[] runningVar,
        T eps, T[] y, bool relu, ParallelOptions? parallel) where T : IFloatingPointIeee754<T>
    {
        var elements = CheckNormShape(n, c, h, w);
        CheckNormLengths(("x", x.LongLength, elements), ("y", y.LongLength, elements), ("gamma", gamma.LongLength, c),
            ("beta", beta.LongLength, c), ("runningMean", runningMean.LongLength, c), ("runningVar", runningVar.LongLength, c));
        int hw = h * w;
        Parallel.For(0, c, parallel ?? Unbounded, channel =>
        {
            var invStd = T.One / T.Sqrt(runningVar[channel] + eps);
            Normalize(x, y, n, c, hw, channel, runningMean[channel], invStd, gamma[channel], beta[channel], relu);
        });
    }

    private static void Normalize<T>(T[] x, T[] y, int n, int c, int hw, int channel, T mean, T invStd, T gamma, T beta, bool relu)
        where T : IFloatingPointIeee754<T>
    {
        for (var s = 0; s < n; s++)
        {
            for (var p = 0; p < hw; p++)
            {
                var index = (s * c + channel) * hw + p;
                var v = Affine(x[index], mean, invStd, gamma, beta);
                y[index] = relu && !(v > T.Zero) ? T.Zero : v;
            }
        }
    }

    /// <summary>γ·((x − mean)·invStd) + β with one rounding for the multiply-add, exactly as cc_bn_affine in batchnorm.cu.</summary>
    private static T Affine<T>(T x, T mean, T invStd, T gamma, T beta) where T : IFloatingPointIeee754<T> =>
        T.FusedMultiplyAdd(gamma, (x - mean) * invStd, beta);

    // beta == null: plain batch norm; otherwise the fused ReLU, whose mask needs β to recompute y.
    private static void BatchNormBackwardCore<T>(int n, int c, int h, int w, T[] x, T[] dy, T[] gamma, T[]? beta, T[] saveMean,
        T[] saveInvStd, T[] dx, T[] dgamma, T[] dbeta, ParallelOptions? parallel) where T : IFloatingPointIeee754<T>
    {
        var elements = CheckNormShape(n, c, h, w);
        CheckNormLengths(("x", x.LongLength, elements), ("dy", dy.LongLength, elements), ("dx", dx.LongLength, elements),
            ("gamma", gamma.LongLength, c), ("beta", beta?.LongLength ?? c, c), ("saveMean", saveMean.LongLength, c),
            ("saveInvStd", saveInvStd.LongLength, c), ("dgamma", dgamma.LongLength, c), ("dbeta", dbeta.LongLength, c));
        int hw = h * w;
        var count = T.CreateChecked(n * hw);
        Parallel.For(0, c, parallel ?? Unbounded, channel =>
        {
            T mean = saveMean[channel], invStd = saveInvStd[channel], g = gamma[channel];
            T Gradient(int index) =>
                beta is not null && !(Affine(x[index], mean, invStd, g, beta[channel]) > T.Zero) ? T.Zero : dy[index];

            T sumG = T.Zero, sumGXHat = T.Zero;
            for (var s = 0; s < n; s++)
            {
                for (var p = 0; p < hw; p++)
                {
                    var index = (s * c + channel) * hw + p;
                    var gradient = Gradient(index);
                    sumG += gradient;
                    sumGXHat += gradient * ((x[index] - mean) * invStd);
                }
            }

            dbeta[channel] = sumG;
            dgamma[channel] = sumGXHat;
            var factor = g * invStd / count;
            for (var s = 0; s < n; s++)
            {
                for (var p = 0; p < hw; p++)
                {
                    var index = (s * c + channel) * hw + p;
                    var xHat = (x[index] - mean) * invStd;
                    dx[index] = factor * (count * Gradient(index) - sumG - xHat * sumGXHat);
                }
            }
        });
    }

    /// <summary>Checks an N×C×H×W shape (every size positive, at most 2^31 − 1 elements) and returns its element count.</summary>
    internal static int CheckNormShape(int n, int c, int h, int w)
    {
        if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
        {
            throw new ArgumentException($"tensor shape {n}×{c}×{h}×{w} has a size that is not positive");
        }

        var elements = (long)n * c * h * w;
        if (elements > int.MaxValue)
        {
            throw new ArgumentException($"tensor shape {n}×{c}×{h}×{w} has {elements} elements; kernels index with 32 bits (at most {int.MaxValue})");
        }

        return (int)elements;
    }

    /// <summary>
    /// Checks the sizes of a training-mode batch norm: the shape, every storage's length, and at least two values
    /// per channel (the unbiased variance divides by N·H·W − 1; PyTorch refuses one value per channel too).
    /// </summary>
    internal static void CheckBatchNormTraining(int n, int c, int h, int w, long x, long y, long gamma, long beta, long runningMean,
        long runningVar, long saveMean, long saveInvStd)
    {
        var elements = CheckNormShape(n, c, h, w);
        if ((long)n * h * w < 2)
        {
            throw new ArgumentException($"training batch norm needs more than one value per channel, but N·H·W = {(long)n * h * w} (shape {n}×{c}×{h}×{w})");
        }

        CheckNormLengths(("x", x, elements), ("y", y, elements), ("gamma", gamma, c), ("beta", beta, c), ("runningMean", runningMean, c),
            ("runningVar", runningVar, c), ("saveMean", saveMean, c), ("saveInvStd", saveInvStd, c));
    }

    /// <summary>Checks a zero padding (shape positive, paddings non-negative, both tensors within 32-bit indexing); returns both element counts.</summary>
    internal static (int Input, int Output) CheckPadding(int n, int c, int h, int w, int top, int bottom, int left, int right)
    {
        var input = CheckNormShape(n, c, h, w);
        if (top < 0 || bottom < 0 || left < 0 || right < 0)
        {
            throw new ArgumentException($"paddings must be non-negative: top {top}, bottom {bottom}, left {left}, right {right}");
        }

        var output = CheckNormShape(n, c, checked(h + top + bottom), checked(w + left + right));
        return (input, output);
    }

    /// <summary>Checks that every named length equals its expected value.</summary>
    internal static void CheckNormLengths(params ReadOnlySpan<(string Name, long Actual, long Expected)> tensors)
    {
        foreach (var (name, actual, expected) in tensors)
        {
            if (actual != expected)
            {
                throw new ArgumentException($"{name} has {actual} elements where {expected} are needed");
            }
        }
    }

    /// <summary>Checks an element count for the flat ops (0 ≤ length ≤ 2^31 − 1 and no storage shorter) and returns it.</summary>
    internal static int CheckNormElementCount(long length, params ReadOnlySpan<(string Name, long Length)> storages)
    {
        if (length < 0 || length > int.MaxValue)
        {
            throw new ArgumentException($"length {length} is outside [0, {int.MaxValue}] (kernels index with 32 bits)");
        }

        foreach (var (name, available) in storages)
        {
            if (available < length)
            {
                throw new ArgumentException($"{name} has {available} elements, fewer than the {length} the op covers");
            }
        }

        return (int)length;
    }
}
