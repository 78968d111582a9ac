using System.Runtime.CompilerServices;
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using CheapConv.Problems;

namespace CheapConv.Backends.Cpu;

/// <summary>
/// The fast float convolution passes behind <see cref="CpuBackend"/>'s <see cref="IBackend"/> members: per image, a
/// <see cref="CpuGemm"/> micro-kernel per group for dense, grouped and pointwise problems, whose B operand is read from the
/// zero-padded planes at stride 1 (<see cref="CpuWindowConv"/>) or from the column matrix written, in L2-sized chunks,
/// straight into the packed-B layout (im2col; a stride-1 unpadded 1×1 needs none: the image is the column matrix); the
/// stride-1 data gradient as the forward pass of the transposed problem; and, when every filter sees one input channel
/// (depthwise, with or without a channel multiplier), where a GEMM of depth R·S would be mostly overhead, the vector
/// loops of <see cref="CpuDepthwiseConv"/>.
/// </summary>
/// <remarks>
/// Deterministic for any thread count: work is split over images (forward, backward-data) or output channels,
/// and the backward-weight sum over the batch runs in fixed chunks of <see cref="ImagesPerChunk"/> images whose
/// partial sums are added in chunk order. Callers check the storage lengths first.
/// </remarks>
internal static unsafe class CpuConv
{
    /// <summary>Images whose weight gradients are summed together before the chunk sums are added in order.</summary>
    public const int ImagesPerChunk = 8;

    // Scratch for the parallel bodies (kept from call to call, see ScratchArrays); pinned, as the packed GEMM panels are.
    private static readonly ScratchArrays ColumnScratch = new(pinned: true);
    private static readonly ScratchArrays PaddedScratch = new(pinned: true);
    private static readonly ScratchArrays PackedWeightScratch = new(pinned: false);
    private static readonly ScratchArrays PartialScratch = new(pinned: false);
    private static readonly ScratchArrays GradientScratch = new(pinned: false);
    private static readonly ScratchArrays FlippedWeightScratch = new(pinned: false);

    /// <summary>
    /// y = conv(x, w): per image, GEMMs that read B from the padded planes (<see cref="CpuWindowConv"/>) or from the column
    /// matrix written straight into the GEMM's packed-B layout; then the <paramref name="epilogue"/>, if any, on each image.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(ConvProblem pr, float[] x, float[] w, float[] y, ParallelOptions parallel, ConvEpilogue? epilogue = null)
    {
        if (CpuDepthwiseConv.Applies(pr))
        {
            // Planes, not images, are the parallel unit here: the epilogue follows in a pass of its own.
            CpuDepthwiseConv.Forward(pr, x, w, y, parallel);
            if (epilogue is not null)
            {
                ForEachImage(pr.N, parallel, n => epilogue.Apply(pr, y, n));
            }

            return;
        }

        // One image: the parallelism goes inside its GEMM; several: across images, each GEMM serial.
        var inner = pr.N == 1 ? parallel : null;
        using var packed = PackWeights(pr, w, transpose: false);
        var packedWeights = packed.Array!;
        if (CpuWindowConv.Applies(pr))
        {
            ForEachImage(pr.N, parallel, n =>
            {
                ForwardImageFromWindows(pr, x, packedWeights, y, n);
                epilogue?.Apply(pr, y, n);
            });
            return;
        }

        ForEachImage(pr.N, parallel, n =>
        {
            ForwardImage(pr, x, packedWeights, y, n, inner);
            epilogue?.Apply(pr, y, n);
        });
    }

    /// <summary>One image through <see cref="CpuWindowConv"/>: its planes zero-padded, then GEMMs that read B from them.</summary>
    private static void ForwardImageFromWindows(in ConvProblem pr, float[] x, float[] packedWeights, float[] y, int n)
    {
        var (ph, pw) = PaddedSize(pr);
        using var paddedPlanes = PaddedScratch.Rent((long)pr.C * ph * pw);
        fixed (float* px = x, pwt = packedWeights, py = y, padded = paddedPlanes.Array)
        {
            PadImage(pr, px + (long)n * pr.C * pr.H * pr.W, padded, ph, pw);
            CpuWindowConv.ForwardImage(pr, padded, ph, pw, pwt, py, n);
        }
    }

    /// <summary>
    /// The weights of every group packed once for the GEMM's A side (w_g, kg × crs; or w_gᵀ, crs × kg, for the backward-data
    /// pass), group after group, so the images of a batch do not each repack them; the caller disposes the lease when done.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ScratchArrays.Lease PackWeights(in ConvProblem pr, float[] w, bool transpose)
    {
        int kg = pr.FiltersPerGroup, crs = pr.ChannelsPerGroup * pr.R * pr.S;
        var (rows, depth) = transpose ? (crs, kg) : (kg, crs);
        var groupLength = CpuGemm.PackedALength(rows, depth);
        var lease = PackedWeightScratch.Rent(pr.Groups * groupLength);
        fixed (float* pw = w, pp = lease.Array)
        {
            for (var g = 0; g < pr.Groups; g++)
            {
                // w_g is stored kg × crs (row stride crs); its transpose is read with transposeA from the same storage.
                CpuGemm.PackWholeA(transpose, rows, depth, pw + (long)g * kg * crs, crs, pp + g * groupLength);
            }
        }

        return lease;
    }

