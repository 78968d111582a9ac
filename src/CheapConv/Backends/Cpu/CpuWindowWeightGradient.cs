using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using CheapConv.Problems;

namespace CheapConv.Backends.Cpu;

/// <summary>
/// The weight gradient of a 3 × 3 convolution with a multiple of 32 filters per group (WRN's dense layers) as
/// dwᵀ = columns(x) · dyᵀ, where the column matrix is never written: a register tile of one channel's 9 taps × 32 filters
/// runs over the output positions, broadcasting the 9 taps of each position straight from the image's zero-padded plane
/// (three rows, three neighbouring floats each) and loading the position's 32 filter gradients from dyᵀ, the only operand
/// packed (K·P·Q floats per image against the column matrix's 9·C·P·Q).
/// </summary>
/// <remarks>
/// Why: the GEMM path packed the transposed column matrix (9× the image) for every image, a transposing pass that cost a
/// fifth of the weight gradient's time. Here every depth step is 18 fused multiply-adds (9 taps × 2 vectors of 16 filters)
/// for 9 broadcasts and 2 loads, all from L1 or L2.
/// Determinism: each tile entry is, per image, one chain of fused multiply-adds over the output positions in order, added to
/// the chunk's sum image by image; chunks of <see cref="CpuConv.ImagesPerChunk"/> images are summed in order by the caller.
/// The order depends on the shape alone, never on the thread count (threads take whole chunks).
/// </remarks>
internal static unsafe class CpuWindowWeightGradient
{
    /// <summary>Filters per tile: two Vector512 of 16.</summary>
    private const int Filters = 32;

    private const int Taps = 9;

    private static readonly ScratchArrays PaddedScratch = new(pinned: true);
    private static readonly ScratchArrays PackedScratch = new(pinned: true);
    private static readonly ScratchArrays SumScratch = new(pinned: true);

    /// <summary>
    /// The fewest output positions per image for this path. Each tile is stored once per image, so a short image pays that
    /// store often, where the GEMM path merges up to 8 images into one product: measured per call on one core at batch 128
    /// (CPU time, WRN-40-2's stages), this path took 18% less time than the GEMM at 32 × 32 and 8% less at 16 × 16, but 4%
    /// more at 8 × 8 (64 positions).
    /// </summary>
    private const int MinPositions = 256;

    /// <summary>
    /// True where this path applies: Vector512 hardware, a 3 × 3 filter, whole tiles of 32 filters per group, at least
    /// <see cref="MinPositions"/> output positions per image.
    /// </summary>
    public static bool Applies(in ConvProblem pr) =>
        Vector512.IsHardwareAccelerated && pr.R == 3 && pr.S == 3 && pr.FiltersPerGroup % Filters == 0 && pr.P * pr.Q >= MinPositions;

    /// <summary>
    /// partials[offset …] (dw's layout, K × C/groups × 3 × 3) = Σ over images [first, last) of that image's weight gradient.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Chunk(in ConvProblem pr, float[] x, float[] dy, float[] partials, long offset, int first, int last)
    {
        int cg = pr.ChannelsPerGroup, kg = pr.FiltersPerGroup, pq = pr.P * pr.Q;
        var (ph, pw) = CpuConv.PaddedSize(pr);
        using var paddedPlanes = PaddedScratch.Rent((long)pr.C * ph * pw);
        using var packedGradient = PackedScratch.Rent((long)kg * pq);
        // dwᵀ per group, [c][tap][k] (the tiles' layout), turned into dw's [k][c][tap] at the end.
        using var transposedSums = SumScratch.Rent((long)pr.C * Taps * kg);
        var sources = stackalloc float*[8];
        fixed (float* px = x, pdy = dy, padded = paddedPlanes.Array, packed = packedGradient.Array, sums = transposedSums.Array, pp = partials)
        {
            for (var n = first; n < last; n++)
            {
                CpuConv.PadImage(pr, px + (long)n * pr.C * pr.H * pr.W, padded, ph, pw);
                for (var g = 0; g < pr.Groups; g++)
                {
                    PackTransposed(pdy + ((long)n * pr.K + (long)g * kg) * pq, kg, pq, packed, sources);
                    for (var f = 0; f < kg; f += Filters)
                    {
                        for (var c = 0; c < cg; c++)
                        {
                            var channel = g * cg + c;
                            Kernel(padded + (long)channel * ph * pw, pw, pr.P, pr.Q, pr.StrideH, pr.StrideW, packed + (long)f * pq,
                                sums + (long)channel * Taps * kg + f, kg, overwrite: n == first);
                        }
                    }
                }
            }

            var target = pp + offset;
            for (var g = 0; g < pr.Groups; g++)
            {
                for (var k = 0; k < kg; k++)
                {
                    for (var row = 0; row < cg * Taps; row++)
                    {
                        target[((long)g * kg + k) * cg * Taps + row] = sums[((long)g * cg * Taps + row) * kg + k];
                    }
                }
            }
        }
    }

