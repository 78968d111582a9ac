using CheapConv.Devices;
using CheapConv.Kernels;
using CheapConv.Problems;

namespace CheapConv.Backends;

// The GEMM family (native/kernels/gemm.cu): pointwise 1×1 convolution and the linear layer, all on one tiled SGEMM
// core whose blocks own 64×64 tiles of the output.
public sealed unsafe partial class GpuBackend
{
    /// <summary>Threads per block of the GEMM kernels (kThreads in gemm.cu).</summary>
    public const int GemmBlock = 256;

    /// <summary>Rows and columns of the output tile one GEMM block computes (kTileM = kTileN in gemm.cu).</summary>
    public const int GemmTile = 64;

    /// <summary>Depth of the reduction slice staged in shared memory per step (kTileK in gemm.cu).</summary>
    public const int GemmTileK = 16;

    /// <summary>Blocks a split weight gradient aims for: about two waves on a 132-SM H100.</summary>
    public const int SplitTargetBlocks = 256;

    /// <summary>Fewest reduction indices one split sums, so that splitting does not trade one long loop for many tiny ones plus a big reduction.</summary>
    public const int SplitMinChunk = 512;

    private const int MaxGridYZ = 65535;

    /// <summary>
    /// Whether <see cref="Conv2dForward"/>, <see cref="Conv2dBackwardData"/> and <see cref="Conv2dBackwardWeight"/> send
    /// pointwise problems (see <see cref="IsPointwise"/>) to the GEMM kernels (the default). False keeps every problem
    /// on the direct kernels, so tests and benchmarks can still run those on 1×1 shapes.
    /// </summary>
    public bool PointwiseAsGemm { get; init; } = true;

    /// <summary>A problem the pointwise GEMM kernels compute: R = S = 1, groups = 1, no padding, any stride.</summary>
    public static bool IsPointwise(ConvProblem problem) =>
        problem.R == 1 && problem.S == 1 && problem.Groups == 1 && problem.PadH == 0 && problem.PadW == 0;

    void IBackend.PointwiseForward(ConvProblem problem, Storage x, Storage w, Storage y) =>
        PointwiseForward(problem, Buffer(x), Buffer(w), Buffer(y));

    void IBackend.PointwiseBackwardData(ConvProblem problem, Storage dy, Storage w, Storage dx) =>
        PointwiseBackwardData(problem, Buffer(dy), Buffer(w), Buffer(dx));

    void IBackend.PointwiseBackwardWeight(ConvProblem problem, Storage x, Storage dy, Storage dw) =>
        PointwiseBackwardWeight(problem, Buffer(x), Buffer(dy), Buffer(dw));

    /// <summary>y = 1×1 conv(x, w): Y (K × N·P·Q) = W (K×C) · X (C × N·P·Q, read at the strided pixels).</summary>
    public void PointwiseForward(ConvProblem problem, DeviceBuffer<float> x, DeviceBuffer<float> w, DeviceBuffer<float> y)
    {
        CpuBackend.CheckPointwise(problem);
        Check(problem, (nameof(x), x, problem.InputElements), (nameof(w), w, problem.WeightElements), (nameof(y), y, problem.OutputElements));
        Launch(KernelNames.PointwiseForward, GemmConfig(problem.K, problem.OutputElements / problem.K, 1), problem, x.Pointer, w.Pointer, y.Pointer);
    }

    /// <summary>dx = Wᵀ · dy at the strided pixels, 0 at the others (every dx element is written).</summary>
    public void PointwiseBackwardData(ConvProblem problem, DeviceBuffer<float> dy, DeviceBuffer<float> w, DeviceBuffer<float> dx)
    {
        CpuBackend.CheckPointwise(problem);
        Check(problem, (nameof(dy), dy, problem.OutputElements), (nameof(w), w, problem.WeightElements), (nameof(dx), dx, problem.InputElements));
        Launch(KernelNames.PointwiseBackwardData, GemmConfig(problem.C, problem.OutputElements / problem.K, 1), problem, dy.Pointer, w.Pointer, dx.Pointer);
    }

    /// <summary>dw = dy · xᵀ summed over all N·P·Q positions (overwrites dw), split by <see cref="SplitChunk"/>.</summary>
    public void PointwiseBackwardWeight(ConvProblem problem, DeviceBuffer<float> x, DeviceBuffer<float> dy, DeviceBuffer<float> dw) =>
        PointwiseBackwardWeight(problem, x, dy, dw, SplitChunk(problem.K, problem.C, problem.OutputElements / problem.K));

