using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using CheapConv.Problems;

namespace CheapConv.Backends.Cpu;

/// <summary>
/// The three passes of a convolution whose filters each see one input channel (depthwise, with or without a channel
/// multiplier K/C), as register-blocked vector loops over zero-padded planes, written once over <see cref="ILanes{TVector}"/>
/// and run at the widest width the machine has (Vector512, Vector256, Vector128 or scalar).
/// </summary>
/// <remarks>
/// Why not a GEMM: per output the depth is only R·S (9), so the work is one pass over the planes, bound by memory; the
/// old direct loops added one tap at a time into the output row (9 read-modify-write passes per row) and ran at 16–19
/// GFLOP/s. Here each output vector is one register chain of R·S fused multiply-adds, stored once.
/// <para>
/// A padded plane keeps its columns split by phase (column j at (j mod strideW)·phase width + j / strideW of its row): the
/// output columns q of tap s then read the contiguous run phase (s mod strideW), index q + s / strideW, at stride 1 and
/// 2 alike, and the padding costs no branch. Every plane buffer ends in a zeroed vector of slack, so a vector that runs past
/// a row reads finite values (used only in lanes that are dropped, or multiplied by zeros).
/// </para>
/// <para>
/// Deterministic for any thread count: threads take whole planes (forward, data gradient) or whole channels (weight
/// gradient, whose sums run over images in order); every element's chain of operations depends on the shape and the
/// width alone, and the width on the shape and the machine alone (<see cref="Lanes.Best"/>).
/// </para>
/// </remarks>
internal static unsafe class CpuDepthwiseConv
{
    private static readonly ScratchArrays PlaneScratch = new(pinned: true);
    private static readonly ScratchArrays WeightScratch = new(pinned: false);

    /// <summary>True where these kernels apply: one input channel per filter.</summary>
    public static bool Applies(in ConvProblem pr) => pr.ChannelsPerGroup == 1;

    /// <summary>y = conv(x, w), per output plane: y[k] = the correlation of x's plane k / (K/C), zero-padded, with w[k].</summary>
    /// <param name="width">The register width; by default the best for the shape on this machine (tests run every width).</param>
    public static void Forward(ConvProblem pr, float[] x, float[] w, float[] y, ParallelOptions parallel, LaneWidth? width = null) =>
        Run(Pass.Forward, pr, x, w, y, parallel, width);

    /// <summary>dx = convᵀ(dy, w), per input plane.</summary>
    public static void BackwardData(ConvProblem pr, float[] dy, float[] w, float[] dx, ParallelOptions parallel, LaneWidth? width = null) =>
        Run(Pass.BackwardData, pr, dy, w, dx, parallel, width);

    /// <summary>dw = Σ over the batch of the correlation of dy with x, per channel.</summary>
    public static void BackwardWeight(ConvProblem pr, float[] x, float[] dy, float[] dw, ParallelOptions parallel, LaneWidth? width = null) =>
        Run(Pass.BackwardWeight, pr, x, dy, dw, parallel, width);

    private enum Pass
    {
        Forward,
        BackwardData,
        BackwardWeight,
    }

    /// <summary>The pass, compiled for the width: result = pass(first, second) with the operands in the public methods' order.</summary>
    private static void Run(Pass pass, ConvProblem pr, float[] first, float[] second, float[] result, ParallelOptions parallel, LaneWidth? width)
    {
        switch (width ?? Lanes.Best(pr.Q))
        {
            case LaneWidth.Vector512: Run<Lanes512, Vector512<float>>(pass, pr, first, second, result, parallel); break;
            case LaneWidth.Vector256: Run<Lanes256, Vector256<float>>(pass, pr, first, second, result, parallel); break;
            case LaneWidth.Vector128: Run<Lanes128, Vector128<float>>(pass, pr, first, second, result, parallel); break;
            default: Run<LanesScalar, float>(pass, pr, first, second, result, parallel); break;
        }
    }

    private static void Run<TLanes, TVector>(Pass pass, ConvProblem pr, float[] first, float[] second, float[] result, ParallelOptions parallel)
        where TLanes : ILanes<TVector> where TVector : unmanaged
    {
        switch (pass)
        {
            case Pass.Forward: Forward<TLanes, TVector>(pr, first, second, result, parallel); break;
            case Pass.BackwardData: BackwardData<TLanes, TVector>(pr, first, second, result, parallel); break;
            default: BackwardWeight<TLanes, TVector>(pr, first, second, result, parallel); break;
        }
    }

