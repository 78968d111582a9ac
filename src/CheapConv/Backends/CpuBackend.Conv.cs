using System.Numerics;
using CheapConv.Problems;

namespace CheapConv.Backends;

// The convolution family of the reference (see CpuBackend.cs).
public sealed partial class CpuBackend
{
    /// <summary>y[n,k,p,q] = Σ_{c in group(k), r, s} x[n, c, p·stride−pad+r, q·stride−pad+s] · w[k, c, r, s].</summary>
    internal static void Conv2dForward<T>(ConvProblem pr, T[] x, T[] w, T[] y, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T>
    {
        CheckLengths(pr, ("x", x.Length, pr.InputElements), ("w", w.Length, pr.WeightElements), ("y", y.Length, pr.OutputElements));
        int cg = pr.ChannelsPerGroup, kg = pr.FiltersPerGroup;
        Parallel.For(0, pr.N * pr.K, parallel ?? Unbounded, nk =>
        {
            int n = nk / pr.K, k = nk % pr.K, group = k / kg;
            for (int p = 0; p < pr.P; p++)
            {
                for (int q = 0; q < pr.Q; q++)
                {
                    var acc = T.Zero;
                    for (int c = 0; c < cg; c++)
                    {
                        for (int r = 0; r < pr.R; r++)
                        {
                            int h = p * pr.StrideH - pr.PadH + r;
                            if (h < 0 || h >= pr.H)
                            {
                                continue;
                            }

                            for (int s = 0; s < pr.S; s++)
                            {
                                int wi = q * pr.StrideW - pr.PadW + s;
                                if (wi < 0 || wi >= pr.W)
                                {
                                    continue;
                                }

                                acc += x[InputIndex(pr, n, group * cg + c, h, wi)] * w[WeightIndex(pr, cg, k, c, r, s)];
                            }
                        }
                    }

                    y[OutputIndex(pr, n, k, p, q)] = acc;
                }
            }
        });
    }

    /// <summary>dx = ∂(Σ y·dy)/∂x: every output position scatters dy·w back over its window, written as a gather.</summary>
    internal static void Conv2dBackwardData<T>(ConvProblem pr, T[] dy, T[] w, T[] dx, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T>
    {
        CheckLengths(pr, ("dy", dy.Length, pr.OutputElements), ("w", w.Length, pr.WeightElements), ("dx", dx.Length, pr.InputElements));
        int cg = pr.ChannelsPerGroup, kg = pr.FiltersPerGroup;
        Parallel.For(0, pr.N * pr.C, parallel ?? Unbounded, nc =>
        {
            int n = nc / pr.C, c = nc % pr.C, group = c / cg, cInGroup = c % cg;
            for (int h = 0; h < pr.H; h++)
            {
                for (int wi = 0; wi < pr.W; wi++)
                {
                    var acc = T.Zero;
                    for (int k = group * kg; k < (group + 1) * kg; k++)
                    {
                        for (int r = 0; r < pr.R; r++)
                        {
                            int hp = h + pr.PadH - r;
                            if (hp < 0 || hp % pr.StrideH != 0 || hp / pr.StrideH >= pr.P)
                            {
                                continue;
                            }

                            for (int s = 0; s < pr.S; s++)
                            {
                                int wq = wi + pr.PadW - s;
                                if (wq < 0 || wq % pr.StrideW != 0 || wq / pr.StrideW >= pr.Q)
                                {
                                    continue;
                                }

                                acc += dy[OutputIndex(pr, n, k, hp / pr.StrideH, wq / pr.StrideW)] * w[WeightIndex(pr, cg, k, cInGroup, r, s)];
                            }
                        }
                    }

                    dx[InputIndex(pr, n, c, h, wi)] = acc;
                }
            }
        });
    }

    /// <summary>dw[k,c,r,s] = Σ_{n,p,q} dy[n,k,p,q] · x[n, group(k)·C/groups + c, p·stride−pad+r, q·stride−pad+s].</summary>
    internal static void Conv2dBackwardWeight<T>(ConvProblem pr, T[] x, T[] dy, T[] dw, ParallelOptions? parallel = null) where T : IFloatingPointIeee754<T>
    {
        CheckLengths(pr, ("x", x.Length, pr.InputElements), ("dy", dy.Length, pr.OutputElements), ("dw", dw.Length, pr.WeightElements));
        int cg = pr.ChannelsPerGroup, kg = pr.FiltersPerGroup;
        Parallel.For(0, pr.K, parallel ?? Unbounded, k =>
        {
            int group = k / kg;
            for (int c = 0; c < cg; c++)
            {
                for (int r = 0; r < pr.R; r++)
                {
                    for (int s = 0; s < pr.S; s++)
                    {
                        var acc = T.Zero;
                        for (int n = 0; n < pr.N; n++)
                        {
                            for (int p = 0; p < pr.P; p++)
                            {
                                int h = p * pr.StrideH - pr.PadH + r;
                                if (h < 0 || h >= pr.H)
                                {
                                    continue;
                                }

                                for (int q = 0; q < pr.Q; q++)
                                {
                                    int wi = q * pr.StrideW - pr.PadW + s;
                                    if (wi < 0 || wi >= pr.W)
                                    {
                                        continue;
                                    }

                                    acc += dy[OutputIndex(pr, n, k, p, q)] * x[InputIndex(pr, n, group * cg + c, h, wi)];
                                }
                            }
                        }

                        dw[WeightIndex(pr, cg, k, c, r, s)] = acc;
                    }
                }
            }
        });
    }

    private static int InputIndex(in ConvProblem pr, int n, int c, int h, int w) => ((n * pr.C + c) * pr.H + h) * pr.W + w;

    private static int OutputIndex(in ConvProblem pr, int n, int k, int p, int q) => ((n * pr.K + k) * pr.P + p) * pr.Q + q;

    // cg = C / groups is passed in: a division per multiply-add would dominate the loops.
    private static int WeightIndex(in ConvProblem pr, int cg, int k, int c, int r, int s) => ((k * cg + c) * pr.R + r) * pr.S + s;

    private static void CheckLengths(ConvProblem pr, params ReadOnlySpan<(string Name, int Actual, long Expected)> tensors)
    {
        foreach (var (name, actual, expected) in tensors)
        {
            if (actual != expected)
            {
                throw new ArgumentException($"{name} has {actual} elements but the problem ({pr}) needs {expected}");
            }
        }
    }
}