    /// <summary>
    /// dw = dy · xᵀ with the N·P·Q positions split into chunks of <paramref name="chunk"/>: one block column per
    /// chunk writes a partial product, and the partials are added in chunk order (deterministic). A chunk of at least
    /// N·P·Q is a single pass straight into dw. Public so tests can force any split.
    /// </summary>
    public void PointwiseBackwardWeight(ConvProblem problem, DeviceBuffer<float> x, DeviceBuffer<float> dy, DeviceBuffer<float> dw, int chunk)
    {
        CpuBackend.CheckPointwise(problem);
        Check(problem, (nameof(x), x, problem.InputElements), (nameof(dy), dy, problem.OutputElements), (nameof(dw), dw, problem.WeightElements));
        SplitLaunch(KernelNames.PointwiseBackwardWeight, problem.ToString(), problem.K, problem.C, problem.OutputElements / problem.K, chunk, dw,
            (ref KernelArguments args) => args.Add(problem), x.Pointer, dy.Pointer);
    }

    /// <summary>y = x·wᵀ + b.</summary>
    public void LinearForward(int n, int inFeatures, int outFeatures, Storage x, Storage w, Storage b, Storage y)
    {
        CheckLinear(n, inFeatures, outFeatures, ("x", x, (long)n * inFeatures), ("w", w, (long)outFeatures * inFeatures), ("b", b, outFeatures), ("y", y, (long)n * outFeatures));
        var args = LinearArguments(n, inFeatures, outFeatures);
        args.Add(Buffer(x).Pointer);
        args.Add(Buffer(w).Pointer);
        args.Add(Buffer(b).Pointer);
        args.Add(Buffer(y).Pointer);
        args.Launch(Device, KernelNames.LinearForward, GemmConfig(n, outFeatures, 1), LinearDescription(n, inFeatures, outFeatures));
    }

    /// <summary>dx = dy·w.</summary>
    public void LinearBackwardData(int n, int inFeatures, int outFeatures, Storage dy, Storage w, Storage dx)
    {
        CheckLinear(n, inFeatures, outFeatures, ("dy", dy, (long)n * outFeatures), ("w", w, (long)outFeatures * inFeatures), ("dx", dx, (long)n * inFeatures));
        var args = LinearArguments(n, inFeatures, outFeatures);
        args.Add(Buffer(dy).Pointer);
        args.Add(Buffer(w).Pointer);
        args.Add(Buffer(dx).Pointer);
        args.Launch(Device, KernelNames.LinearBackwardData, GemmConfig(n, inFeatures, 1), LinearDescription(n, inFeatures, outFeatures));
    }

    /// <summary>dw = dyᵀ·x (overwrites dw), the n samples split by <see cref="SplitChunk"/>.</summary>
    public void LinearBackwardWeight(int n, int inFeatures, int outFeatures, Storage x, Storage dy, Storage dw) =>
        LinearBackwardWeight(n, inFeatures, outFeatures, x, dy, dw, SplitChunk(outFeatures, inFeatures, n));

    /// <summary>dw = dyᵀ·x with the samples split into chunks of <paramref name="chunk"/> (see the pointwise overload).</summary>
    public void LinearBackwardWeight(int n, int inFeatures, int outFeatures, Storage x, Storage dy, Storage dw, int chunk)
    {
        CheckLinear(n, inFeatures, outFeatures, ("x", x, (long)n * inFeatures), ("dy", dy, (long)n * outFeatures), ("dw", dw, (long)outFeatures * inFeatures));
        SplitLaunch(KernelNames.LinearBackwardWeight, LinearDescription(n, inFeatures, outFeatures), outFeatures, inFeatures, n, chunk, Buffer(dw),
            (ref KernelArguments args) =>
            {
                args.Add(n);
                args.Add(inFeatures);
                args.Add(outFeatures);
            },
            Buffer(x).Pointer, Buffer(dy).Pointer);
    }

    /// <summary>db = column sums of dy, rows added in order.</summary>
    public void LinearBackwardBias(int n, int outFeatures, Storage dy, Storage db)
    {
        CheckLinear(n, 1, outFeatures, ("dy", dy, (long)n * outFeatures), ("db", db, outFeatures));
        ColumnSums(n, outFeatures, Buffer(dy).Pointer, Buffer(db).Pointer, LinearDescription(n, 1, outFeatures));
    }