    /// <summary>
    /// Output positions per chunk of the forward pass: whole packed panels whose column-matrix part (all groups) is about
    /// <see cref="ChunkFloats"/> floats, so it is packed and multiplied while it sits in the core's L2 cache.
    /// </summary>
    private static int ForwardChunkColumns(in ConvProblem pr)
    {
        int nr = CpuGemm.PanelWidth, rows = pr.C * pr.R * pr.S, pq = pr.P * pr.Q;
        var panels = Math.Max(1, ChunkFloats / (rows * nr));
        return Math.Min(panels * nr, (pq + nr - 1) / nr * nr);
    }

    /// <summary>
    /// The column-matrix floats packed at once (256 KiB): a whole image's 32 × 32 stage is 1.2 MiB (32 channels × 9 taps ×
    /// 1024 positions), more than a Zen 4 core's 1 MiB L2, so packing it whole made both the pack and the GEMM's reads of B go to L3.
    /// </summary>
    private const int ChunkFloats = 64 * 1024;

    /// <summary>
    /// One image, in chunks of output positions (whole packed panels): the chunk's column matrix is written straight into
    /// the GEMM's packed-B layout, then each group's GEMM fills the chunk's columns of y. Chunking changes no sum: every
    /// output element is still the same chain over the same depth blocks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardImage(in ConvProblem pr, float[] x, float[] packedWeights, float[] y, int n, ParallelOptions? inner)
    {
        int cg = pr.ChannelsPerGroup, kg = pr.FiltersPerGroup, taps = pr.R * pr.S, crs = cg * taps, pq = pr.P * pr.Q, nr = CpuGemm.PanelWidth;
        var chunkColumns = ForwardChunkColumns(pr);
        var groupStride = CpuGemm.PackedLength(crs, chunkColumns);
        var identity = IsIdentityColumns(pr);
        var (ph, pw) = PaddedSize(pr);
        using var columns = ColumnScratch.Rent(pr.Groups * groupStride);
        // Whole runs of 8 output positions per vector (8 | Q, so a run never straddles a packed panel: 8 | NR), stride 1 or 2.
        var vectorRows = Avx2.IsSupported && pr.Q % 8 == 0 && pr.StrideW <= 2;
        // The stride-2 gather reads 16 floats for 8 even ones: up to one past a plane's last, so the planes get a little slack.
        using var paddedPlanes = identity ? default : PaddedScratch.Rent((long)pr.C * ph * pw + 2 * Vector256<float>.Count);
        float[] buffer = columns.Array!;
        float[]? paddedBuffer = paddedPlanes.Array;
        var weightStride = CpuGemm.PackedALength(kg, crs);
        var panelStride = (long)crs * nr;
        fixed (float* px = x, pwt = packedWeights, py = y, packed = buffer, padded = paddedBuffer)
        {
            var image = px + (long)n * pr.C * pr.H * pr.W;
            if (!identity)
            {
                PadImage(pr, image, padded, ph, pw);
            }

            for (var first = 0; first < pq; first += chunkColumns)
            {
                var count = Math.Min(chunkColumns, pq - first);
                for (var c = 0; c < pr.C; c++)
                {
                    for (var tap = 0; tap < taps; tap++)
                    {
                        // Row (c, tap) of the column matrix goes to row (c mod cg)·taps + tap of its group's packed panels.
                        var destination = packed + c / cg * groupStride + ((c % cg) * taps + tap) * nr;
                        if (identity)
                        {
                            WriteRun(image + (long)c * pq + first, 1, 0, count, destination, panelStride, nr);
                        }
                        else
                        {
                            var plane = padded + (long)c * ph * pw + tap / pr.S * pw + tap % pr.S;
                            if (vectorRows)
                            {
                                WriteRowVectors(plane, pr.StrideH * pw, pr.StrideW, pr.Q, first, count, destination, panelStride, nr);
                            }
                            else
                            {
                                WriteRows(plane, pr.StrideH * pw, pr.StrideW, pr.Q, first, count, destination, panelStride, nr);
                            }
                        }

                        // Zero the lanes past the chunk's end in its last panel (they multiply into columns that are never stored).
                        var last = destination + (long)(count / nr) * panelStride;
                        for (var lane = count % nr; lane != 0 && lane < nr; lane++)
                        {
                            last[lane] = 0;
                        }
                    }
                }

                for (var g = 0; g < pr.Groups; g++)
                {
                    CpuGemm.MultiplyPackedA(kg, count, crs, pwt + g * weightStride, packed + g * groupStride, null, 0,
                        py + ((long)n * pr.K + (long)g * kg) * pq + first, pq, accumulate: false, parallel: inner);
                }
            }
        }
    }