    // ----- forward -----

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Forward<TLanes, TVector>(ConvProblem pr, float[] x, float[] w, float[] y, ParallelOptions parallel)
        where TLanes : ILanes<TVector> where TVector : unmanaged
    {
        var plane = new PhasePlane((pr.P - 1) * pr.StrideH + pr.R, (pr.Q - 1) * pr.StrideW + pr.S, pr.StrideW, TLanes.Count);
        int kg = pr.FiltersPerGroup, taps = pr.R * pr.S, pq = pr.P * pr.Q;
        ForEachRange(pr.N * pr.C, parallel, (first, last) =>
        {
            using var scratch = PlaneScratch.Rent(plane.BufferLength(1));
            fixed (float* px = x, pwt = w, py = y, padded = scratch.Array)
            {
                for (var nc = first; nc < last; nc++)
                {
                    // Plane nc = n·C + c feeds filters c·kg … c·kg + kg − 1, i.e. output planes nc·kg + j.
                    plane.Fill(px + (long)nc * pr.H * pr.W, pr.H, pr.W, pr.PadH, pr.PadW, padded);
                    for (var j = 0; j < kg; j++)
                    {
                        var k = nc % pr.C * kg + j;
                        Correlate<TLanes, TVector>(padded, 1, plane, pr.StrideH, pr.R, pr.S, pwt + (long)k * taps,
                            py + ((long)nc * kg + j) * pq, pr.P, pr.Q);
                    }
                }
            }
        });
    }

    /// <summary>Output rows per register block of <see cref="Correlate{TLanes, TVector}"/>: four independent chains.</summary>
    private const int BlockRows = 4;

