using CheapConv.Problems;

namespace CheapConv.Profiling;

/// <summary>One profiled launch, the op that made it, and the model's estimate.</summary>
internal sealed record ModelledLaunch(MeasuredLaunch Launch, RecordedOp? Op, LaunchWork Work, LaunchEstimate Estimate);

/// <summary>One pass of one convolution problem: its launches (one, or a split-K GEMM and its column sums) and their sum.</summary>
/// <param name="RooflineUs">The pass's floor: max(compulsory bytes / DRAM bandwidth, 2 · MACs / peak), the peak fp32, or tf32
/// for a pass on tensor cores (<see cref="ProfileModel.PassRooflineUs"/>).</param>
internal sealed record PassProfile(ConvProblem Problem, string Pass, IReadOnlyList<ModelledLaunch> Launches, double RooflineUs)
{
    /// <summary>The launch that takes the most modelled time.</summary>
    public ModelledLaunch Main => Launches.MaxBy(l => l.Estimate.ModelledUs)!;

    /// <summary>The kernels, in launch order.</summary>
    public IReadOnlyList<string> Kernels => [.. Launches.Select(l => l.Launch.Kernel)];

    /// <summary>Σ of the launches' modelled times, each with its launch cost.</summary>
    public double ModelledUs => Launches.Sum(l => l.Estimate.ModelledUs);

    public double RooflineFraction => RooflineUs / ModelledUs;

    /// <summary>The bound of the main launch.</summary>
    public string Bound => Main.Estimate.Bound;

    /// <summary>Sectors per request of the main launch's global loads.</summary>
    public double SectorsPerRequest => Main.Launch.SectorsPerLoadRequest;

    /// <summary>Shared-memory bank conflicts (wavefronts beyond the ideal) of every launch, scaled to the whole grid.</summary>
    public double BankConflicts => Launches.Sum(l => l.Launch.BankConflicts);
}

/// <summary>One kernel's launches within a step.</summary>
/// <param name="Bound">The bound that accounts for most of the kernel's modelled time.</param>
internal sealed record StepKernel(string Kernel, int Count, double ModelledUs, double RooflineUs, string Bound)
{
    public double RooflineFraction => RooflineUs / ModelledUs;
}

/// <summary>Every launch of one training or distillation step, modelled.</summary>
/// <param name="HostWaits">The host waits inside the step, by the op that made them (see <see cref="RecordingBackend"/>).</param>
/// <param name="Kernels">Per kernel, the most modelled time first.</param>
internal sealed record StepProfile(string Description, IReadOnlyList<ModelledLaunch> Launches, IReadOnlyList<string> HostWaits, IReadOnlyList<StepKernel> Kernels)
{
    public double ModelledUs => Launches.Sum(l => l.Estimate.ModelledUs);

    public double RooflineUs => Launches.Sum(l => l.Estimate.RooflineUs);

    /// <summary>Σ of every launch's launch cost: what fusion, CUDA graphs or fewer launches could save at most.</summary>
    public double LaunchCostUs => Launches.Sum(l => l.Estimate.LaunchUs);
}

/// <summary>
/// Turns profiled launches into model inputs (<see cref="LaunchWork"/>) and estimates, using the ops that made them:
/// <list type="bullet">
/// <item>FLOPs: an op's FLOPs (2 × MACs of a convolution or linear layer) go to its first launch — the GEMM or direct
/// kernel; a split-K weight gradient's column sums come after it and count no FLOPs.</item>
/// <item>Compulsory bytes: for that first launch of a convolution, the pass's <see cref="CompulsoryBytes"/>; of a linear
/// op, the bytes of its tensors; for every other launch its own DRAM bytes (what it touches is what it must move).</item>
/// <item>DRAM bytes: distinct 32-byte sectors read + written, × 32 (DRAM moves sectors, not bytes). Sampling scales each
/// block's footprint, which over-counts inputs that blocks share (a weight every block reads), so the reads are capped at
/// the op's tensors plus what earlier launches of the same op wrote (a split-K workspace).</item>
/// <item>Occupancy: blocks per SM from the kernel's registers and shared memory (<see cref="KernelOccupancies"/>).</item>
/// </list>
/// </summary>
internal static class ProfileModel
{
    /// <summary>Models <paramref name="launches"/> (in launch order) made by <paramref name="ops"/> on <paramref name="gpu"/>.</summary>
    public static IReadOnlyList<ModelledLaunch> Model(GpuModel gpu, KernelOccupancies occupancies, IReadOnlyList<MeasuredLaunch> launches,
        IReadOnlyList<RecordedOp> ops, IReadOnlySet<string>? tensorCoreKernels = null)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentNullException.ThrowIfNull(occupancies);
        ArgumentNullException.ThrowIfNull(launches);
        ArgumentNullException.ThrowIfNull(ops);
        var owner = new RecordedOp?[launches.Count];
        foreach (var op in ops)
        {
            for (var i = op.FirstLaunch; i < op.FirstLaunch + op.LaunchCount && i < launches.Count; i++)
            {
                owner[i] = op;
            }
        }