    /// <summary>
    /// Column-matrix entries first … first+count−1 of one row: entry p·Q + q is source[p·rowPitch + q·stride], written
    /// as runs along q (see <see cref="WriteRun"/>), entry first at lane 0 of the first panel.
    /// </summary>
    private static void WriteRows(float* source, int rowPitch, int stride, int columns, int first, int count, float* row, long panelStride, int nr)
    {
        var end = first + count;
        for (var p = first / columns; p * columns < end; p++)
        {
            int q0 = Math.Max(first - p * columns, 0), q1 = Math.Min(end - p * columns, columns);
            WriteRun(source + (long)p * rowPitch + q0 * stride, stride, p * columns + q0 - first, q1 - q0, row, panelStride, nr);
        }
    }

    /// <summary>
    /// Writes <paramref name="count"/> values source[q·stride] as column-matrix entries first … first+count−1 of one row whose
    /// packed panels are <paramref name="panelStride"/> apart (entry i: panel i / nr, lane i mod nr).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteRun(float* source, int stride, int first, int count, float* row, long panelStride, int nr)
    {
        var q = 0;
        while (q < count)
        {
            int index = first + q, lane = index % nr, run = Math.Min(nr - lane, count - q);
            var target = row + index / nr * panelStride + lane;
            if (stride == 1)
            {
                Copy(source + q, target, run);
            }
            else
            {
                for (var j = 0; j < run; j++)
                {
                    target[j] = source[(q + j) * stride];
                }
            }

            q += run;
        }
    }

    /// <summary>
    /// As <see cref="WriteRows"/>, 8 entries per vector: stride 1 or 2, Q and first multiples of 8, so the runs of 8
    /// fill the panels' lanes in order and never straddle two panels.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteRowVectors(float* source, int rowPitch, int stride, int columns, int first, int count, float* row, long panelStride, int nr)
    {
        int p = first / columns, q = first % columns, lane = 0;
        var line = source + (long)p * rowPitch;
        var panel = row;
        for (var done = 0; done < count; done += 8)
        {
            var values = stride == 1 ? Avx.LoadVector256(line + q) : EvenLanes(line + 2 * q);
            Avx.Store(panel + lane, values);
            lane += 8;
            if (lane == nr)
            {
                lane = 0;
                panel += panelStride;
            }

            q += 8;
            if (q == columns)
            {
                q = 0;
                line += rowPitch;
            }
        }
    }

    /// <summary>source[0], source[2], …, source[14]: two loads, an in-lane shuffle of the even elements, a cross-lane reorder.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> EvenLanes(float* source)
    {
        // Shuffle 0x88 takes elements 0 and 2 of each 128-bit lane of a, then of b: a0 a2 b0 b2 | a4 a6 b4 b6;
        // the 64-bit reorder 0, 2, 1, 3 makes it a0 a2 a4 a6 b0 b2 b4 b6.
        var mixed = Avx.Shuffle(Avx.LoadVector256(source), Avx.LoadVector256(source + 8), 0x88);
        return Avx2.Permute4x64(mixed.AsDouble(), 0xD8).AsSingle();
    }

    /// <summary>destination[0…count) = source[0…count) (short runs: no call overhead).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Copy(float* source, float* destination, int count)
    {
        var i = 0;
        for (; i <= count - Vector<float>.Count; i += Vector<float>.Count)
        {
            Vector.Load(source + i).Store(destination + i);
        }

        for (; i < count; i++)
        {
            destination[i] = source[i];
        }
    }

    /// <summary>The image's planes zero-padded to <see cref="PaddedSize"/>: every tap of every output is then in bounds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PadImage(in ConvProblem pr, float* image, float* padded, int ph, int pw)
    {
        for (var c = 0; c < pr.C; c++)
        {
            PadPlane(pr, image + (long)c * pr.H * pr.W, padded + (long)c * ph * pw, ph, pw);
        }
    }

    /// <summary>Row (r, s) of one channel's column matrix from its padded plane: row[p·Q + q] = padded[(p·strideH + r)·pw + q·strideW + s].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ColumnRow(in ConvProblem pr, float* plane, int pw, int r, int s, float* row)
    {
        for (var p = 0; p < pr.P; p++)
        {
            var source = plane + (p * pr.StrideH + r) * pw + s;
            var destination = row + p * pr.Q;
            if (pr.StrideW == 1)
            {
                Copy(source, destination, pr.Q);
            }
            else
            {
                for (var q = 0; q < pr.Q; q++)
                {
                    destination[q] = source[q * pr.StrideW];
                }
            }
        }
    }