    /// <summary>
    /// output[p·Q + q] = Σ over sources i, taps r, s (in that order, one fused chain) of weights[(i·R + r)·S + s] ·
    /// source_i[row p·strideH + r, column q·strideW + s], the sources being <paramref name="count"/> planes of
    /// <paramref name="plane"/>'s geometry one after another. A vector of output columns per chain and
    /// <see cref="BlockRows"/> rows at once: one chain alone waits on each fused multiply-add's latency (4 cycles on
    /// Zen 4), four keep the unit busy. A short last block repeats the last row (the same chain, stored to the same place);
    /// a row's last vector is moved back to end at Q (its overlap recomputes the same chains), or goes through a buffer
    /// when Q is under a vector.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Correlate<TLanes, TVector>(float* sources, int count, in PhasePlane plane, int strideH, int r, int s,
        float* weights, float* output, int p, int q)
        where TLanes : ILanes<TVector> where TVector : unmanaged
    {
        var lanes = TLanes.Count;
        var offsets = stackalloc int[s];
        for (var tap = 0; tap < s; tap++)
        {
            offsets[tap] = plane.ColumnOffset(tap);
        }

        var edge = stackalloc float[lanes];
        var rowStep = strideH * plane.Pitch;
        for (var row = 0; row < p; row += BlockRows)
        {
            int row1 = Math.Min(row + 1, p - 1), row2 = Math.Min(row + 2, p - 1), row3 = Math.Min(row + 3, p - 1);
            int step1 = (row1 - row) * rowStep, step2 = (row2 - row) * rowStep, step3 = (row3 - row) * rowStep;
            for (var q0 = 0; q0 < q; q0 += lanes)
            {
                var start = q >= lanes ? Math.Min(q0, q - lanes) : 0;
                TVector sum0 = TLanes.Zero, sum1 = TLanes.Zero, sum2 = TLanes.Zero, sum3 = TLanes.Zero;
                for (var i = 0; i < count; i++)
                {
                    for (var tr = 0; tr < r; tr++)
                    {
                        var input = sources + (long)i * plane.Length + row * rowStep + tr * plane.Pitch + start;
                        var tapWeights = weights + (i * r + tr) * s;
                        for (var ts = 0; ts < s; ts++)
                        {
                            var weight = TLanes.Broadcast(tapWeights[ts]);
                            var at = input + offsets[ts];
                            sum0 = TLanes.MultiplyAdd(weight, TLanes.Load(at), sum0);
                            sum1 = TLanes.MultiplyAdd(weight, TLanes.Load(at + step1), sum1);
                            sum2 = TLanes.MultiplyAdd(weight, TLanes.Load(at + step2), sum2);
                            sum3 = TLanes.MultiplyAdd(weight, TLanes.Load(at + step3), sum3);
                        }
                    }
                }

                StoreRun<TLanes, TVector>(sum0, output + row * q + start, q, edge);
                StoreRun<TLanes, TVector>(sum1, output + row1 * q + start, q, edge);
                StoreRun<TLanes, TVector>(sum2, output + row2 * q + start, q, edge);
                StoreRun<TLanes, TVector>(sum3, output + row3 * q + start, q, edge);
            }
        }
    }

    /// <summary>
    /// destination[0 … min(lanes, columns)) = the lanes of <paramref name="sum"/>: a whole vector, or, in a row shorter than
    /// one, its first lanes through <paramref name="edge"/> (a plain loop: a call here would spill the other chains).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRun<TLanes, TVector>(TVector sum, float* destination, int columns, float* edge)
        where TLanes : ILanes<TVector> where TVector : unmanaged
    {
        if (columns >= TLanes.Count)
        {
            TLanes.Store(sum, destination);
            return;
        }

        TLanes.Store(sum, edge);
        for (var i = 0; i < columns; i++)
        {
            destination[i] = edge[i];
        }
    }

    // ----- backward data -----

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardData<TLanes, TVector>(ConvProblem pr, float[] dy, float[] w, float[] dx, ParallelOptions parallel)
        where TLanes : ILanes<TVector> where TVector : unmanaged
    {
        int kg = pr.FiltersPerGroup, taps = pr.R * pr.S, pq = pr.P * pr.Q, hw = pr.H * pr.W;
        if (pr.StrideH == 1 && pr.StrideW == 1 && pr.PadH <= pr.R - 1 && pr.PadW <= pr.S - 1)
        {
            // At stride 1, dx[c] = Σ_j the correlation of dy[c·kg + j], padded by R−1−pad (S−1−pad), with w[c·kg + j]
            // flipped in r and s: the forward chain over kg sources, each output read once and stored once.
            using var flippedLease = WeightScratch.Rent(pr.K * taps);
            var flipped = flippedLease.Array!;
            for (var k = 0; k < pr.K; k++)
            {
                for (var tap = 0; tap < taps; tap++)
                {
                    flipped[k * taps + taps - 1 - tap] = w[k * taps + tap];
                }
            }

            var transposed = new PhasePlane(pr.H + pr.R - 1, pr.W + pr.S - 1, 1, TLanes.Count);
            ForEachRange(pr.N * pr.C, parallel, (first, last) =>
            {
                using var scratch = PlaneScratch.Rent(transposed.BufferLength(kg));
                fixed (float* pdy = dy, pwt = flipped, pdx = dx, padded = scratch.Array)
                {
                    for (var nc = first; nc < last; nc++)
                    {
                        for (var j = 0; j < kg; j++)
                        {
                            transposed.Fill(pdy + ((long)nc * kg + j) * pq, pr.P, pr.Q, pr.R - 1 - pr.PadH, pr.S - 1 - pr.PadW,
                                padded + (long)j * transposed.Length);
                        }

                        Correlate<TLanes, TVector>(padded, kg, transposed, 1, pr.R, pr.S, pwt + (long)nc % pr.C * kg * taps,
                            pdx + (long)nc * hw, pr.H, pr.W);
                    }
                }
            });
            return;
        }

        // Otherwise (stride 2, or pad ≥ R): dy scattered into a zeroed padded plane, one vector multiply-add per tap and run
        // of output columns (in the phase layout the columns q·strideW + s of tap s are contiguous), then cropped.
        var plane = new PhasePlane((pr.P - 1) * pr.StrideH + pr.R, (pr.Q - 1) * pr.StrideW + pr.S, pr.StrideW, TLanes.Count);
        ForEachRange(pr.N * pr.C, parallel, (first, last) =>
        {
            using var scratch = PlaneScratch.Rent(plane.BufferLength(1));
            fixed (float* pdy = dy, pwt = w, pdx = dx, padded = scratch.Array)
            {
                for (var nc = first; nc < last; nc++)
                {
                    new Span<float>(padded, plane.BufferLength(1)).Clear();
                    for (var j = 0; j < kg; j++)
                    {
                        Scatter<TLanes, TVector>(pdy + ((long)nc * kg + j) * pq, pwt + ((long)nc % pr.C * kg + j) * taps, pr, plane, padded);
                    }

                    plane.Crop(padded, pr.H, pr.W, pr.PadH, pr.PadW, pdx + (long)nc * hw);
                }
            }
        });
    }

    /// <summary>padded[row p·strideH + r, column q·strideW + s] += weights[r·S + s]·gradient[p·Q + q], in the order p, r, s, q.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scatter<TLanes, TVector>(float* gradient, float* weights, in ConvProblem pr, in PhasePlane plane, float* padded)
        where TLanes : ILanes<TVector> where TVector : unmanaged
    {
        var lanes = TLanes.Count;
        for (var p = 0; p < pr.P; p++)
        {
            var source = gradient + p * pr.Q;
            for (var r = 0; r < pr.R; r++)
            {
                for (var s = 0; s < pr.S; s++)
                {
                    var target = padded + (p * pr.StrideH + r) * plane.Pitch + plane.ColumnOffset(s);
                    var weight = weights[r * pr.S + s];
                    var broadcast = TLanes.Broadcast(weight);
                    var q = 0;
                    for (; q <= pr.Q - lanes; q += lanes)
                    {
                        TLanes.Store(TLanes.MultiplyAdd(broadcast, TLanes.Load(source + q), TLanes.Load(target + q)), target + q);
                    }

                    // The tail one float at a time (a whole vector would add into columns of the next phase): the same fused
                    // operation, so the same bits as a vector lane.
                    for (; q < pr.Q; q++)
                    {
                        target[q] = MathF.FusedMultiplyAdd(weight, source[q], target[q]);
                    }
                }
            }
        }
    }

    // ----- backward weight -----

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardWeight<TLanes, TVector>(ConvProblem pr, float[] x, float[] dy, float[] dw, ParallelOptions parallel)
        where TLanes : ILanes<TVector> where TVector : unmanaged
    {
        var plane = new PhasePlane((pr.P - 1) * pr.StrideH + pr.R, (pr.Q - 1) * pr.StrideW + pr.S, pr.StrideW, TLanes.Count);
        int kg = pr.FiltersPerGroup, taps = pr.R * pr.S, pq = pr.P * pr.Q;
        // Gradient rows are read in whole vectors; where Q is not a multiple of one, each plane is first copied to rows of
        // `pitch` floats with zeros past Q, so the lanes past a row multiply zeros (and the loops have no edge case).
        var pitch = (pr.Q + TLanes.Count - 1) / TLanes.Count * TLanes.Count;
        var gradientLength = pitch == pr.Q ? 0 : pr.P * pitch;
        // Channels, not images, are the parallel unit: a channel's filters own their slice of dw, summed over the images in order.
        Parallel.For(0, pr.C, parallel, c =>
        {
            using var scratch = PlaneScratch.Rent(plane.BufferLength(1) + gradientLength);
            // Running vector sums per (filter, tap) over the images, reduced to one float each at the end (on the stack
            // unless a large channel multiplier or filter would make them too big for a pool thread's stack).
            Span<TVector> running = kg * taps <= MaxStackSums ? stackalloc TVector[kg * taps] : new TVector[kg * taps];
            running.Clear();
            fixed (float* px = x, pdy = dy, padded = scratch.Array)
            fixed (TVector* sums = running)
            {
                var rows = padded + plane.BufferLength(1);
                for (var n = 0; n < pr.N; n++)
                {
                    plane.Fill(px + ((long)n * pr.C + c) * pr.H * pr.W, pr.H, pr.W, pr.PadH, pr.PadW, padded);
                    for (var j = 0; j < kg; j++)
                    {
                        var gradient = pdy + ((long)n * pr.K + c * kg + j) * pq;
                        if (gradientLength != 0)
                        {
                            new Span<float>(rows, gradientLength).Clear();
                            for (var p = 0; p < pr.P; p++)
                            {
                                new ReadOnlySpan<float>(gradient + p * pr.Q, pr.Q).CopyTo(new Span<float>(rows + p * pitch, pr.Q));
                            }

                            gradient = rows;
                        }

                        var tapSums = sums + j * taps;
                        if (pr.R == 3 && pr.S == 3)
                        {
                            Gradient3x3<TLanes, TVector>(pr, plane, padded, gradient, pitch, tapSums);
                            continue;
                        }

                        for (var tap = 0; tap < taps; tap++)
                        {
                            GradientTap<TLanes, TVector>(pr, plane, padded, gradient, pitch, tap, tapSums);
                        }
                    }
                }

                for (var i = 0; i < kg * taps; i++)
                {
                    dw[c * kg * taps + i] = TLanes.Sum(sums[i]);
                }
            }
        });
    }

    /// <summary>The most running sums of <see cref="BackwardWeight{TLanes, TVector}"/> kept on the stack (16 KiB of Vector512).</summary>
    private const int MaxStackSums = 256;

    /// <summary>
    /// sums[r·3 + s] += this image's lane sums of gradient[p, q]·padded[p·strideH + r, q·strideW + s] for the 9 taps of a
    /// 3 × 3 filter: each gradient vector loaded once for nine independent chains (one chain per tap would wait on every
    /// fused multiply-add's latency). Gradient rows are <paramref name="pitch"/> floats, zero past Q.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Gradient3x3<TLanes, TVector>(in ConvProblem pr, in PhasePlane plane, float* padded, float* gradient, int pitch, TVector* sums)
        where TLanes : ILanes<TVector> where TVector : unmanaged
    {
        int lanes = TLanes.Count, o0 = plane.ColumnOffset(0), o1 = plane.ColumnOffset(1), o2 = plane.ColumnOffset(2);
        int rows = pr.P, columns = pr.Q, rowStep = pr.StrideH * plane.Pitch, line = plane.Pitch;
        TVector a00 = TLanes.Zero, a01 = TLanes.Zero, a02 = TLanes.Zero, a10 = TLanes.Zero, a11 = TLanes.Zero, a12 = TLanes.Zero;
        TVector a20 = TLanes.Zero, a21 = TLanes.Zero, a22 = TLanes.Zero;
        for (var p = 0; p < rows; p++)
        {
            var source = gradient + p * pitch;
            var input0 = padded + p * rowStep;
            float* input1 = input0 + line, input2 = input0 + 2 * line;
            for (var q = 0; q < columns; q += lanes)
            {
                var g = TLanes.Load(source + q);
                a00 = TLanes.MultiplyAdd(g, TLanes.Load(input0 + o0 + q), a00);
                a01 = TLanes.MultiplyAdd(g, TLanes.Load(input0 + o1 + q), a01);
                a02 = TLanes.MultiplyAdd(g, TLanes.Load(input0 + o2 + q), a02);
                a10 = TLanes.MultiplyAdd(g, TLanes.Load(input1 + o0 + q), a10);
                a11 = TLanes.MultiplyAdd(g, TLanes.Load(input1 + o1 + q), a11);
                a12 = TLanes.MultiplyAdd(g, TLanes.Load(input1 + o2 + q), a12);
                a20 = TLanes.MultiplyAdd(g, TLanes.Load(input2 + o0 + q), a20);
                a21 = TLanes.MultiplyAdd(g, TLanes.Load(input2 + o1 + q), a21);
                a22 = TLanes.MultiplyAdd(g, TLanes.Load(input2 + o2 + q), a22);
            }
        }

        sums[0] = TLanes.Add(sums[0], a00);
        sums[1] = TLanes.Add(sums[1], a01);
        sums[2] = TLanes.Add(sums[2], a02);
        sums[3] = TLanes.Add(sums[3], a10);
        sums[4] = TLanes.Add(sums[4], a11);
        sums[5] = TLanes.Add(sums[5], a12);
        sums[6] = TLanes.Add(sums[6], a20);
        sums[7] = TLanes.Add(sums[7], a21);
        sums[8] = TLanes.Add(sums[8], a22);
    }

    /// <summary>sums[tap] += this image's lane sums of gradient[p, q]·padded[p·strideH + r, q·strideW + s] for one tap (r, s) of any filter size.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GradientTap<TLanes, TVector>(in ConvProblem pr, in PhasePlane plane, float* padded, float* gradient, int pitch, int tap, TVector* sums)
        where TLanes : ILanes<TVector> where TVector : unmanaged
    {
        int lanes = TLanes.Count, r = tap / pr.S, offset = r * plane.Pitch + plane.ColumnOffset(tap % pr.S);
        var a = TLanes.Zero;
        for (var p = 0; p < pr.P; p++)
        {
            float* source = gradient + p * pitch, input = padded + p * pr.StrideH * plane.Pitch + offset;
            for (var q = 0; q < pr.Q; q += lanes)
            {
                a = TLanes.MultiplyAdd(TLanes.Load(source + q), TLanes.Load(input + q), a);
            }
        }

        sums[tap] = TLanes.Add(sums[tap], a);
    }

    /// <summary>Runs body(first, last) over ranges covering [0, count), on the thread pool; ranges only share out independent planes.</summary>
    private static void ForEachRange(int count, ParallelOptions parallel, Action<int, int> body)
    {
        // About 16 ranges per thread: large enough to amortise renting a scratch plane, small enough to balance the load.
        var threads = parallel.MaxDegreeOfParallelism > 0 ? parallel.MaxDegreeOfParallelism : Environment.ProcessorCount;
        var size = Math.Max(1, count / (16 * threads));
        if (count <= size)
        {
            body(0, count);
            return;
        }

        Parallel.ForEach(Partitioner.Create(0, count, size), parallel, range => body(range.Item1, range.Item2));
    }

    /// <summary>
    /// A zero-padded plane of <see cref="Rows"/> × <see cref="Columns"/> (exactly the rows and columns the taps reach) whose
    /// columns are split by phase: column j sits at (j mod Stride)·PhaseWidth + j / Stride of its row, so at stride 2 the
    /// columns q·2 + s of tap s are one contiguous run.
    /// </summary>
    private readonly struct PhasePlane
    {
        public PhasePlane(int rows, int columns, int stride, int lanes)
        {
            Rows = rows;
            Columns = columns;
            Stride = stride;
            PhaseWidth = (columns + stride - 1) / stride;
            Pitch = stride * PhaseWidth;
            Length = rows * Pitch;
            _slack = lanes;
        }

        public int Rows { get; }

        public int Columns { get; }

        public int Stride { get; }

        public int PhaseWidth { get; }

        public int Pitch { get; }

        /// <summary>Floats per plane in a buffer of several (their rows follow on without gaps).</summary>
        public int Length { get; }

        private readonly int _slack;

        /// <summary>A buffer of <paramref name="planes"/> planes and a vector of slack past the last.</summary>
        public int BufferLength(int planes) => planes * Length + _slack;

        /// <summary>Where column j of a row sits, from the row's start.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int ColumnOffset(int column) => column % Stride * PhaseWidth + column / Stride;

        /// <summary>
        /// destination (one plane and the slack after it) = source (height × width) at row padTop, column padLeft, zeros
        /// elsewhere; source rows and columns past the plane's are dropped (no tap reaches them).
        /// </summary>
        public void Fill(float* source, int height, int width, int padTop, int padLeft, float* destination)
        {
            new Span<float>(destination, Length + _slack).Clear();
            var columns = Math.Max(0, Math.Min(width, Columns - padLeft));
            for (var h = 0; h < height && h + padTop < Rows; h++)
            {
                var from = source + (long)h * width;
                var row = destination + (h + padTop) * Pitch;
                if (Stride == 1)
                {
                    new ReadOnlySpan<float>(from, columns).CopyTo(new Span<float>(row + padLeft, columns));
                    continue;
                }

                // Phase by phase (no division per element): source column i goes to column i + padLeft.
                for (var phase = 0; phase < Stride; phase++)
                {
                    var i = ((phase - padLeft) % Stride + Stride) % Stride;
                    var to = row + ColumnOffset(i + padLeft);
                    for (; i < columns; i += Stride)
                    {
                        *to++ = from[i];
                    }
                }
            }
        }

        /// <summary>destination (height × width) = the window at row padTop, column padLeft of source; 0 where no row or column of it is.</summary>
        public void Crop(float* source, int height, int width, int padTop, int padLeft, float* destination)
        {
            var columns = Math.Max(0, Math.Min(width, Columns - padLeft));
            for (var h = 0; h < height; h++)
            {
                var to = new Span<float>(destination + (long)h * width, width);
                to.Clear();
                if (h + padTop >= Rows)
                {
                    continue;
                }

                var row = source + (h + padTop) * Pitch;
                for (var phase = 0; phase < Stride; phase++)
                {
                    var i = ((phase - padLeft) % Stride + Stride) % Stride;
                    var from = row + ColumnOffset(i + padLeft);
                    for (; i < columns; i += Stride)
                    {
                        to[i] = *from++;
                    }
                }
            }
        }
    }
}