        var result = new List<ModelledLaunch>(launches.Count);
        double writtenInOp = 0;
        for (var i = 0; i < launches.Count; i++)
        {
            var launch = launches[i];
            var op = owner[i];
            var first = op is not null && i == op.FirstLaunch;
            if (first || op is null)
            {
                writtenInOp = 0;
            }

            var reads = op is null ? launch.DramReadBytes : Math.Min(launch.DramReadBytes, op.StorageBytes + writtenInOp);
            var dram = reads + launch.DramWriteBytes;
            writtenInOp += launch.DramWriteBytes;
            var main = first && op!.Flops > 0;
            var compulsory = !main ? dram : op!.Problem is { } problem && op.Pass is { } pass ? CompulsoryBytes(problem, pass) : op.StorageBytes;
            var work = new LaunchWork(launch.Kernel, launch.GridBlocks, launch.ThreadsPerBlock,
                occupancies.BlocksPerSm(launch.Kernel, launch.ThreadsPerBlock, launch.DynamicSharedBytes),
                Flops: main ? op!.Flops : 0, TensorCores: UsesTensorCores(launch, tensorCoreKernels),
                CompulsoryBytes: compulsory, DramBytes: dram, L2Sectors: launch.L2Sectors, SharedWavefronts: launch.SharedWavefronts);
            result.Add(new ModelledLaunch(launch, op, work, RooflineModel.Estimate(gpu, work)));
        }

        return result;
    }

    /// <summary>Whether a launch computes on tensor cores, so the model charges its FLOPs at the tf32 peak: its kernel's PTX
    /// issues mma (<see cref="ProfileSettings.FindTensorCoreKernels"/>), or the emulator counted its mma.sync executions.</summary>
    public static bool UsesTensorCores(MeasuredLaunch launch, IReadOnlySet<string>? tensorCoreKernels)
    {
        ArgumentNullException.ThrowIfNull(launch);
        return (tensorCoreKernels?.Contains(launch.Kernel) ?? false) || launch.TensorMmaRequests > 0;
    }

    /// <summary>
    /// The compulsory traffic of a convolution pass, bytes: each input read once, the output written once, fp32. Of x only
    /// the elements some filter window covers count — all of them unless the stride exceeds the filter (a 1×1 with stride
    /// 2 reads a quarter of x); dx is written whole.
    /// </summary>
    public static double CompulsoryBytes(ConvProblem problem, string pass)
    {
        var x = (double)problem.N * problem.C * Covered(problem.H, problem.P, problem.R, problem.StrideH, problem.PadH)
            * Covered(problem.W, problem.Q, problem.S, problem.StrideW, problem.PadW);
        return 4 * pass switch
        {
            "forward" => x + problem.WeightElements + problem.OutputElements,
            "backward_data" => problem.OutputElements + problem.WeightElements + (double)problem.InputElements,
            "backward_weight" => x + problem.OutputElements + problem.WeightElements,
            _ => throw new ArgumentException($"unknown pass '{pass}': forward, backward_data or backward_weight", nameof(pass)),
        };
    }

    /// <summary>The floor of a convolution pass: its compulsory bytes over DRAM bandwidth or its MACs at the arithmetic
    /// peak of the units it runs on — fp32, or tf32 when <paramref name="tensorCores"/> (the binding roofline of a pass
    /// computed on tensor cores); µs.</summary>
    public static double PassRooflineUs(GpuModel gpu, ConvProblem problem, string pass, bool tensorCores = false)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        var peak = tensorCores ? gpu.Tf32FlopsPerSecond : gpu.Fp32FlopsPerSecond;
        return Math.Max(CompulsoryBytes(problem, pass) / gpu.DramBytesPerSecond, 2.0 * problem.Macs / peak) * 1e6;
    }

    // Input rows (or columns) of `extent` that some output position's filter window covers.
    private static int Covered(int extent, int outputs, int filter, int stride, int pad)
    {
        var covered = new bool[extent];
        for (var o = 0; o < outputs; o++)
        {
            for (var f = 0; f < filter; f++)
            {
                var i = o * stride - pad + f;
                if (i >= 0 && i < extent)
                {
                    covered[i] = true;
                }
            }
        }

        return covered.Count(c => c);
    }

    /// <summary>The launches grouped by kernel, the most modelled time first.</summary>
    public static IReadOnlyList<StepKernel> ByKernel(IReadOnlyList<ModelledLaunch> launches)
    {
        ArgumentNullException.ThrowIfNull(launches);
        return launches.GroupBy(l => l.Launch.Kernel)
            .Select(g => new StepKernel(g.Key, g.Count(), g.Sum(l => l.Estimate.ModelledUs), g.Sum(l => l.Estimate.RooflineUs),
                g.GroupBy(l => l.Estimate.Bound).MaxBy(b => b.Sum(l => l.Estimate.ModelledUs))!.Key))
            .OrderByDescending(k => k.ModelledUs).ThenBy(k => k.Kernel, StringComparer.Ordinal)
            .ToList();
    }
}