    /// <summary>dx += the data gradient: computed whole into a scratch array, then added (one rounded add of the rounded
    /// gradient per element, the bits of <see cref="CpuVector.Axpy"/> with α = 1).</summary>
    public static void BackwardDataAccumulate(ConvProblem pr, float[] dy, float[] w, float[] dx, ParallelOptions parallel)
    {
        var count = checked((int)pr.InputElements);
        using var lease = GradientScratch.Rent(count);
        BackwardData(pr, dy, w, lease.Array!, parallel);
        CpuVector.Add(count, dx, lease.Array!, dx, parallel);
    }

    /// <summary>dx = convᵀ(dy, w): per image and group the column-matrix gradient wᵀ·dy, then col2im (the identity for a stride-1 1×1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackwardData(ConvProblem pr, float[] dy, float[] w, float[] dx, ParallelOptions parallel)
    {
        if (CpuDepthwiseConv.Applies(pr))
        {
            CpuDepthwiseConv.BackwardData(pr, dy, w, dx, parallel);
            return;
        }

        if (TransposedForward(pr) is { } transposed && !IsIdentityColumns(pr)
            && (CpuWindowConv.Applies(transposed) || (pr.P == pr.H && pr.Q == pr.W)))
        {
            // At stride 1 the data gradient is itself a stride-1 convolution (see TransposedForward), so it takes the
            // forward pass — its window GEMMs, or its chunked vector pack — instead of a column-matrix GEMM and a col2im
            // pass over 9× the image. Where the output is smaller than the input (pad < (R−1)/2) and no window GEMM
            // applies, the old way stays: the transposed forward pass would also multiply the zeros of dy's padding.
            using var flipped = FlippedWeightScratch.Rent(pr.WeightElements);
            FlipWeights(pr, w, flipped.Array!);
            Forward(transposed, dy, flipped.Array!, dx, parallel);
            return;
        }

        var identity = IsIdentityColumns(pr);
        // One image: the parallelism goes inside its GEMM; several: across images, each GEMM serial.
        var inner = pr.N == 1 ? parallel : null;
        using var packed = PackWeights(pr, w, transpose: true);
        var packedWeights = packed.Array!;
        ForEachImage(pr.N, parallel, n => BackwardDataImage(pr, dy, packedWeights, dx, n, identity, inner));
    }

    /// <summary>
    /// For stride 1 with pad ≤ R−1 (and S−1): dx = conv(dy, w′) with pad R−1−pad (S−1−pad), stride 1, the same groups, where
    /// w′ (C × K/groups × R × S) holds each group's weights transposed (channel ↔ filter) and flipped in r and s — dx[c, h, w]
    /// sums dy[k, h + pad − r, w + pad − s]·w[k, c, r, s], i.e. dy padded by R−1−pad read at tap R−1−r. Null otherwise.
    /// </summary>
    private static ConvProblem? TransposedForward(in ConvProblem pr)
    {
        if (pr.StrideH != 1 || pr.StrideW != 1 || pr.PadH > pr.R - 1 || pr.PadW > pr.S - 1)
        {
            return null;
        }

        // Built directly: the sizes are those of a valid problem already (Create would validate them again, allocating).
        return new ConvProblem
        {
            N = pr.N, C = pr.K, H = pr.P, W = pr.Q, K = pr.C, R = pr.R, S = pr.S,
            PadH = pr.R - 1 - pr.PadH, PadW = pr.S - 1 - pr.PadW, StrideH = 1, StrideW = 1, Groups = pr.Groups,
            P = pr.H, Q = pr.W, Layout = pr.Layout, DType = pr.DType,
        };
    }

