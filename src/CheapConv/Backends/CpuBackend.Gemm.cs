using System.Numerics;
using CheapConv.Backends.Cpu;
using CheapConv.Problems;

namespace CheapConv.Backends;

// The GEMM family of the reference (see CpuBackend.cs): the pointwise 1×1 convolution and the linear layer, each
// written as its textbook sum. The pointwise sums run over the same terms in the same order as the general
// Conv2d reference (CpuBackend.Conv.cs), so the two agree bit for bit, which the tests check.
public sealed partial class CpuBackend
{
    /// <summary>y[n,k,p,q] = Σ_c x[n, c, p·stride_h, q·stride_w] · w[k, c] (R = S = 1, groups = 1, no padding).</summary>
    internal static void PointwiseForward<T>(ConvProblem pr, T[] x, T[] w, T[] y, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T>
    {
        CheckPointwise(pr);
        CheckLengths(pr, ("x", x.Length, pr.InputElements), ("w", w.Length, pr.WeightElements), ("y", y.Length, pr.OutputElements));
        Parallel.For(0, pr.N * pr.K, parallel ?? Unbounded, nk =>
        {
            int n = nk / pr.K, k = nk % pr.K;
            for (int p = 0; p < pr.P; p++)
            {
                for (int q = 0; q < pr.Q; q++)
                {
                    var acc = T.Zero;
                    for (int c = 0; c < pr.C; c++)
                    {
                        acc += x[((n * pr.C + c) * pr.H + p * pr.StrideH) * pr.W + q * pr.StrideW] * w[k * pr.C + c];
                    }

                    y[((n * pr.K + k) * pr.P + p) * pr.Q + q] = acc;
                }
            }
        });
    }

    /// <summary>dx[n,c,h,w] = Σ_k dy[n, k, h/stride_h, w/stride_w] · w[k, c] where h and w are multiples of the stride, else 0.</summary>
    internal static void PointwiseBackwardData<T>(ConvProblem pr, T[] dy, T[] w, T[] dx, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T>
    {
        CheckPointwise(pr);
        CheckLengths(pr, ("dy", dy.Length, pr.OutputElements), ("w", w.Length, pr.WeightElements), ("dx", dx.Length, pr.InputElements));
        Parallel.For(0, pr.N * pr.C, parallel ?? Unbounded, nc =>
        {
            int n = nc / pr.C, c = nc % pr.C;
            for (int h = 0; h < pr.H; h++)
            {
                for (int wi = 0; wi < pr.W; wi++)
                {
                    // P = (H − 1)/stride + 1, so every multiple of the stride below H is an output row (and likewise for columns).
                    var acc = T.Zero;
                    if (h % pr.StrideH == 0 && wi % pr.StrideW == 0)
                    {
                        int p = h / pr.StrideH, q = wi / pr.StrideW;
                        for (int k = 0; k < pr.K; k++)
                        {
                            acc += dy[((n * pr.K + k) * pr.P + p) * pr.Q + q] * w[k * pr.C + c];
                        }
                    }

                    dx[((n * pr.C + c) * pr.H + h) * pr.W + wi] = acc;
                }
            }
        });
    }

    /// <summary>dw[k,c] = Σ_{n,p,q} dy[n,k,p,q] · x[n, c, p·stride_h, q·stride_w].</summary>
    internal static void PointwiseBackwardWeight<T>(ConvProblem pr, T[] x, T[] dy, T[] dw, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T>
    {
        CheckPointwise(pr);
        CheckLengths(pr, ("x", x.Length, pr.InputElements), ("dy", dy.Length, pr.OutputElements), ("dw", dw.Length, pr.WeightElements));
        Parallel.For(0, pr.K, parallel ?? Unbounded, k =>
        {
            for (int c = 0; c < pr.C; c++)
            {
                var acc = T.Zero;
                for (int n = 0; n < pr.N; n++)
                {
                    for (int p = 0; p < pr.P; p++)
                    {
                        for (int q = 0; q < pr.Q; q++)
                        {
                            acc += dy[((n * pr.K + k) * pr.P + p) * pr.Q + q] * x[((n * pr.C + c) * pr.H + p * pr.StrideH) * pr.W + q * pr.StrideW];
                        }
                    }
                }

                dw[k * pr.C + c] = acc;
            }
        });
    }

    /// <summary>y[i,o] = Σ_t x[i,t] · w[o,t] + b[o]: x is n×in, w is out×in (PyTorch's layout), y is n×out.</summary>
    internal static void LinearForward<T>(int n, int inFeatures, int outFeatures, T[] x, T[] w, T[] b, T[] y, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T>
    {
        CheckLinear(n, inFeatures, outFeatures);
        CheckLinearLengths(("x", x.Length, (long)n * inFeatures), ("w", w.Length, (long)outFeatures * inFeatures), ("b", b.Length, outFeatures), ("y", y.Length, (long)n * outFeatures));
        Parallel.For(0, n, parallel ?? Unbounded, i =>
        {
            for (int o = 0; o < outFeatures; o++)
            {
                var acc = T.Zero;
                for (int t = 0; t < inFeatures; t++)
                {
                    acc += x[i * inFeatures + t] * w[o * inFeatures + t];
                }

                y[i * outFeatures + o] = acc + b[o];
            }
        });
    }

    /// <summary>dx[i,t] = Σ_o dy[i,o] · w[o,t] (dx = dy·w, n×in).</summary>
    internal static void LinearBackwardData<T>(int n, int inFeatures, int outFeatures, T[] dy, T[] w, T[] dx, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T>
    {
        CheckLinear(n, inFeatures, outFeatures);
        CheckLinearLengths(("dy", dy.Length, (long)n * outFeatures), ("w", w.Length, (long)outFeatures * inFeatures), ("dx", dx.Length, (long)n * inFeatures));
        Parallel.For(0, n, parallel ?? Unbounded, i =>
        {
            for (int t = 0; t < inFeatures; t++)
            {
                var acc = T.Zero;
                for (int o = 0; o < outFeatures; o++)
                {
                    acc += dy[i * outFeatures + o] * w[o * inFeatures + t];
                }

                dx[i * inFeatures + t] = acc;
            }
        });
    }

    /// <summary>dw[o,t] = Σ_i dy[i,o] · x[i,t] (dw = dyᵀ·x, out×in).</summary>
    internal static void LinearBackwardWeight<T>(int n, int inFeatures, int outFeatures, T[] x, T[] dy, T[] dw, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T>
    {
        CheckLinear(n, inFeatures, outFeatures);
        CheckLinearLengths(("x", x.Length, (long)n * inFeatures), ("dy", dy.Length, (long)n * outFeatures), ("dw", dw.Length, (long)outFeatures * inFeatures));
        Parallel.For(0, outFeatures, parallel ?? Unbounded, o =>
        {
            for (int t = 0; t < inFeatures; t++)
            {
                var acc = T.Zero;
                for (int i = 0; i < n; i++)
                {
                    acc += dy[i * outFeatures + o] * x[i * inFeatures + t];
                }

                dw[o * inFeatures + t] = acc;
            }
        });
    }

    /// <summary>db[o] = Σ_i dy[i,o].</summary>
    internal static void LinearBackwardBias<T>(int n, int outFeatures, T[] dy, T[] db) where T : IFloatingPointIeee754<T>
    {
        CheckLinear(n, 1, outFeatures);
        CheckLinearLengths(("dy", dy.Length, (long)n * outFeatures), ("db", db.Length, outFeatures));
        for (int o = 0; o < outFeatures; o++)
        {
            var acc = T.Zero;
            for (int i = 0; i < n; i++)
            {
                acc += dy[i * outFeatures + o];
            }

            db[o] = acc;
        }
    }

    // The IBackend members (explicit, as every op of both backends: the ops are IBackend's API): the pointwise passes are convolutions without im2col (stride 1) or with a
    // subsampling one (stride 2), the linear layer three GEMMs; all on the packed SGEMM of Backends/Cpu.
    void IBackend.PointwiseForward(ConvProblem problem, Storage x, Storage w, Storage y)
    {
        CheckPointwise(problem);
        ((IBackend)this).Conv2dForward(problem, x, w, y);
    }

    void IBackend.PointwiseBackwardData(ConvProblem problem, Storage dy, Storage w, Storage dx)
    {
        CheckPointwise(problem);
        ((IBackend)this).Conv2dBackwardData(problem, dy, w, dx);
    }

    void IBackend.PointwiseBackwardWeight(ConvProblem problem, Storage x, Storage dy, Storage dw)
    {
        CheckPointwise(problem);
        ((IBackend)this).Conv2dBackwardWeight(problem, x, dy, dw);
    }

    void IBackend.LinearForward(int n, int inFeatures, int outFeatures, Storage x, Storage w, Storage b, Storage y)
    {
        float[] hx = Host(x), hw = Host(w), hb = Host(b), hy = Host(y);
        CheckLinear(n, inFeatures, outFeatures);
        CheckLinearLengths(("x", hx.Length, (long)n * inFeatures), ("w", hw.Length, (long)outFeatures * inFeatures), ("b", hb.Length, outFeatures), ("y", hy.Length, (long)n * outFeatures));
        // y = x (n × in) · wᵀ, w stored out × in; then the bias, added last as in the reference.
        CpuGemm.Multiply(false, true, n, outFeatures, inFeatures, hx, 0, inFeatures, hw, 0, inFeatures, hy, 0, outFeatures, accumulate: false, parallel: Parallelism);
        for (var i = 0; i < n; i++)
        {
            CpuVector.AddInPlace(hy.AsSpan(i * outFeatures, outFeatures), hb);
        }
    }

    void IBackend.LinearBackwardData(int n, int inFeatures, int outFeatures, Storage dy, Storage w, Storage dx)
    {
        float[] hdy = Host(dy), hw = Host(w), hdx = Host(dx);
        CheckLinear(n, inFeatures, outFeatures);
        CheckLinearLengths(("dy", hdy.Length, (long)n * outFeatures), ("w", hw.Length, (long)outFeatures * inFeatures), ("dx", hdx.Length, (long)n * inFeatures));
        CpuGemm.Multiply(false, false, n, inFeatures, outFeatures, hdy, 0, outFeatures, hw, 0, inFeatures, hdx, 0, inFeatures, accumulate: false, parallel: Parallelism);
    }

    void IBackend.LinearBackwardWeight(int n, int inFeatures, int outFeatures, Storage x, Storage dy, Storage dw)
    {
        float[] hx = Host(x), hdy = Host(dy), hdw = Host(dw);
        CheckLinear(n, inFeatures, outFeatures);
        CheckLinearLengths(("x", hx.Length, (long)n * inFeatures), ("dy", hdy.Length, (long)n * outFeatures), ("dw", hdw.Length, (long)outFeatures * inFeatures));
        // dw (out × in) = dyᵀ · x, dy stored n × out.
        CpuGemm.Multiply(true, false, outFeatures, inFeatures, n, hdy, 0, outFeatures, hx, 0, inFeatures, hdw, 0, inFeatures, accumulate: false, parallel: Parallelism);
    }

    void IBackend.LinearBackwardBias(int n, int outFeatures, Storage dy, Storage db) =>
        LinearBackwardBias(n, outFeatures, Host(dy), Host(db));

    /// <summary>Throws unless the problem is a pointwise one: R = S = 1, groups = 1, no padding (any stride).</summary>
    internal static void CheckPointwise(ConvProblem problem)
    {
        if (!GpuBackend.IsPointwise(problem))
        {
            throw new ArgumentException($"the pointwise (GEMM) ops need R = S = 1, groups = 1 and no padding, got {problem}");
        }
    }

    /// <summary>Throws unless the linear sizes are positive and every tensor fits the kernels' 32-bit indices.</summary>
    internal static void CheckLinear(int n, int inFeatures, int outFeatures)
    {
        foreach (var (name, value) in new[] { ("n", n), ("inFeatures", inFeatures), ("outFeatures", outFeatures) })
        {
            if (value <= 0)
            {
                throw new ArgumentException($"linear: {name} must be positive, got {value}");
            }
        }

        if ((long)n * inFeatures > int.MaxValue || (long)n * outFeatures > int.MaxValue || (long)outFeatures * inFeatures > int.MaxValue)
        {
            throw new ArgumentException($"linear n={n} in={inFeatures} out={outFeatures}: a tensor has more than 2^31-1 elements, which the kernels do not index");
        }
    }

    internal static void CheckLinearLengths(params ReadOnlySpan<(string Name, long Actual, long Expected)> tensors)
    {
        foreach (var (name, actual, expected) in tensors)
        {
            if (actual != expected)
            {
                throw new ArgumentException($"linear: {name} has {actual} elements but {expected} are needed");
            }
        }
    }
}