    /// <summary>Grid for an m×n output in 64×64 tiles, one block layer per reduction split.</summary>
    public static LaunchConfig GemmConfig(long m, long n, long splits)
    {
        long rows = (m + GemmTile - 1) / GemmTile, columns = (n + GemmTile - 1) / GemmTile;
        if (rows > MaxGridYZ || splits > MaxGridYZ || columns > int.MaxValue)
        {
            throw new ArgumentException($"a {m}×{n} GEMM in {splits} splits needs a grid of {columns}×{rows}×{splits} blocks, over CUDA's limits ({int.MaxValue}×{MaxGridYZ}×{MaxGridYZ})");
        }

        return new LaunchConfig(new Dim3((uint)columns, (uint)rows, (uint)splits), new Dim3(GemmBlock));
    }

    /// <summary>
    /// How many reduction indices one split of an m×n weight gradient sums over a reduction of length
    /// <paramref name="k"/>: enough splits that the grid reaches about <see cref="SplitTargetBlocks"/> blocks, none
    /// shorter than <see cref="SplitMinChunk"/>, and a workspace (splits·m·n) that 32-bit indices reach. A multiple
    /// of <see cref="GemmTileK"/>, so only the last split has a partial shared-memory slice.
    /// </summary>
    public static int SplitChunk(long m, long n, long k)
    {
        long tiles = ((m + GemmTile - 1) / GemmTile) * ((n + GemmTile - 1) / GemmTile);
        long splits = Math.Min((SplitTargetBlocks + tiles - 1) / tiles, k / SplitMinChunk);
        splits = Math.Clamp(Math.Min(splits, int.MaxValue / (m * n)), 1, MaxGridYZ);
        long chunk = (k + splits - 1) / splits;
        return (int)Math.Min(int.MaxValue, (chunk + GemmTileK - 1) / GemmTileK * GemmTileK);
    }

    private delegate void AddLeadingArguments(ref KernelArguments args);

    // A weight gradient (m×n, reduction length k) in ceil(k/chunk) splits: one split writes dw directly; several write
    // partial products to a workspace that cc_gemm_column_sums adds up in split order. The workspace is allocated per
    // call: freeing it on a CUDA device waits for the stream (CudaDevice.Free), the price of not caching it here.
    private void SplitLaunch(string kernel, string description, long m, long n, long k, int chunk, DeviceBuffer<float> dw,
        AddLeadingArguments leading, nint first, nint second)
    {
        if (chunk <= 0)
        {
            throw new ArgumentException($"the split chunk must be positive, got {chunk}");
        }

        long splits = (k + chunk - 1) / chunk;
        if (splits * m * n > int.MaxValue)
        {
            throw new ArgumentException($"{splits} splits of a {m}×{n} weight gradient need a workspace over 2^31-1 elements; use a larger chunk than {chunk}");
        }

        var config = GemmConfig(m, n, splits);
        using var workspace = splits > 1 ? Device.Allocate<float>(splits * m * n) : null;
        var args = new KernelArguments();
        leading(ref args);
        args.Add(first);
        args.Add(second);
        args.Add(workspace?.Pointer ?? dw.Pointer);
        args.Add((int)Math.Min(chunk, k));
        args.Launch(Device, kernel, config, $"{description}, {splits} splits of {chunk}");
        if (workspace is not null)
        {
            ColumnSums((int)splits, (int)(m * n), workspace.Pointer, dw.Pointer, description);
        }
    }

    private void ColumnSums(int rows, int columns, nint source, nint destination, string description)
    {
        var args = new KernelArguments();
        args.Add(rows);
        args.Add(columns);
        args.Add(source);
        args.Add(destination);
        args.Launch(Device, KernelNames.GemmColumnSums, Elementwise(columns), description);
    }

    private static KernelArguments LinearArguments(int n, int inFeatures, int outFeatures)
    {
        var args = new KernelArguments();
        args.Add(n);
        args.Add(inFeatures);
        args.Add(outFeatures);
        return args;
    }

    private static string LinearDescription(int n, int inFeatures, int outFeatures) => $"linear n={n} in={inFeatures} out={outFeatures}";

    private void CheckLinear(int n, int inFeatures, int outFeatures, params ReadOnlySpan<(string Name, Storage Storage, long Expected)> tensors)
    {
        CpuBackend.CheckLinear(n, inFeatures, outFeatures);
        foreach (var (name, storage, expected) in tensors)
        {
            _ = Buffer(storage);
            CpuBackend.CheckLinearLengths((name, storage.Length, expected));
        }
    }
}