    /// <summary>flipped = the weights of <see cref="TransposedForward"/>: flipped[g·cg + c, k, R−1−r, S−1−s] = w[g·kg + k, c, r, s].</summary>
    private static void FlipWeights(in ConvProblem pr, float[] w, float[] flipped)
    {
        int cg = pr.ChannelsPerGroup, kg = pr.FiltersPerGroup, taps = pr.R * pr.S;
        for (var g = 0; g < pr.Groups; g++)
        {
            for (var k = 0; k < kg; k++)
            {
                for (var c = 0; c < cg; c++)
                {
                    var source = ((g * kg + k) * cg + c) * taps;
                    var destination = ((g * cg + c) * kg + k) * taps;
                    for (var tap = 0; tap < taps; tap++)
                    {
                        flipped[destination + taps - 1 - tap] = w[source + tap];
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardDataImage(in ConvProblem pr, float[] dy, float[] packedWeights, float[] dx, int n, bool identity, ParallelOptions? inner)
    {
        int cg = pr.ChannelsPerGroup, kg = pr.FiltersPerGroup, taps = pr.R * pr.S, crs = cg * taps, pq = pr.P * pr.Q;
        var (ph, pw) = PaddedSize(pr);
        using var columnMatrix = identity ? default : ColumnScratch.Rent((long)pr.C * taps * pq);
        using var paddedPlanes = identity ? default : PaddedScratch.Rent((long)pr.C * ph * pw);
        float[]? columns = columnMatrix.Array, paddedBuffer = paddedPlanes.Array;
        var weightStride = CpuGemm.PackedALength(crs, kg);
        fixed (float* pdy = dy, pwt = packedWeights, pdx = dx, pcol = columns, padded = paddedBuffer)
        {
            var image = pdx + (long)n * pr.C * pr.H * pr.W;
            var col = identity ? image : pcol;
            for (var g = 0; g < pr.Groups; g++)
            {
                // col_g (crs × pq) = w_gᵀ (crs × kg, packed once per call) · dy_g (kg × pq).
                CpuGemm.MultiplyPackedA(crs, pq, kg, pwt + g * weightStride, null, pdy + ((long)n * pr.K + (long)g * kg) * pq, pq,
                    col + (long)g * crs * pq, pq, accumulate: false, parallel: inner);
            }

            if (identity)
            {
                return;
            }

            // col2im into the zero-padded planes (every tap in bounds), in the fixed order c, r, s, p, q; then the crop.
            new Span<float>(padded, checked(pr.C * ph * pw)).Clear();
            for (var c = 0; c < pr.C; c++)
            {
                var plane = padded + (long)c * ph * pw;
                for (var tap = 0; tap < taps; tap++)
                {
                    int r = tap / pr.S, s = tap % pr.S;
                    var row = col + ((long)c * taps + tap) * pq;
                    for (var p = 0; p < pr.P; p++)
                    {
                        var destination = plane + (p * pr.StrideH + r) * pw + s;
                        var source = row + p * pr.Q;
                        if (pr.StrideW == 1)
                        {
                            AddTo(source, destination, pr.Q);
                        }
                        else
                        {
                            for (var q = 0; q < pr.Q; q++)
                            {
                                destination[q * pr.StrideW] += source[q];
                            }
                        }
                    }
                }

                CropPlane(pr, plane, image + (long)c * pr.H * pr.W, ph, pw);
            }
        }
    }

    /// <summary>The image window of a padded plane (inverse of <see cref="PadPlane"/>): rows and columns no tap reached are 0.</summary>
    private static void CropPlane(in ConvProblem pr, float* padded, float* plane, int ph, int pw)
    {
        var columns = Math.Max(0, Math.Min(pr.W, pw - pr.PadW));
        for (var h = 0; h < pr.H; h++)
        {
            var destination = plane + h * pr.W;
            var row = h + pr.PadH;
            if (row >= ph)
            {
                new Span<float>(destination, pr.W).Clear();
                continue;
            }

            Copy(padded + row * pw + pr.PadW, destination, columns);
            new Span<float>(destination + columns, pr.W - columns).Clear();
        }
    }

    /// <summary>
    /// dw_g = Σ over the batch of dy_g,n · columns_g(x_n)ᵀ, in fixed chunks of images; the transposed column matrix
    /// is written straight into the GEMM's packed-B layout (panels of NR column-matrix rows, one output position per step).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackwardWeight(ConvProblem pr, float[] x, float[] dy, float[] dw, ParallelOptions parallel)
    {
        if (CpuDepthwiseConv.Applies(pr))
        {
            CpuDepthwiseConv.BackwardWeight(pr, x, dy, dw, parallel);
            return;
        }

        var chunks = (pr.N + ImagesPerChunk - 1) / ImagesPerChunk;
        if (chunks == 1)
        {
            BackwardWeightChunk(pr, x, dy, dw, 0, 0);
            return;
        }

        // Chunk i sums into partials[i·|dw| …]; every chunk overwrites all of its part (its first image does not
        // accumulate), so scratch needs no clearing.
        using var scratch = PartialScratch.Rent((long)chunks * dw.Length);
        var partials = scratch.Array!;
        ForEachImage(chunks, parallel, chunk => BackwardWeightChunk(pr, x, dy, partials, (long)chunk * dw.Length, chunk));
        SumInOrder(partials, chunks, dw, parallel);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardWeightChunk(in ConvProblem pr, float[] x, float[] dy, float[] partials, long partialOffset, int chunk)
    {
        int first = chunk * ImagesPerChunk, last = Math.Min(pr.N, first + ImagesPerChunk);
        if (CpuWindowWeightGradient.Applies(pr))
        {
            CpuWindowWeightGradient.Chunk(pr, x, dy, partials, partialOffset, first, last);
            return;
        }

        // Row dots (no packing) only where the GEMM would waste most of its NR-wide panels on a short crs (the first
        // layer's 1 × 3 × 3), or where the transposing pack has no register transposes; measured on WRN-40-2's 32 × 32
        // stage (crs = 288, pq = 1024), the GEMM with its vector pack took ~40 CPU ms per batch of 128 against ~60 for row dots.
        if (pr.P * pr.Q >= 8 * pr.FiltersPerGroup && (!Avx.IsSupported || pr.ChannelsPerGroup * pr.R * pr.S < 2 * CpuGemm.PanelWidth))
        {
            BackwardWeightRowsDot(pr, x, dy, partials, partialOffset, first, last);
            return;
        }

        // Otherwise the images of a chunk are merged into GEMMs over up to MergedDepth output positions (a function of
        // the shape alone, so the order of additions never depends on the thread count), which share one transposing pack.
        var imagesPerGemm = Math.Clamp(MergedDepth / (pr.P * pr.Q), 1, ImagesPerChunk);
        for (var n0 = first; n0 < last; n0 += imagesPerGemm)
        {
            BackwardWeightMerged(pr, x, dy, partials, partialOffset, n0, Math.Min(last, n0 + imagesPerGemm), accumulate: n0 != first);
        }
    }

    /// <summary>The longest GEMM depth (output positions of consecutive images) one merged weight-gradient product covers.</summary>
    private const int MergedDepth = 512;

    /// <summary>
    /// Long rows (pq ≥ 8·kg): per image, dw_g (kg × crs) += dy_g (kg × pq) · col_gᵀ as dot products of rows, both
    /// contiguous along pq, nothing packed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardWeightRowsDot(in ConvProblem pr, float[] x, float[] dy, float[] partials, long partialOffset, int first, int last)
    {
        int cg = pr.ChannelsPerGroup, kg = pr.FiltersPerGroup, taps = pr.R * pr.S, crs = cg * taps, pq = pr.P * pr.Q;
        var identity = IsIdentityColumns(pr);
        var (ph, pw) = PaddedSize(pr);
        using var columnMatrix = identity ? default : ColumnScratch.Rent((long)pr.C * taps * pq);
        using var paddedPlanes = identity ? default : PaddedScratch.Rent((long)pr.C * ph * pw);
        float[]? buffer = columnMatrix.Array, paddedBuffer = paddedPlanes.Array;
        fixed (float* px = x, pdy = dy, sums = partials, columns = buffer, padded = paddedBuffer)
        {
            var pp = sums + partialOffset;
            for (var n = first; n < last; n++)
            {
                var image = px + (long)n * pr.C * pr.H * pr.W;
                var col = identity ? image : columns;
                if (!identity)
                {
                    PadImage(pr, image, padded, ph, pw);
                    for (var c = 0; c < pr.C; c++)
                    {
                        for (var tap = 0; tap < taps; tap++)
                        {
                            ColumnRow(pr, padded + (long)c * ph * pw, pw, tap / pr.S, tap % pr.S, columns + ((long)c * taps + tap) * pq);
                        }
                    }
                }

                for (var g = 0; g < pr.Groups; g++)
                {
                    float* dyGroup = pdy + ((long)n * pr.K + (long)g * kg) * pq, colGroup = col + (long)g * crs * pq, dwGroup = pp + (long)g * kg * crs;
                    CpuGemm.MultiplyRowsDot(kg, crs, pq, dyGroup, pq, colGroup, pq, dwGroup, crs, accumulate: n != first);
                }
            }
        }
    }

    /// <summary>
    /// dw_g (kg × crs) (+)= Σ over images [n0, n1) of dy_g,n · col_g,nᵀ as one GEMM of depth (n1 − n0)·pq: A = dy_g with the
    /// images side by side along the depth, B = the column matrices' transposes stacked along the depth, both written
    /// straight into the GEMM's packed layouts (A: panels of MR filters; B: panels of NR column-matrix rows, one output
    /// position per depth step), so nothing is packed twice and the accumulator tiles are stored once per depth block
    /// instead of once per image. Group by group, and B in chunks of whole panels of about <see cref="ChunkFloats"/>
    /// floats, each packed and multiplied while it sits in L2 (a chunk of B is a chunk of dw's columns: the same sums).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardWeightMerged(in ConvProblem pr, float[] x, float[] dy, float[] partials, long partialOffset, int n0, int n1, bool accumulate)
    {
        int cg = pr.ChannelsPerGroup, kg = pr.FiltersPerGroup, taps = pr.R * pr.S, crs = cg * taps, pq = pr.P * pr.Q;
        int mr = CpuGemm.PanelRows, nr = CpuGemm.PanelWidth, depth = (n1 - n0) * pq, images = n1 - n0;
        var identity = IsIdentityColumns(pr);
        var (ph, pw) = PaddedSize(pr);
        var chunkPanels = Math.Max(1, ChunkFloats / (depth * nr));
        var lengthB = (long)chunkPanels * depth * nr;
        var lengthA = CpuGemm.PackedALength(kg, depth);
        var imageLength = (long)pr.C * ph * pw;
        using var panels = ColumnScratch.Rent(lengthB + lengthA);
        using var paddedPlanes = identity ? default : PaddedScratch.Rent(images * imageLength);
        float[] buffer = panels.Array!;
        float[]? paddedBuffer = paddedPlanes.Array;
        fixed (float* px = x, pdy = dy, sums = partials, packed = buffer, padded = paddedBuffer)
        {
            var pp = sums + partialOffset;
            float* packedB = packed, packedA = packed + lengthB;
            var panelStrideB = (long)depth * nr;
            var panelStrideA = (long)depth * mr;
            var sources = stackalloc float*[Math.Max(8, mr)];
            for (var n = n0; n < n1 && !identity; n++)
            {
                PadImage(pr, px + (long)n * pr.C * pr.H * pr.W, padded + (n - n0) * imageLength, ph, pw);
            }

            for (var g = 0; g < pr.Groups; g++)
            {
                for (var n = n0; n < n1; n++)
                {
                    // dy_g,n: filter i is lane i mod MR of panel i / MR, one output position per depth step.
                    var offset = (n - n0) * pq;
                    for (var i0 = 0; i0 < kg; i0 += mr)
                    {
                        var rows = Math.Min(mr, kg - i0);
                        var destination = packedA + i0 / mr * panelStrideA + (long)offset * mr;
                        for (var lane = 0; lane < rows; lane++)
                        {
                            sources[lane] = pdy + ((long)n * pr.K + g * kg + i0 + lane) * pq;
                        }

                        if (rows == 8 && mr == 8 && Avx.IsSupported && pq % 8 == 0)
                        {
                            for (var position = 0; position < pq; position += 8)
                            {
                                Transpose8(sources, position, destination + (long)position * mr, mr);
                            }

                            continue;
                        }

                        for (var lane = 0; lane < rows; lane++)
                        {
                            for (var position = 0; position < pq; position++)
                            {
                                destination[position * mr + lane] = sources[lane][position];
                            }
                        }
                    }
                }

                // Lanes past kg in the last panel of A are zero: they multiply into tile entries never stored.
                ZeroLanes(packedA + (long)(kg / mr) * panelStrideA, kg % mr, mr, depth);
                for (var first = 0; first < crs; first += chunkPanels * nr)
                {
                    var count = Math.Min(chunkPanels * nr, crs - first);
                    for (var n = n0; n < n1; n++)
                    {
                        var image = identity ? px + (long)n * pr.C * pr.H * pr.W : padded + (n - n0) * imageLength;
                        PackTransposedColumns(pr, image, ph, pw, identity, g, first, count, sources,
                            packedB + (long)(n - n0) * pq * nr, panelStrideB);
                    }

                    // Lanes past the chunk's end in its last panel are left as they are: vector lanes never mix, so they only
                    // reach the tile's columns past count, which the GEMM's edge path does not store. (Zeroing them, 24 of 32
                    // lanes at every one of pq depth steps for crs = 72, cost as much as packing the chunk.)
                    CpuGemm.MultiplyPackedA(kg, count, depth, packedA, packedB, null, 0, pp + (long)g * kg * crs + first, crs, accumulate, parallel: null);
                }
            }
        }
    }

    /// <summary>
    /// Rows first … first+count−1 of group g's column matrix of one image, transposed into packed-B panels (row i of the
    /// chunk is lane i mod NR of panel i / NR, output position j its depth step j): <paramref name="image"/> is the image
    /// itself for identity columns, else its padded planes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackTransposedColumns(in ConvProblem pr, float* image, int ph, int pw, bool identity, int g, int first, int count,
        float** sources, float* packedB, long panelStrideB)
    {
        int cg = pr.ChannelsPerGroup, taps = pr.R * pr.S, pq = pr.P * pr.Q, nr = CpuGemm.PanelWidth;
        for (var row0 = first; row0 < first + count; row0 += 8)
        {
            // Row (c, tap) of the column matrix, row = (c mod cg)·taps + tap in its group. Eight whole rows at a time
            // (NR is a multiple of 8) go through 8 × 8 register transposes where the rows' runs are contiguous.
            var rows = Math.Min(8, first + count - row0);
            var block = packedB + (row0 - first) / nr * panelStrideB + (row0 - first) % nr;
            for (var lane = 0; lane < rows; lane++)
            {
                var row = row0 + lane;
                int c = g * cg + row / taps, tap = row % taps;
                sources[lane] = identity ? image + (long)c * pq : image + (long)c * ph * pw + tap / pr.S * pw + tap % pr.S;
            }

            var vectorRows = rows == 8 && Avx.IsSupported && nr % 8 == 0 && pr.StrideW == 1 && pr.Q % 8 == 0;
            for (var p = 0; p < pr.P; p++)
            {
                // Identity columns are the image itself (P·Q contiguous); otherwise output row p reads padded row p·strideH + r.
                var sourceOffset = identity ? (long)p * pr.Q : (long)p * pr.StrideH * pw;
                var target = block + (long)p * pr.Q * nr;
                if (vectorRows)
                {
                    for (var q0 = 0; q0 < pr.Q; q0 += 8)
                    {
                        Transpose8(sources, sourceOffset + q0, target + (long)q0 * nr, nr);
                    }

                    continue;
                }

                var step = identity ? 1 : pr.StrideW;
                for (var lane = 0; lane < rows; lane++)
                {
                    var source = sources[lane] + sourceOffset;
                    for (var q = 0; q < pr.Q; q++)
                    {
                        target[q * nr + lane] = source[q * step];
                    }
                }
            }
        }
    }

    /// <summary>
    /// destination[j·stride + i] = sources[i][offset + j] for i, j in 0…7: eight runs of eight floats transposed in
    /// registers (unpack, shuffle, lane permute) and stored as eight contiguous runs of eight.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8(float** sources, long offset, float* destination, int stride)
    {
        var r0 = Avx.LoadVector256(sources[0] + offset);
        var r1 = Avx.LoadVector256(sources[1] + offset);
        var r2 = Avx.LoadVector256(sources[2] + offset);
        var r3 = Avx.LoadVector256(sources[3] + offset);
        var r4 = Avx.LoadVector256(sources[4] + offset);
        var r5 = Avx.LoadVector256(sources[5] + offset);
        var r6 = Avx.LoadVector256(sources[6] + offset);
        var r7 = Avx.LoadVector256(sources[7] + offset);
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1), t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5), t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE), u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE), u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(destination, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(destination + stride, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(destination + 2L * stride, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(destination + 3L * stride, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(destination + 4L * stride, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(destination + 5L * stride, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(destination + 6L * stride, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(destination + 7L * stride, Avx.Permute2x128(u3, u7, 0x31));
    }

    /// <summary>
    /// Zeroes lanes [from, width) of every depth step of one packed panel (nothing when from is 0: the panel is full or absent),
    /// 8 at a time: a span clear per step cost more than the pack itself for grouped layers (crs = 72: 24 lanes × pq steps).
    /// </summary>
    private static void ZeroLanes(float* panel, int from, int width, int depth)
    {
        if (from == 0)
        {
            return;
        }

        var count = width - from;
        for (var step = 0; step < depth; step++)
        {
            var lanes = panel + (long)step * width + from;
            var i = 0;
            for (; i <= count - 8; i += 8)
            {
                Vector256<float>.Zero.Store(lanes + i);
            }

            for (; i < count; i++)
            {
                lanes[i] = 0;
            }
        }
    }

    /// <summary>True when the column matrix of an image is the image itself (1×1, stride 1, no padding).</summary>
    private static bool IsIdentityColumns(in ConvProblem pr) =>
        pr.R == 1 && pr.S == 1 && pr.StrideH == 1 && pr.StrideW == 1 && pr.PadH == 0 && pr.PadW == 0;

    /// <summary>Runs body(i) for i in [0, count), over the thread pool when there is more than one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForEachImage(int count, ParallelOptions parallel, Action<int> body)
    {
        if (count > 1)
        {
            Parallel.For(0, count, parallel, body);
        }
        else if (count == 1)
        {
            body(0);
        }
    }

    /// <summary>destination[i] += source[i].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddTo(float* source, float* destination, int length)
    {
        var i = 0;
        for (; i <= length - Vector<float>.Count; i += Vector<float>.Count)
        {
            var sum = Vector.Load(destination + i) + Vector.Load(source + i);
            sum.Store(destination + i);
        }

        for (; i < length; i++)
        {
            destination[i] += source[i];
        }
    }

    /// <summary>dw = partial 0 + partial 1 + … in order, element by element, split over the thread pool by element ranges.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SumInOrder(float[] partials, int chunks, float[] dw, ParallelOptions parallel)
    {
        const int Slice = 4096;
        var slices = (dw.Length + Slice - 1) / Slice;
        Parallel.For(0, slices, parallel, slice =>
        {
            int start = slice * Slice, length = Math.Min(Slice, dw.Length - start);
            var target = dw.AsSpan(start, length);
            partials.AsSpan(start, length).CopyTo(target);
            for (var chunk = 1; chunk < chunks; chunk++)
            {
                fixed (float* source = &partials[(long)chunk * dw.Length + start], destination = target)
                {
                    AddTo(source, destination, length);
                }
            }
        });
    }

    // ----- zero-padded planes -----

    /// <summary>A zero-padded input plane: ((P−1)·strideH + R) × ((Q−1)·strideW + S), exactly the rows and columns the taps reach.</summary>
    internal static (int Height, int Width) PaddedSize(in ConvProblem pr) =>
        ((pr.P - 1) * pr.StrideH + pr.R, (pr.Q - 1) * pr.StrideW + pr.S);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PadPlane(in ConvProblem pr, float* plane, float* padded, int paddedHeight, int paddedWidth)
    {
        new Span<float>(padded, paddedHeight * paddedWidth).Clear();
        for (var h = 0; h < pr.H; h++)
        {
            var row = h + pr.PadH;
            if (row >= paddedHeight)
            {
                break;
            }

            var columns = Math.Max(0, Math.Min(pr.W, paddedWidth - pr.PadW));
            new ReadOnlySpan<float>(plane + h * pr.W, columns).CopyTo(new Span<float>(padded + row * paddedWidth + pr.PadW, columns));
        }
    }
}
