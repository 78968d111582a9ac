using System.Runtime.CompilerServices;
using System.Buffers;
using System.Numerics;
using CheapConv.Problems;

namespace CheapConv.Backends.Cpu;

/// <summary>
/// The fast float convolution passes behind <see cref="CpuBackend"/>'s <see cref="IBackend"/> members: im2col per
/// image + <see cref="CpuGemm"/> per group for dense, grouped and pointwise problems (a stride-1 unpadded 1×1
/// needs no im2col: the image is the column matrix), and direct vector loops when every filter sees one input
/// channel (depthwise, with or without a channel multiplier), where a GEMM of depth R·S would be mostly overhead.
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

    [ThreadStatic]
    private static float[]? _columns;

    [ThreadStatic]
    private static float[]? _padded;

    /// <summary>y = conv(x, w): per image, the column matrix is written straight into the GEMM's packed-B layout.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(ConvProblem pr, float[] x, float[] w, float[] y)
    {
        if (pr.ChannelsPerGroup == 1)
        {
            DirectForward(pr, x, w, y);
            return;
        }

        var innerParallel = pr.N == 1;
        var packedWeights = PackWeights(pr, w, transpose: false);
        try
        {
            ForEachImage(pr.N, n => ForwardImage(pr, x, packedWeights, y, n, innerParallel));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(packedWeights);
        }
    }

    /// <summary>
    /// The weights of every group packed once for the GEMM's A side (w_g, kg × crs; or w_gᵀ, crs × kg, for the backward-data
    /// pass), group after group, so the images of a batch do not each repack them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float[] PackWeights(in ConvProblem pr, float[] w, bool transpose)
    {
        int kg = pr.FiltersPerGroup, crs = pr.ChannelsPerGroup * pr.R * pr.S;
        var (rows, depth) = transpose ? (crs, kg) : (kg, crs);
        var groupLength = CpuGemm.PackedALength(rows, depth);
        var packed = ArrayPool<float>.Shared.Rent(checked((int)(pr.Groups * groupLength)));
        fixed (float* pw = w, pp = packed)
        {
            for (var g = 0; g < pr.Groups; g++)
            {
                // w_g is stored kg × crs (row stride crs); its transpose is read with transposeA from the same storage.
                CpuGemm.PackWholeA(transpose, rows, depth, pw + (long)g * kg * crs, crs, pp + g * groupLength);
            }
        }

        return packed;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardImage(in ConvProblem pr, float[] x, float[] packedWeights, float[] y, int n, bool innerParallel)
    {
        int cg = pr.ChannelsPerGroup, kg = pr.FiltersPerGroup, taps = pr.R * pr.S, crs = cg * taps, pq = pr.P * pr.Q, nr = CpuGemm.PanelWidth;
        var groupStride = CpuGemm.PackedLength(crs, pq);
        var identity = IsIdentityColumns(pr);
        var (ph, pw) = PaddedSize(pr);
        var buffer = Columns(pr.Groups * groupStride);
        var paddedBuffer = identity ? null : Padded((long)pr.C * ph * pw);
        var weightStride = CpuGemm.PackedALength(kg, crs);
        fixed (float* px = x, pwt = packedWeights, py = y, packed = buffer, padded = paddedBuffer)
        {
            var image = px + (long)n * pr.C * pr.H * pr.W;
            if (!identity)
            {
                PadImage(pr, image, padded, ph, pw);
            }

            for (var c = 0; c < pr.C; c++)
            {
                for (var tap = 0; tap < taps; tap++)
                {
                    // Row (c, tap) of the column matrix goes to row (c mod cg)·taps + tap of its group's packed panels.
                    var destination = packed + c / cg * groupStride + ((c % cg) * taps + tap) * nr;
                    var panelStride = (long)crs * nr;
                    var zeroFrom = pq;
                    if (identity)
                    {
                        WriteRun(image + (long)c * pq, 1, 0, pq, destination, panelStride, nr);
                    }
                    else
                    {
                        var plane = padded + (long)c * ph * pw;
                        int r = tap / pr.S, s = tap % pr.S;
                        for (var p = 0; p < pr.P; p++)
                        {
                            WriteRun(plane + (p * pr.StrideH + r) * pw + s, pr.StrideW, p * pr.Q, pr.Q, destination, panelStride, nr);
                        }
                    }

                    // Zero the lanes past pq in the last panel (they multiply into columns that are never stored).
                    var last = destination + (long)(zeroFrom / nr) * panelStride;
                    for (var lane = zeroFrom % nr; lane != 0 && lane < nr; lane++)
                    {
                        last[lane] = 0;
                    }
                }
            }

            for (var g = 0; g < pr.Groups; g++)
            {
                CpuGemm.MultiplyPackedA(kg, pq, crs, pwt + g * weightStride, packed + g * groupStride, null, 0,
                    py + ((long)n * pr.K + (long)g * kg) * pq, pq, accumulate: false, parallel: innerParallel);
            }
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
    private static void PadImage(in ConvProblem pr, float* image, float* padded, int ph, int pw)
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

    /// <summary>dx = convᵀ(dy, w): per image and group the column-matrix gradient wᵀ·dy, then col2im (the identity for a stride-1 1×1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackwardData(ConvProblem pr, float[] dy, float[] w, float[] dx)
    {
        if (pr.ChannelsPerGroup == 1)
        {
            DirectBackwardData(pr, dy, w, dx);
            return;
        }

        var identity = IsIdentityColumns(pr);
        var innerParallel = pr.N == 1;
        var packedWeights = PackWeights(pr, w, transpose: true);
        try
        {
            ForEachImage(pr.N, n => BackwardDataImage(pr, dy, packedWeights, dx, n, identity, innerParallel));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(packedWeights);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardDataImage(in ConvProblem pr, float[] dy, float[] packedWeights, float[] dx, int n, bool identity, bool innerParallel)
    {
        int cg = pr.ChannelsPerGroup, kg = pr.FiltersPerGroup, taps = pr.R * pr.S, crs = cg * taps, pq = pr.P * pr.Q;
        var (ph, pw) = PaddedSize(pr);
        var columns = identity ? null : Columns((long)pr.C * taps * pq);
        var paddedBuffer = identity ? null : Padded((long)pr.C * ph * pw);
        var weightStride = CpuGemm.PackedALength(crs, kg);
        fixed (float* pdy = dy, pwt = packedWeights, pdx = dx, pcol = columns, padded = paddedBuffer)
        {
            var image = pdx + (long)n * pr.C * pr.H * pr.W;
            var col = identity ? image : pcol;
            for (var g = 0; g < pr.Groups; g++)
            {
                // col_g (crs × pq) = w_gᵀ (crs × kg, packed once per call) · dy_g (kg × pq).
                CpuGemm.MultiplyPackedA(crs, pq, kg, pwt + g * weightStride, null, pdy + ((long)n * pr.K + (long)g * kg) * pq, pq,
                    col + (long)g * crs * pq, pq, accumulate: false, parallel: innerParallel);
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
    public static void BackwardWeight(ConvProblem pr, float[] x, float[] dy, float[] dw)
    {
        if (pr.ChannelsPerGroup == 1)
        {
            DirectBackwardWeight(pr, x, dy, dw);
            return;
        }

        var chunks = (pr.N + ImagesPerChunk - 1) / ImagesPerChunk;
        if (chunks == 1)
        {
            BackwardWeightChunk(pr, x, dy, dw, 0);
            return;
        }

        // Every chunk overwrites all of its partial (its first image does not accumulate), so pooled arrays need no clearing.
        var partials = new float[chunks][];
        for (var chunk = 0; chunk < chunks; chunk++)
        {
            partials[chunk] = ArrayPool<float>.Shared.Rent(dw.Length);
        }

        try
        {
            ForEachImage(chunks, chunk => BackwardWeightChunk(pr, x, dy, partials[chunk], chunk));
            SumInOrder(partials, dw);
        }
        finally
        {
            foreach (var partial in partials)
            {
                ArrayPool<float>.Shared.Return(partial);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardWeightChunk(in ConvProblem pr, float[] x, float[] dy, float[] partial, int chunk)
    {
        int cg = pr.ChannelsPerGroup, kg = pr.FiltersPerGroup, taps = pr.R * pr.S, crs = cg * taps, pq = pr.P * pr.Q;
        var identity = IsIdentityColumns(pr);
        var (ph, pw) = PaddedSize(pr);
        var buffer = identity ? null : Columns((long)pr.C * taps * pq);
        var paddedBuffer = identity ? null : Padded((long)pr.C * ph * pw);
        int first = chunk * ImagesPerChunk, last = Math.Min(pr.N, first + ImagesPerChunk);
        fixed (float* px = x, pdy = dy, pp = partial, columns = buffer, padded = paddedBuffer)
        {
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
                    // dw_g (kg × crs) += dy_g (kg × pq) · col_gᵀ. Long rows (pq ≥ 8·kg): dot products of rows, both contiguous
                    // along pq, nothing packed. Short rows: the lane reductions of the dots would dominate, so the packed GEMM,
                    // whose transposing pack of col_g is shared by only kg rows — cheap exactly when pq is small against kg.
                    float* dyGroup = pdy + ((long)n * pr.K + (long)g * kg) * pq, colGroup = col + (long)g * crs * pq, dwGroup = pp + (long)g * kg * crs;
                    if (pq >= 8 * kg)
                    {
                        CpuGemm.MultiplyRowsDot(kg, crs, pq, dyGroup, pq, colGroup, pq, dwGroup, crs, accumulate: n != first);
                    }
                    else
                    {
                        CpuGemm.Multiply(false, true, kg, crs, pq, dyGroup, pq, colGroup, pq, dwGroup, crs, accumulate: n != first, parallel: false);
                    }
                }
            }
        }
    }

    /// <summary>True when the column matrix of an image is the image itself (1×1, stride 1, no padding).</summary>
    private static bool IsIdentityColumns(in ConvProblem pr) =>
        pr.R == 1 && pr.S == 1 && pr.StrideH == 1 && pr.StrideW == 1 && pr.PadH == 0 && pr.PadW == 0;

    /// <summary>Runs body(i) for i in [0, count), over the thread pool when there is more than one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForEachImage(int count, Action<int> body)
    {
        if (count > 1)
        {
            Parallel.For(0, count, body);
        }
        else if (count == 1)
        {
            body(0);
        }
    }

    /// <summary>This thread's column buffer, at least <paramref name="length"/> floats (pinned, reused across calls).</summary>
    private static float[] Columns(long length)
    {
        var buffer = _columns;
        if (buffer is null || buffer.LongLength < length)
        {
            buffer = GC.AllocateUninitializedArray<float>(checked((int)length), pinned: true);
            _columns = buffer;
        }

        return buffer;
    }

    /// <summary>This thread's padded-image buffer, at least <paramref name="length"/> floats.</summary>
    private static float[] Padded(long length)
    {
        var buffer = _padded;
        if (buffer is null || buffer.LongLength < length)
        {
            buffer = GC.AllocateUninitializedArray<float>(checked((int)length), pinned: true);
            _padded = buffer;
        }

        return buffer;
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

    /// <summary>destination[i] += scale·source[i] (multiply, then add: the same two roundings in vector and scalar code).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddScaled(float scale, float* source, float* destination, int length)
    {
        var i = 0;
        var s = new Vector<float>(scale);
        for (; i <= length - Vector<float>.Count; i += Vector<float>.Count)
        {
            var sum = Vector.Load(destination + i) + s * Vector.Load(source + i);
            sum.Store(destination + i);
        }

        for (; i < length; i++)
        {
            destination[i] += scale * source[i];
        }
    }

    /// <summary>dw = partials[0] + partials[1] + … in order, element by element, split over the thread pool by element ranges.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SumInOrder(float[][] partials, float[] dw)
    {
        const int Slice = 4096;
        var slices = (dw.Length + Slice - 1) / Slice;
        Parallel.For(0, slices, slice =>
        {
            int start = slice * Slice, length = Math.Min(Slice, dw.Length - start);
            var target = dw.AsSpan(start, length);
            partials[0].AsSpan(start, length).CopyTo(target);
            for (var chunk = 1; chunk < partials.Length; chunk++)
            {
                fixed (float* source = &partials[chunk][start], destination = target)
                {
                    AddTo(source, destination, length);
                }
            }
        });
    }

    // ----- one input channel per filter (depthwise, channel multiplier K/C): direct loops over zero-padded planes -----

    /// <summary>A zero-padded input plane: ((P−1)·strideH + R) × ((Q−1)·strideW + S), exactly the rows and columns the taps reach.</summary>
    private static (int Height, int Width) PaddedSize(in ConvProblem pr) =>
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

    private static void DirectForward(ConvProblem pr, float[] x, float[] w, float[] y)
    {
        Parallel.For(0, pr.N * pr.C, nc => DirectForwardPlane(pr, x, w, y, nc));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DirectForwardPlane(in ConvProblem pr, float[] x, float[] w, float[] y, int nc)
    {
        var (ph, pw) = PaddedSize(pr);
        int kg = pr.FiltersPerGroup, taps = pr.R * pr.S, pq = pr.P * pr.Q;
        {
            int n = nc / pr.C, c = nc % pr.C;
            var buffer = Columns((long)ph * pw + pr.Q * pr.StrideW + Vector<float>.Count);
            fixed (float* px = x, pwt = w, py = y, padded = buffer)
            {
                PadPlane(pr, px + ((long)n * pr.C + c) * pr.H * pr.W, padded, ph, pw);
                var gathered = padded + ph * pw;
                for (var k = c * kg; k < (c + 1) * kg; k++)
                {
                    var output = py + ((long)n * pr.K + k) * pq;
                    new Span<float>(output, pq).Clear();
                    for (var p = 0; p < pr.P; p++)
                    {
                        var outRow = output + p * pr.Q;
                        for (var r = 0; r < pr.R; r++)
                        {
                            var inRow = padded + (p * pr.StrideH + r) * pw;
                            for (var s = 0; s < pr.S; s++)
                            {
                                var source = inRow + s;
                                if (pr.StrideW != 1)
                                {
                                    for (var q = 0; q < pr.Q; q++)
                                    {
                                        gathered[q] = source[q * pr.StrideW];
                                    }

                                    source = gathered;
                                }

                                AddScaled(pwt[(long)k * taps + r * pr.S + s], source, outRow, pr.Q);
                            }
                        }
                    }
                }
            }
        }
    }

    private static void DirectBackwardData(ConvProblem pr, float[] dy, float[] w, float[] dx)
    {
        Parallel.For(0, pr.N * pr.C, nc => DirectBackwardDataPlane(pr, dy, w, dx, nc));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DirectBackwardDataPlane(in ConvProblem pr, float[] dy, float[] w, float[] dx, int nc)
    {
        var (ph, pw) = PaddedSize(pr);
        int kg = pr.FiltersPerGroup, taps = pr.R * pr.S, pq = pr.P * pr.Q;
        {
            int n = nc / pr.C, c = nc % pr.C;
            var buffer = Columns((long)ph * pw);
            fixed (float* pdy = dy, pwt = w, pdx = dx, padded = buffer)
            {
                new Span<float>(padded, ph * pw).Clear();
                for (var k = c * kg; k < (c + 1) * kg; k++)
                {
                    var gradient = pdy + ((long)n * pr.K + k) * pq;
                    for (var p = 0; p < pr.P; p++)
                    {
                        var gradientRow = gradient + p * pr.Q;
                        for (var r = 0; r < pr.R; r++)
                        {
                            var targetRow = padded + (p * pr.StrideH + r) * pw;
                            for (var s = 0; s < pr.S; s++)
                            {
                                var weight = pwt[(long)k * taps + r * pr.S + s];
                                if (pr.StrideW == 1)
                                {
                                    AddScaled(weight, gradientRow, targetRow + s, pr.Q);
                                }
                                else
                                {
                                    for (var q = 0; q < pr.Q; q++)
                                    {
                                        targetRow[s + q * pr.StrideW] += weight * gradientRow[q];
                                    }
                                }
                            }
                        }
                    }
                }

                // Crop: the padded rows/columns outside the image are where the padding zeros were; they get no gradient.
                var plane = pdx + ((long)n * pr.C + c) * pr.H * pr.W;
                for (var h = 0; h < pr.H; h++)
                {
                    var row = h + pr.PadH;
                    var destination = new Span<float>(plane + h * pr.W, pr.W);
                    destination.Clear();
                    if (row >= ph)
                    {
                        continue;
                    }

                    var columns = Math.Max(0, Math.Min(pr.W, pw - pr.PadW));
                    new ReadOnlySpan<float>(padded + row * pw + pr.PadW, columns).CopyTo(destination);
                }
            }
        }
    }

    private static void DirectBackwardWeight(ConvProblem pr, float[] x, float[] dy, float[] dw)
    {
        Parallel.For(0, pr.C, c => DirectBackwardWeightChannel(pr, x, dy, dw, c));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DirectBackwardWeightChannel(in ConvProblem pr, float[] x, float[] dy, float[] dw, int c)
    {
        var (ph, pw) = PaddedSize(pr);
        int kg = pr.FiltersPerGroup, taps = pr.R * pr.S, pq = pr.P * pr.Q;
        {
            var buffer = Columns((long)ph * pw + pr.Q + Vector<float>.Count);
            var sums = new float[kg * taps];
            fixed (float* px = x, pdy = dy, padded = buffer)
            {
                var gathered = padded + ph * pw;
                for (var n = 0; n < pr.N; n++)
                {
                    PadPlane(pr, px + ((long)n * pr.C + c) * pr.H * pr.W, padded, ph, pw);
                    for (var k = c * kg; k < (c + 1) * kg; k++)
                    {
                        var gradient = pdy + ((long)n * pr.K + k) * pq;
                        for (var r = 0; r < pr.R; r++)
                        {
                            for (var s = 0; s < pr.S; s++)
                            {
                                // One dot product per (image, tap), added to the running sum in image order.
                                var dot = 0f;
                                for (var p = 0; p < pr.P; p++)
                                {
                                    var source = padded + (p * pr.StrideH + r) * pw + s;
                                    if (pr.StrideW != 1)
                                    {
                                        for (var q = 0; q < pr.Q; q++)
                                        {
                                            gathered[q] = source[q * pr.StrideW];
                                        }

                                        source = gathered;
                                    }

                                    dot += Dot(source, gradient + p * pr.Q, pr.Q);
                                }

                                sums[(k - c * kg) * taps + r * pr.S + s] += dot;
                            }
                        }
                    }
                }
            }

            sums.CopyTo(dw, (long)c * kg * taps);
        }
    }

    /// <summary>Σ a[i]·b[i]: vector lanes first, then the lanes in order, then the tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot(float* a, float* b, int length)
    {
        var i = 0;
        var acc = Vector<float>.Zero;
        for (; i <= length - Vector<float>.Count; i += Vector<float>.Count)
        {
            acc += Vector.Load(a + i) * Vector.Load(b + i);
        }

        var sum = 0f;
        for (var lane = 0; lane < Vector<float>.Count; lane++)
        {
            sum += acc[lane];
        }

        for (; i < length; i++)
        {
            sum += a[i] * b[i];
        }

        return sum;
    }
}