    /// <summary>
    /// dyᵀ in panels of 32 filters: panel f / 32 holds, for each output position i, filters f … f + 31 at
    /// packed[f·pq + i·32 …] (8 × 8 register transposes where whole runs of 8 positions allow, else one float at a time).
    /// </summary>
    private static void PackTransposed(float* gradient, int kg, int pq, float* packed, float** sources)
    {
        for (var f8 = 0; f8 < kg; f8 += 8)
        {
            var panel = packed + (long)(f8 / Filters) * Filters * pq + f8 % Filters;
            for (var lane = 0; lane < 8; lane++)
            {
                sources[lane] = gradient + (long)(f8 + lane) * pq;
            }

            var i = 0;
            for (; i <= pq - 8; i += 8)
            {
                CpuConv.Transpose8(sources, i, panel + (long)i * Filters, Filters);
            }

            for (; i < pq; i++)
            {
                for (var lane = 0; lane < 8; lane++)
                {
                    panel[(long)i * Filters + lane] = sources[lane][i];
                }
            }
        }
    }

    /// <summary>
    /// c[tap·ldc …+32] (+)= Σ over output positions (row, col) of plane[(row·strideH + r)·pw + col·strideW + s]·b[position·32 …]
    /// for the 9 taps (r, s): 18 accumulators, one chain per entry in position order, stored once.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel(float* plane, int pw, int rows, int columns, int strideH, int strideW, float* b, float* c, int ldc, bool overwrite)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default;
        for (var row = 0; row < rows; row++)
        {
            var r0 = plane + (long)row * strideH * pw;
            float* r1 = r0 + pw, r2 = r0 + 2 * pw;
            for (var col = 0; col < columns; col++)
            {
                var b0 = Vector512.Load(b);
                var b1 = Vector512.Load(b + 16);
                b += Filters;
                var at = col * strideW;
                var x = Vector512.Create(r0[at]);
                c00 = Vector512.FusedMultiplyAdd(x, b0, c00);
                c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
                x = Vector512.Create(r0[at + 1]);
                c10 = Vector512.FusedMultiplyAdd(x, b0, c10);
                c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
                x = Vector512.Create(r0[at + 2]);
                c20 = Vector512.FusedMultiplyAdd(x, b0, c20);
                c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
                x = Vector512.Create(r1[at]);
                c30 = Vector512.FusedMultiplyAdd(x, b0, c30);
                c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
                x = Vector512.Create(r1[at + 1]);
                c40 = Vector512.FusedMultiplyAdd(x, b0, c40);
                c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
                x = Vector512.Create(r1[at + 2]);
                c50 = Vector512.FusedMultiplyAdd(x, b0, c50);
                c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
                x = Vector512.Create(r2[at]);
                c60 = Vector512.FusedMultiplyAdd(x, b0, c60);
                c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
                x = Vector512.Create(r2[at + 1]);
                c70 = Vector512.FusedMultiplyAdd(x, b0, c70);
                c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
                x = Vector512.Create(r2[at + 2]);
                c80 = Vector512.FusedMultiplyAdd(x, b0, c80);
                c81 = Vector512.FusedMultiplyAdd(x, b1, c81);
            }
        }

        CpuGemm.Store512(c, c00, c01, overwrite);
        CpuGemm.Store512(c + ldc, c10, c11, overwrite);
        CpuGemm.Store512(c + 2L * ldc, c20, c21, overwrite);
        CpuGemm.Store512(c + 3L * ldc, c30, c31, overwrite);
        CpuGemm.Store512(c + 4L * ldc, c40, c41, overwrite);
        CpuGemm.Store512(c + 5L * ldc, c50, c51, overwrite);
        CpuGemm.Store512(c + 6L * ldc, c60, c61, overwrite);
        CpuGemm.Store512(c + 7L * ldc, c70, c71, overwrite);
        CpuGemm.Store512(c + 8L * ldc, c80, c81, overwrite);
    }
}
