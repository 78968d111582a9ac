using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace CheapConv.Backends.Cpu;

/// <summary>
/// Single-precision GEMM for the fast CPU paths: C = (accumulate ? C : 0) + op(A)·op(B), row-major, with
/// cache blocking (KC × MC blocks of A and KC × NC blocks of B packed into micro-panels) and a register-tiled
/// micro-kernel on Vector512 (8×32 tile), Vector256 (6×16) or scalar code, whichever the machine runs natively.
/// </summary>
/// <remarks>
/// Determinism: every element of C is a chain of fused multiply-adds over k in increasing order within each
/// depth block (⌈k/256⌉ equal blocks), and the block partial sums are added to C in increasing order. The blocking
/// depends on k only, never on the thread count, and threads only split C into disjoint tiles, so the result is
/// bit-identical for any degree of parallelism, and (FMA rounds once in all three kernels) on any of the paths.
/// </remarks>
internal static unsafe class CpuGemm
{
    /// <summary>The largest depth of one packed block; k is cut into ⌈k/256⌉ equal blocks, which depends on k only, because it decides the order of the additions.</summary>
    public const int BlockDepth = 256;

    private const int BlockRows = 96;

    private const int BlockColumns = 1024;

    private static readonly (int Rows, int Columns) Tile = Vector512.IsHardwareAccelerated ? (8, 32)
        : Vector256.IsHardwareAccelerated ? (6, 16)
        : (4, 8);

    /// <summary>
    /// NR, the column count of a packed panel of B. A caller that produces B itself (im2col) can write it straight
    /// into the packed layout <see cref="MultiplyPackedA"/> takes: panel j (columns j·NR … j·NR+NR−1, zero past n)
    /// holds k rows of NR values, row p at offset (j·k + p)·NR.
    /// </summary>
    public static int PanelWidth => Tile.Columns;

    /// <summary>MR, the row count of a packed panel of A (see <see cref="PackWholeA"/> for the layout).</summary>
    public static int PanelRows => Tile.Rows;

    /// <summary>Floats of a packed B of <paramref name="k"/> × <paramref name="n"/> (whole panels).</summary>
    public static long PackedLength(int k, int n) => (long)(n + Tile.Columns - 1) / Tile.Columns * Tile.Columns * k;

    /// <summary>Floats of a packed A of <paramref name="m"/> × <paramref name="k"/> (whole panels of MR rows).</summary>
    public static long PackedALength(int m, int k) => (long)(m + Tile.Rows - 1) / Tile.Rows * Tile.Rows * k;

    /// <summary>
    /// Packs op(A) (m×k, stored as in <see cref="Multiply(bool, bool, int, int, int, float*, int, float*, int, float*, int, bool, ParallelOptions?)"/>)
    /// once, for a caller that multiplies the same A by many B (a convolution's weights, one image after another):
    /// panel i (rows i·MR … i·MR+MR−1, zero past m) holds k steps of MR values, step p at offset (i·k + p)·MR.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackWholeA(bool transposeA, int m, int k, float* a, int lda, float* packed)
    {
        var operands = new Operands(transposeA, false, m, 0, k, a, lda, null, 0, null, null, null, 0, false);
        // Panel i of the whole-depth layout is PackA's panel i with kc = k.
        PackA(operands, 0, m, 0, k, Tile.Rows, packed);
    }

    /// <summary>As <see cref="Multiply(bool, bool, int, int, int, float*, int, float*, int, float*, int, bool, ParallelOptions?)"/> with A packed by <see cref="PackWholeA"/> and B packed (<paramref name="packedB"/>) or given by rows (B[p·ldb + j]).</summary>
    public static void MultiplyPackedA(int m, int n, int k, float* packedA, float* packedB, float* b, int ldb, float* c, int ldc,
        bool accumulate, ParallelOptions? parallel) =>
        MultiplyCore(false, false, m, n, k, null, 0, b, ldb, packedA, packedB, c, ldc, accumulate, parallel);

