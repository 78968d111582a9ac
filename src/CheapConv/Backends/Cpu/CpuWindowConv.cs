using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using CheapConv.Problems;

namespace CheapConv.Backends.Cpu;

/// <summary>
/// The forward pass of a stride-1 convolution as a GEMM per group whose B operand is never packed: the micro-kernel reads
/// each depth step (c, r, s) of a panel of 32 output positions straight from the image's zero-padded planes, as two runs of
/// 16 floats (at stride 1, 16 consecutive output positions of one output row are 16 consecutive floats of a padded row), or
/// as four runs of 8 where Q is an odd multiple of 8 (WRN's 8 × 8 stage: a panel spans four output rows).
/// </summary>
/// <remarks>
/// Why: with im2col, every image's column matrix (C·R·S × P·Q floats, 9× the image for a 3 × 3) is written once and read
/// back by the GEMM; for a grouped 3 × 3 with few filters per group that pass costs as much as the multiply-adds. Here the
/// only extra memory pass is the padding of the image.
/// Same sums as <see cref="CpuGemm"/>'s 8 × 32 Vector512 kernel over the same packed weights: the depth is cut into the
/// same ⌈C·R·S/256⌉ equal blocks, each block's chain of fused multiply-adds runs in increasing depth, and the block sums are
/// added to the output in increasing order — so the results are those of <see cref="CpuConv.Forward"/>'s packed path, bit
/// for bit, and independent of the thread count (threads only take whole images).
/// </remarks>
internal static unsafe class CpuWindowConv
{
    private const int Rows = 8;
    private const int Columns = 32;
    private const int Half = 16;
    private const int Quarter = 8;

    /// <summary>The largest C·R·S per group whose offset table goes on the stack (16 KiB).</summary>
    private const int MaxDepth = 4096;

    /// <summary>
    /// The fewest filters per group for which quarters (Q an odd multiple of 8) lose to the packed path: each depth step
    /// joins its four runs with two inserts, which compete with the multiply-adds, while the packed path's cost beyond the
    /// GEMM (writing the column matrix) is shared by all the group's filters. Measured at batch 128 on one core (CPU time):
    /// dense 128 → 128 at 8 × 8, forward 27.8 ms with quarters against 25.8 packed (and the same for its data gradient, a
    /// forward pass); grouped 4 × 32 at 8 × 8, quarters 11.9 ms against 15.4–16.2 packed (b297c86).
    /// </summary>
    private const int QuarterMaxFilters = 128;

    /// <summary>
    /// True where this path applies: Vector512 hardware (the packed weights then have <see cref="CpuGemm.PanelRows"/> = 8),
    /// stride 1, Q a multiple of 16 (halves) or of 8 with fewer than <see cref="QuarterMaxFilters"/> filters per group
    /// (quarters: each lies in one output row), several images (one image keeps the packed path, whose GEMM spreads over
    /// the threads), and not a stride-1 unpadded 1 × 1 (its column matrix is the image itself).
    /// </summary>
    public static bool Applies(in ConvProblem pr) =>
        Vector512.IsHardwareAccelerated && CpuGemm.PanelRows == Rows && CpuGemm.PanelWidth == Columns
        && pr.StrideH == 1 && pr.StrideW == 1 && pr.N > 1
        && (pr.Q % Half == 0 || (pr.Q % Quarter == 0 && pr.FiltersPerGroup < QuarterMaxFilters))
        && !(pr.R == 1 && pr.S == 1 && pr.PadH == 0 && pr.PadW == 0)
        && pr.ChannelsPerGroup * pr.R * pr.S <= MaxDepth;