    // The packing buffers of the blocks running at once (kept from call to call, see ScratchArrays).
    private static readonly ScratchArrays PackedAScratch = new(pinned: true);
    private static readonly ScratchArrays PackedBScratch = new(pinned: true);

    /// <summary>
    /// C[m×n] (row stride <paramref name="ldc"/>) = (accumulate ? C : 0) + op(A)·op(B), where op(A) is m×k and
    /// stored as A[i·lda + p] (or A[p·lda + i] when <paramref name="transposeA"/>), op(B) is k×n and stored as
    /// B[p·ldb + j] (or B[j·ldb + p] when <paramref name="transposeB"/>). With <paramref name="parallel"/> the
    /// tiles of C are spread over the thread pool within its bound; null runs serially (callers that already run one GEMM per thread).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(bool transposeA, bool transposeB, int m, int n, int k, float* a, int lda, float* b, int ldb,
        float* c, int ldc, bool accumulate, ParallelOptions? parallel) =>
        MultiplyCore(transposeA, transposeB, m, n, k, a, lda, b, ldb, null, null, c, ldc, accumulate, parallel);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MultiplyCore(bool transposeA, bool transposeB, int m, int n, int k, float* a, int lda, float* b, int ldb,
        float* packedA, float* packedB, float* c, int ldc, bool accumulate, ParallelOptions? parallel)
    {
        if (m <= 0 || n <= 0)
        {
            return;
        }

        if (k <= 0)
        {
            if (!accumulate)
            {
                for (var i = 0; i < m; i++)
                {
                    new Span<float>(c + (long)i * ldc, n).Clear();
                }
            }

            return;
        }

        int rowBlocks = (m + BlockRows - 1) / BlockRows, columnBlocks = (n + BlockColumns - 1) / BlockColumns;
        int blocks = rowBlocks * columnBlocks;
        var operands = new Operands(transposeA, transposeB, m, n, k, a, lda, b, ldb, packedA, packedB, c, ldc, accumulate);
        // The parallel loops live in methods of their own: a lambda here would make every call, the serial per-image
        // GEMMs of a convolution included, allocate the closure of this method's captured variables.
        if (parallel is not null && blocks > 1)
        {
            RunBlocksInParallel(operands, blocks, columnBlocks, parallel);
        }
        else if (parallel is not null && m >= 2 * Tile.Rows && (long)m * n * k >= 1 << 20)
        {
            RunHalvesInParallel(operands, parallel);
        }
        else
        {
            for (var block = 0; block < blocks; block++)
            {
                RunBlock(operands, block / columnBlocks * BlockRows, block % columnBlocks * BlockColumns);
            }
        }
    }

    private static void RunBlocksInParallel(Operands operands, int blocks, int columnBlocks, ParallelOptions parallel) =>
        Parallel.For(0, blocks, parallel, block => RunBlock(operands, block / columnBlocks * BlockRows, block % columnBlocks * BlockColumns));

    /// <summary>One block but enough work: its rows split into whole-tile halves (disjoint outputs, same sums).</summary>
    private static void RunHalvesInParallel(Operands o, ParallelOptions parallel)
    {
        var half = (o.M / 2 + Tile.Rows - 1) / Tile.Rows * Tile.Rows;
        Parallel.For(0, 2, parallel, part =>
        {
            var rows = part == 0 ? half : o.M - half;
            var offset = part == 0 ? 0 : half;
            var sub = new Operands(o.TransposeA, o.TransposeB, rows, o.N, o.K,
                o.PackedA != null ? null : o.TransposeA ? o.A + offset : o.A + (long)offset * o.Lda, o.Lda, o.B, o.Ldb,
                o.PackedA == null ? null : o.PackedA + (long)offset * o.K, o.PackedB, o.C + (long)offset * o.Ldc, o.Ldc, o.Accumulate);
            RunBlock(sub, 0, 0);
        });
    }

    /// <summary>Managed-array convenience over <see cref="Multiply(bool, bool, int, int, int, float*, int, float*, int, float*, int, bool, ParallelOptions?)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Multiply(bool transposeA, bool transposeB, int m, int n, int k, float[] a, int aOffset, int lda,
        float[] b, int bOffset, int ldb, float[] c, int cOffset, int ldc, bool accumulate, ParallelOptions? parallel)
    {
        fixed (float* pa = a, pb = b, pc = c)
        {
            Multiply(transposeA, transposeB, m, n, k, pa + aOffset, lda, pb + bOffset, ldb, pc + cOffset, ldc, accumulate, parallel);
        }
    }

    /// <summary>
    /// C[m×n] (row stride <paramref name="ldc"/>) = (accumulate ? C : 0) + A·Bᵀ where A (m×k) and B (n×k) are both stored by
    /// rows (strides <paramref name="lda"/>, <paramref name="ldb"/>): every element is a dot product of two contiguous rows,
    /// so nothing is packed or transposed. Suits long k and small m, n (a convolution's weight gradient, summed over
    /// output positions). 4×4 tiles of vector dot products; each element's sum is lane-wise over k, then the lanes, then
    /// the k tail — a fixed order. Single-threaded (callers split the work).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyRowsDot(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        int m4 = m / 4 * 4, n4 = n / 4 * 4;
        var tile = stackalloc float[16];
        for (var i = 0; i < m; i += 4)
        {
            for (var j = 0; j < n; j += 4)
            {
                if (i < m4 && j < n4)
                {
                    DotTile(k, a + (long)i * lda, lda, b + (long)j * ldb, ldb, tile);
                    for (var ii = 0; ii < 4; ii++)
                    {
                        for (var jj = 0; jj < 4; jj++)
                        {
                            ref var target = ref c[(long)(i + ii) * ldc + j + jj];
                            target = accumulate ? target + tile[ii * 4 + jj] : tile[ii * 4 + jj];
                        }
                    }

                    continue;
                }

                for (var ii = i; ii < Math.Min(m, i + 4); ii++)
                {
                    for (var jj = j; jj < Math.Min(n, j + 4); jj++)
                    {
                        var dot = Dot(k, a + (long)ii * lda, b + (long)jj * ldb);
                        ref var target = ref c[(long)ii * ldc + jj];
                        target = accumulate ? target + dot : dot;
                    }
                }
            }
        }
    }

    /// <summary>tile[i·4 + j] = Σ_p a[i·lda + p]·b[j·ldb + p] for a 4×4 tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotTile(int k, float* a, int lda, float* b, int ldb, float* tile)
    {
        float* a0 = a, a1 = a + lda, a2 = a + 2L * lda, a3 = a + 3L * lda;
        float* b0 = b, b1 = b + ldb, b2 = b + 2L * ldb, b3 = b + 3L * ldb;
        var p = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default, c12 = default, c13 = default;
            Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default, c30 = default, c31 = default, c32 = default, c33 = default;
            for (; p <= k - 16; p += 16)
            {
                Vector512<float> x0 = Vector512.Load(a0 + p), x1 = Vector512.Load(a1 + p), x2 = Vector512.Load(a2 + p), x3 = Vector512.Load(a3 + p);
                var y = Vector512.Load(b0 + p);
                c00 = Vector512.FusedMultiplyAdd(x0, y, c00);
                c10 = Vector512.FusedMultiplyAdd(x1, y, c10);
                c20 = Vector512.FusedMultiplyAdd(x2, y, c20);
                c30 = Vector512.FusedMultiplyAdd(x3, y, c30);
                y = Vector512.Load(b1 + p);
                c01 = Vector512.FusedMultiplyAdd(x0, y, c01);
                c11 = Vector512.FusedMultiplyAdd(x1, y, c11);
                c21 = Vector512.FusedMultiplyAdd(x2, y, c21);
                c31 = Vector512.FusedMultiplyAdd(x3, y, c31);
                y = Vector512.Load(b2 + p);
                c02 = Vector512.FusedMultiplyAdd(x0, y, c02);
                c12 = Vector512.FusedMultiplyAdd(x1, y, c12);
                c22 = Vector512.FusedMultiplyAdd(x2, y, c22);
                c32 = Vector512.FusedMultiplyAdd(x3, y, c32);
                y = Vector512.Load(b3 + p);
                c03 = Vector512.FusedMultiplyAdd(x0, y, c03);
                c13 = Vector512.FusedMultiplyAdd(x1, y, c13);
                c23 = Vector512.FusedMultiplyAdd(x2, y, c23);
                c33 = Vector512.FusedMultiplyAdd(x3, y, c33);
            }

            tile[0] = Vector512.Sum(c00);
            tile[1] = Vector512.Sum(c01);
            tile[2] = Vector512.Sum(c02);
            tile[3] = Vector512.Sum(c03);
            tile[4] = Vector512.Sum(c10);
            tile[5] = Vector512.Sum(c11);
            tile[6] = Vector512.Sum(c12);
            tile[7] = Vector512.Sum(c13);
            tile[8] = Vector512.Sum(c20);
            tile[9] = Vector512.Sum(c21);
            tile[10] = Vector512.Sum(c22);
            tile[11] = Vector512.Sum(c23);
            tile[12] = Vector512.Sum(c30);
            tile[13] = Vector512.Sum(c31);
            tile[14] = Vector512.Sum(c32);
            tile[15] = Vector512.Sum(c33);
        }
        else
        {
            for (var index = 0; index < 16; index++)
            {
                tile[index] = 0;
            }
        }

        // The k tail (or all of k without Vector512), element by element in order.
        for (var ii = 0; ii < 4; ii++)
        {
            var row = a + (long)ii * lda;
            for (var jj = 0; jj < 4; jj++)
            {
                tile[ii * 4 + jj] += DotFrom(p, k, row, b + (long)jj * ldb);
            }
        }
    }

    /// <summary>Σ_p a[p]·b[p]: Vector512 lanes, then the lanes, then the tail (the same order as a tile's elements).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot(int k, float* a, float* b)
    {
        var p = 0;
        var sum = 0f;
        if (Vector512.IsHardwareAccelerated)
        {
            var acc = Vector512<float>.Zero;
            for (; p <= k - 16; p += 16)
            {
                acc = Vector512.FusedMultiplyAdd(Vector512.Load(a + p), Vector512.Load(b + p), acc);
            }

            sum = Vector512.Sum(acc);
        }

        return sum + DotFrom(p, k, a, b);
    }

    /// <summary>Σ_{q = p…k−1} a[q]·b[q] in order, as fused multiply-adds; vectorised 8 lanes at a time where there is no Vector512.</summary>
    private static float DotFrom(int p, int k, float* a, float* b)
    {
        var sum = 0f;
        if (!Vector512.IsHardwareAccelerated && Vector256.IsHardwareAccelerated && k - p >= 8)
        {
            var acc = Vector256<float>.Zero;
            for (; p <= k - 8; p += 8)
            {
                acc = Vector256.FusedMultiplyAdd(Vector256.Load(a + p), Vector256.Load(b + p), acc);
            }

            sum = Vector256.Sum(acc);
        }

        for (; p < k; p++)
        {
            sum = MathF.FusedMultiplyAdd(a[p], b[p], sum);
        }

        return sum;
    }

    /// <summary>The arguments of one GEMM, passed by reference to the block workers.</summary>
    private readonly struct Operands(bool transposeA, bool transposeB, int m, int n, int k, float* a, int lda, float* b, int ldb,
        float* packedA, float* packedB, float* c, int ldc, bool accumulate)
    {
        public readonly bool TransposeA = transposeA, TransposeB = transposeB, Accumulate = accumulate;
        public readonly int M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc;
        public readonly float* A = a, B = b, PackedA = packedA, PackedB = packedB, C = c;
    }

    /// <summary>One MC × NC block of C over the whole depth, on the calling thread.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunBlock(in Operands o, int row0, int column0)
    {
        var (mr, nr) = Tile;
        int mc = Math.Min(BlockRows, o.M - row0), nc = Math.Min(BlockColumns, o.N - column0);
        int rowPanels = (mc + mr - 1) / mr, columnPanels = (nc + nr - 1) / nr;
        using var packedA = PackedAScratch.Rent(BlockRows * BlockDepth + 64);
        using var packedB = PackedBScratch.Rent(BlockColumns * BlockDepth + 64);
        var edge = stackalloc float[8 * 32];
        fixed (float* pa = packedA.Array, pb = packedB.Array)
        {
            // Equal depth blocks of at most BlockDepth (288 = 2 × 144, not 256 + 32): a function of k alone, so still deterministic.
            var depthBlocks = (o.K + BlockDepth - 1) / BlockDepth;
            var depthStep = (o.K + depthBlocks - 1) / depthBlocks;
            for (var depth0 = 0; depth0 < o.K; depth0 += depthStep)
            {
                var kc = Math.Min(depthStep, o.K - depth0);
                var overwrite = depth0 == 0 && !o.Accumulate;
                if (o.PackedA == null)
                {
                    PackA(o, row0, mc, depth0, kc, mr, pa);
                }
                if (o.PackedB == null)
                {
                    PackB(o, column0, nc, depth0, kc, nr, pb);
                }
                // Column panels outside, row panels inside: one kc × NR panel of B (32 KiB at kc = 256) stays in L1 while the
                // A block streams from L2 at MR floats per step, instead of NR floats of B per step streaming from L2.
                // Each tile's sums are the same either way (the order only decides which tile is computed first).
                for (var jp = 0; jp < columnPanels; jp++)
                {
                    var columns = Math.Min(nr, nc - jp * nr);
                    var panelB = o.PackedB == null ? pb + (long)jp * nr * kc : o.PackedB + ((long)(column0 / nr + jp) * o.K + depth0) * nr;
                    for (var ip = 0; ip < rowPanels; ip++)
                    {
                        var rows = Math.Min(mr, mc - ip * mr);
                        var panelA = o.PackedA == null ? pa + (long)ip * mr * kc : o.PackedA + ((long)(row0 / mr + ip) * o.K + depth0) * mr;
                        var target = o.C + (long)(row0 + ip * mr) * o.Ldc + column0 + jp * nr;
                        if (rows == mr && columns == nr)
                        {
                            MicroKernel(kc, panelA, panelB, target, o.Ldc, overwrite);
                        }
                        else
                        {
                            MicroKernel(kc, panelA, panelB, edge, nr, overwrite: true);
                            for (var i = 0; i < rows; i++)
                            {
                                for (var j = 0; j < columns; j++)
                                {
                                    target[(long)i * o.Ldc + j] = overwrite ? edge[i * nr + j] : target[(long)i * o.Ldc + j] + edge[i * nr + j];
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>Packs rows [row0, row0+mc) × depth [depth0, depth0+kc) of op(A) into panels of mr rows, k-major, zero-padded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(in Operands o, int row0, int mc, int depth0, int kc, int mr, float* packed)
    {
        for (var panel = 0; panel * mr < mc; panel++)
        {
            var rows = Math.Min(mr, mc - panel * mr);
            var destination = packed + (long)panel * mr * kc;
            var firstRow = row0 + panel * mr;
            if (o.TransposeA)
            {
                // A[i,p] = a[p·lda + i]: each depth step is a contiguous run of rows.
                for (var p = 0; p < kc; p++)
                {
                    var source = o.A + (long)(depth0 + p) * o.Lda + firstRow;
                    var d = destination + p * mr;
                    for (var i = 0; i < rows; i++)
                    {
                        d[i] = source[i];
                    }

                    for (var i = rows; i < mr; i++)
                    {
                        d[i] = 0;
                    }
                }
            }
            else
            {
                for (var i = 0; i < rows; i++)
                {
                    var source = o.A + (long)(firstRow + i) * o.Lda + depth0;
                    for (var p = 0; p < kc; p++)
                    {
                        destination[p * mr + i] = source[p];
                    }
                }

                for (var i = rows; i < mr; i++)
                {
                    for (var p = 0; p < kc; p++)
                    {
                        destination[p * mr + i] = 0;
                    }
                }
            }
        }
    }

    /// <summary>Packs depth [depth0, depth0+kc) × columns [column0, column0+nc) of op(B) into panels of nr columns, k-major, zero-padded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(in Operands o, int column0, int nc, int depth0, int kc, int nr, float* packed)
    {
        for (var panel = 0; panel * nr < nc; panel++)
        {
            var columns = Math.Min(nr, nc - panel * nr);
            var destination = packed + (long)panel * nr * kc;
            var firstColumn = column0 + panel * nr;
            if (!o.TransposeB)
            {
                for (var p = 0; p < kc; p++)
                {
                    var source = o.B + (long)(depth0 + p) * o.Ldb + firstColumn;
                    var d = destination + p * nr;
                    if (columns == nr)
                    {
                        new ReadOnlySpan<float>(source, nr).CopyTo(new Span<float>(d, nr));
                    }
                    else
                    {
                        for (var j = 0; j < columns; j++)
                        {
                            d[j] = source[j];
                        }

                        for (var j = columns; j < nr; j++)
                        {
                            d[j] = 0;
                        }
                    }
                }
            }
            else
            {
                // B[p,j] = b[j·ldb + p]: read each column's run along k, write strided.
                for (var j = 0; j < columns; j++)
                {
                    var source = o.B + (long)(firstColumn + j) * o.Ldb + depth0;
                    for (var p = 0; p < kc; p++)
                    {
                        destination[p * nr + j] = source[p];
                    }
                }

                for (var j = columns; j < nr; j++)
                {
                    for (var p = 0; p < kc; p++)
                    {
                        destination[p * nr + j] = 0;
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MicroKernel(int kc, float* a, float* b, float* c, int ldc, bool overwrite)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Kernel512(kc, a, new PackedPanel512(b), c, ldc, overwrite);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Kernel256(kc, a, b, c, ldc, overwrite);
        }
        else
        {
            KernelScalar(kc, a, b, c, ldc, overwrite);
        }
    }

    /// <summary>Where the 8×32 Vector512 kernel finds the 32 B values of each depth step (two runs of 16).</summary>
    internal interface IPanel512
    {
        /// <summary>The 32 values of depth step <paramref name="step"/>: lanes 0…15 and 16…31.</summary>
        void Load(int step, out Vector512<float> left, out Vector512<float> right);
    }

    /// <summary>A packed B panel: step p at panel[p·32 …].</summary>
    private readonly struct PackedPanel512(float* panel) : IPanel512
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Load(int step, out Vector512<float> left, out Vector512<float> right)
        {
            var values = panel + (long)step * 32;
            left = Vector512.Load(values);
            right = Vector512.Load(values + 16);
        }
    }

    /// <summary>
    /// 8×32 tile: 16 zmm accumulators, 2 B loads and 8 broadcasts per depth step; A is a packed panel (step p at a[p·8 …]).
    /// Generic over where B comes from (a struct, so the JIT compiles one loop per source with the loads inlined); every
    /// source gets the same chains of fused multiply-adds, hence the same bits for the same values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel512<TPanel>(int kc, float* a, TPanel b, float* c, int ldc, bool overwrite)
        where TPanel : struct, IPanel512
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (var p = 0; p < kc; p++)
        {
            b.Load(p, out var b0, out var b1);
            var x = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(x, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[1]);
            c10 = Vector512.FusedMultiplyAdd(x, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[2]);
            c20 = Vector512.FusedMultiplyAdd(x, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[3]);
            c30 = Vector512.FusedMultiplyAdd(x, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[4]);
            c40 = Vector512.FusedMultiplyAdd(x, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[5]);
            c50 = Vector512.FusedMultiplyAdd(x, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a[6]);
            c60 = Vector512.FusedMultiplyAdd(x, b0, c60);
            c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a[7]);
            c70 = Vector512.FusedMultiplyAdd(x, b0, c70);
            c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
            a += 8;
        }

        Store512(c, c00, c01, overwrite);
        Store512(c + ldc, c10, c11, overwrite);
        Store512(c + 2L * ldc, c20, c21, overwrite);
        Store512(c + 3L * ldc, c30, c31, overwrite);
        Store512(c + 4L * ldc, c40, c41, overwrite);
        Store512(c + 5L * ldc, c50, c51, overwrite);
        Store512(c + 6L * ldc, c60, c61, overwrite);
        Store512(c + 7L * ldc, c70, c71, overwrite);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Store512(float* row, Vector512<float> left, Vector512<float> right, bool overwrite)
    {
        if (!overwrite)
        {
            left += Vector512.Load(row);
            right += Vector512.Load(row + 16);
        }

        left.Store(row);
        right.Store(row + 16);
    }

    /// <summary>6×16 tile for AVX2 (16 ymm registers): 12 accumulators, 2 B loads, 1 broadcast.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel256(int kc, float* a, float* b, float* c, int ldc, bool overwrite)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (var p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var x = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(x, b0, c00);
            c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]);
            c10 = Vector256.FusedMultiplyAdd(x, b0, c10);
            c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]);
            c20 = Vector256.FusedMultiplyAdd(x, b0, c20);
            c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]);
            c30 = Vector256.FusedMultiplyAdd(x, b0, c30);
            c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4]);
            c40 = Vector256.FusedMultiplyAdd(x, b0, c40);
            c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5]);
            c50 = Vector256.FusedMultiplyAdd(x, b0, c50);
            c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
            a += 6;
            b += 16;
        }

        Store256(c, c00, c01, overwrite);
        Store256(c + ldc, c10, c11, overwrite);
        Store256(c + 2L * ldc, c20, c21, overwrite);
        Store256(c + 3L * ldc, c30, c31, overwrite);
        Store256(c + 4L * ldc, c40, c41, overwrite);
        Store256(c + 5L * ldc, c50, c51, overwrite);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256(float* row, Vector256<float> left, Vector256<float> right, bool overwrite)
    {
        if (!overwrite)
        {
            left += Vector256.Load(row);
            right += Vector256.Load(row + 8);
        }

        left.Store(row);
        right.Store(row + 8);
    }

    /// <summary>4×8 tile in scalar code, the same fused multiply-adds in the same order as the vector kernels.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void KernelScalar(int kc, float* a, float* b, float* c, int ldc, bool overwrite)
    {
        var acc = stackalloc float[4 * 8];
        new Span<float>(acc, 32).Clear();
        for (var p = 0; p < kc; p++)
        {
            for (var i = 0; i < 4; i++)
            {
                for (var j = 0; j < 8; j++)
                {
                    acc[i * 8 + j] = MathF.FusedMultiplyAdd(a[i], b[j], acc[i * 8 + j]);
                }
            }

            a += 4;
            b += 8;
        }

        for (var i = 0; i < 4; i++)
        {
            for (var j = 0; j < 8; j++)
            {
                c[(long)i * ldc + j] = overwrite ? acc[i * 8 + j] : c[(long)i * ldc + j] + acc[i * 8 + j];
            }
        }
    }
}