    /// <summary>
    /// y for image <paramref name="n"/>: <paramref name="padded"/> holds its C planes zero-padded to ph × pw, and
    /// <paramref name="packedWeights"/> every group's weights packed by <see cref="CpuGemm.PackWholeA"/> (group after group).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ForwardImage(in ConvProblem pr, float* padded, int ph, int pw, float* packedWeights, float* y, int n)
    {
        int cg = pr.ChannelsPerGroup, kg = pr.FiltersPerGroup, taps = pr.R * pr.S, crs = cg * taps, pq = pr.P * pr.Q;
        var planeLength = ph * pw;
        // Depth step (c, r, s) of a panel reads at offset c·ph·pw + r·pw + s from the panel's first position in plane 0.
        var offsets = stackalloc int[crs];
        for (var row = 0; row < crs; row++)
        {
            int c = row / taps, tap = row % taps;
            offsets[row] = c * planeLength + tap / pr.S * pw + tap % pr.S;
        }

        // The same depth blocks as CpuGemm: ⌈crs/BlockDepth⌉ equal blocks, a function of crs alone.
        var depthBlocks = (crs + CpuGemm.BlockDepth - 1) / CpuGemm.BlockDepth;
        var depthStep = (crs + depthBlocks - 1) / depthBlocks;
        var weightStride = CpuGemm.PackedALength(kg, crs);
        var edge = stackalloc float[Rows * Columns];
        var quarters = stackalloc float*[Columns / Quarter];
        for (var g = 0; g < pr.Groups; g++)
        {
            var planes = padded + (long)g * cg * planeLength;
            var weights = packedWeights + g * weightStride;
            var output = y + ((long)n * pr.K + (long)g * kg) * pq;
            for (var first = 0; first < pq; first += Columns)
            {
                var columns = Math.Min(Columns, pq - first);
                // Output position i = p·Q + q sits at padded[p·pw + q] of plane 0 (tap 0, 0). A missing quarter (past pq)
                // reads the first one again: its sums go to the edge tile and are never stored.
                for (var j = 0; j < Columns / Quarter; j++)
                {
                    var position = first + j * Quarter;
                    quarters[j] = position < pq ? planes + position / pr.Q * pw + position % pr.Q : quarters[0];
                }

                var halves = pr.Q % Half == 0;
                for (var i0 = 0; i0 < kg; i0 += Rows)
                {
                    var rows = Math.Min(Rows, kg - i0);
                    var panelA = weights + (long)i0 * crs;
                    var target = output + (long)i0 * pq + first;
                    var full = rows == Rows && columns == Columns;
                    for (var depth0 = 0; depth0 < crs; depth0 += depthStep)
                    {
                        var kc = Math.Min(depthStep, crs - depth0);
                        var overwrite = depth0 == 0;
                        float* c = full ? target : edge;
                        int ldc = full ? pq : Columns;
                        if (halves)
                        {
                            CpuGemm.Kernel512(kc, panelA + (long)depth0 * Rows, new WindowPanel(quarters[0], quarters[2], offsets + depth0),
                                c, ldc, full ? overwrite : true);
                        }
                        else
                        {
                            CpuGemm.Kernel512(kc, panelA + (long)depth0 * Rows, new QuarterWindowPanel(quarters, offsets + depth0),
                                c, ldc, full ? overwrite : true);
                        }

                        if (!full)
                        {
                            for (var i = 0; i < rows; i++)
                            {
                                for (var j = 0; j < columns; j++)
                                {
                                    ref var element = ref target[(long)i * pq + j];
                                    element = overwrite ? edge[i * Columns + j] : element + edge[i * Columns + j];
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>B read from the padded planes: depth step p is left[offsets[p] …+16] and right[offsets[p] …+16].</summary>
    private readonly struct WindowPanel(float* left, float* right, int* offsets) : CpuGemm.IPanel512
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Load(int step, out Vector512<float> leftValues, out Vector512<float> rightValues)
        {
            var offset = offsets[step];
            leftValues = Vector512.Load(left + offset);
            rightValues = Vector512.Load(right + offset);
        }
    }

    /// <summary>B read from the padded planes in quarters: depth step p is quarters[j][offsets[p] …+8] for j = 0…3.</summary>
    private readonly struct QuarterWindowPanel(float** quarters, int* offsets) : CpuGemm.IPanel512
    {
        private readonly float* _q0 = quarters[0], _q1 = quarters[1], _q2 = quarters[2], _q3 = quarters[3];

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Load(int step, out Vector512<float> leftValues, out Vector512<float> rightValues)
        {
            var offset = offsets[step];
            leftValues = Vector512.Create(Vector256.Load(_q0 + offset), Vector256.Load(_q1 + offset));
            rightValues = Vector512.Create(Vector256.Load(_q2 + offset), Vector256.Load(_q3 + offset));
        }
    }
}
