using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Problems;
using CheapConv.Profiling;
using Xunit;

namespace CheapConv.Tests.Profiling;

/// <summary>How profiled launches become model inputs: FLOPs, compulsory bytes and the cap on sampled footprints.</summary>
public class ProfileModelTests
{
    private static readonly GpuModel H100 = GpuModels.H100Sxm;

    private static readonly KernelOccupancies Occupancies = new(GpuModels.Sm90, "test",
        new Dictionary<string, (int, int)> { ["cc_pointwise_backward_weight_kernel"] = (70, 8320) });

    private static MeasuredLaunch Launch(string kernel, long blocks, double uniqueRead, double uniqueWrite, double loadSectors = 0, double wavefronts = 0, double ideal = 0) =>
        new(kernel, blocks, 256, 0, Math.Min(blocks, 32), LoadRequests: loadSectors / 4, LoadSectors: loadSectors, StoreRequests: 0, StoreSectors: 0,
            AtomicRequests: 0, AtomicSectors: 0, DramReadBytes: uniqueRead, DramWriteBytes: uniqueWrite, SharedRequests: ideal,
            SharedWavefronts: wavefronts, SharedIdealWavefronts: ideal, MainLoad: null);

    [Fact]
    public void Model_GivesTheOpsFlopsAndTensorsToItsFirstLaunchAndCapsSampledReads()
    {
        // A split-K weight gradient: the GEMM (whose sampled footprint, scaled, over-counts the shared inputs 10×) writes
        // 4 MB of partials; the column sums read them back (more than the op's own tensors) and write dw.
        var problem = ConvProblem.Create(128, 64, 16, 16, 128, 1, 1);
        long tensors = 4 * (problem.InputElements + problem.OutputElements + problem.WeightElements);
        var op = new RecordedOp("Conv2dBackwardWeight", problem, "backward_weight", 2.0 * problem.Macs, tensors, FirstLaunch: 1, LaunchCount: 2);
        MeasuredLaunch[] launches =
        [
            Launch("cc_fill_kernel", 10, 0, 4096),                                       // before the op: no op, no cap
            Launch("cc_pointwise_backward_weight_kernel", 64, 10.0 * tensors, 4 << 20),
            Launch("cc_gemm_column_sums_kernel", 32, 4 << 20, 32768),
        ];
        var modelled = ProfileModel.Model(H100, Occupancies, launches, [op]);

        Assert.Null(modelled[0].Op);
        Assert.Equal(4096, modelled[0].Work.DramBytes);
        Assert.Equal(4096, modelled[0].Work.CompulsoryBytes);

        var gemm = modelled[1].Work;
        Assert.Equal(2.0 * problem.Macs, gemm.Flops);
        Assert.Equal(tensors, gemm.CompulsoryBytes);
        Assert.Equal(tensors + (4 << 20), gemm.DramBytes); // reads capped at the op's tensors
        Assert.Equal(3, gemm.BlocksPerSm);                  // 70 registers: 3 blocks of 256 threads (OccupancyTests)

        var sums = modelled[2].Work;
        Assert.Equal(0, sums.Flops);
        Assert.Equal((4 << 20) + 32768, sums.DramBytes);     // the partials the GEMM wrote may be read back
        Assert.Equal(sums.DramBytes, sums.CompulsoryBytes);
        Assert.Equal(8, sums.BlocksPerSm);                  // registers unknown: warp slots
    }

    [Fact]
    public void PassProfile_SumsItsLaunchesAndTakesTheMainLaunchsBoundAndLoads()
    {
        var problem = ConvProblem.Create(128, 64, 16, 16, 128, 1, 1);
        var op = new RecordedOp("Conv2dBackwardWeight", problem, "backward_weight", 2.0 * problem.Macs, 1 << 20, 0, 2);
        var modelled = ProfileModel.Model(H100, Occupancies,
            [Launch("cc_pointwise_backward_weight_kernel", 64, 1 << 20, 1 << 20, loadSectors: 1 << 16, wavefronts: 3e6, ideal: 1e6),
             Launch("cc_gemm_column_sums_kernel", 32, 1 << 20, 4096, loadSectors: 100)], [op]);
        var pass = new PassProfile(problem, "backward_weight", modelled, ProfileModel.PassRooflineUs(H100, problem, "backward_weight"));

        Assert.Equal(["cc_pointwise_backward_weight_kernel", "cc_gemm_column_sums_kernel"], pass.Kernels);
        Assert.Equal(modelled[0].Estimate.ModelledUs + modelled[1].Estimate.ModelledUs, pass.ModelledUs, 9);
        Assert.Same(modelled[0], pass.Main);
        Assert.Equal(modelled[0].Estimate.Bound, pass.Bound);
        Assert.Equal(4.0, pass.SectorsPerRequest);
        Assert.Equal(2e6, pass.BankConflicts);
        Assert.Equal(pass.RooflineUs / pass.ModelledUs, pass.RooflineFraction);
    }

    [Fact]
    public void PassRoofline_IsTheLargerOfTensorsOverDramAndMacsOverThePeak()
    {
        // Pointwise 64 → 128 at 16×16, batch 128: 8.4 MB of tensors (2.50 µs at 3.35 TB/s) against 268 MFLOP (4.01 µs at 67 TFLOP/s).
        var problem = ConvProblem.Create(128, 64, 16, 16, 128, 1, 1);
        var bytes = 4.0 * (128 * 64 * 256 + 128 * 64 + 128 * 128 * 256);
        var flops = 2.0 * 128 * 128 * 256 * 64;
        foreach (var pass in CatalogueProfile.Passes)
        {
            Assert.Equal(bytes, ProfileModel.CompulsoryBytes(problem, pass));
            Assert.Equal(flops / 67e12 * 1e6, ProfileModel.PassRooflineUs(H100, problem, pass), 9);
        }

        // On tensor cores the same pass is bound by memory: 8.4 MB at 3.35 TB/s (2.50 µs) against 268 MFLOP at 494.5 TFLOP/s (0.54 µs).
        Assert.Equal(bytes / 3.35e12 * 1e6, ProfileModel.PassRooflineUs(H100, problem, "forward", tensorCores: true), 9);

        // A depthwise 3×3 is memory-bound: 128×32×32×32 in and out, 288 weights: 33.6 MB at 3.35 TB/s.
        var depthwise = ConvProblem.Create(128, 32, 32, 32, 32, 3, 3, pad: 1, groups: 32);
        Assert.Equal(4.0 * (2 * 128 * 32 * 32 * 32 + 288) / 3.35e12 * 1e6, ProfileModel.PassRooflineUs(H100, depthwise, "forward"), 9);
    }

    [Fact]
    public void CompulsoryBytes_CountOnlyThePartOfXTheWindowsCover()
    {
        // A 1×1 with stride 2 on 32×32 reads rows and columns 0, 2, ..., 30: a quarter of x. dx is written whole.
        var shortcut = ConvProblem.Create(128, 32, 32, 32, 64, 1, 1, stride: 2);
        double x = 128 * 32 * 32 * 32, w = 64 * 32, y = 128 * 64 * 16 * 16;
        Assert.Equal(4 * (x / 4 + w + y), ProfileModel.CompulsoryBytes(shortcut, "forward"));
        Assert.Equal(4 * (y + w + x), ProfileModel.CompulsoryBytes(shortcut, "backward_data"));
        Assert.Equal(4 * (x / 4 + y + w), ProfileModel.CompulsoryBytes(shortcut, "backward_weight"));
        // A 3×3 with stride 2 and padding 1 covers every row and column.
        var strided = ConvProblem.Create(2, 3, 7, 7, 4, 3, 3, stride: 2, pad: 1);
        Assert.Equal(4.0 * (2 * 3 * 49 + 4 * 3 * 9 + 2 * 4 * 16), ProfileModel.CompulsoryBytes(strided, "forward"));
        Assert.Throws<ArgumentException>(() => ProfileModel.CompulsoryBytes(strided, "sideways"));
    }

    [Fact]
    public void ByKernel_GroupsLaunchesAndNamesTheBoundOfMostOfTheTime()
    {
        var modelled = ProfileModel.Model(H100, Occupancies,
            [Launch("cc_add_kernel", 1, 4096, 4096), Launch("cc_add_kernel", 4096, 1e9, 1e9), Launch("cc_fill_kernel", 1, 0, 4096)], []);
        var kernels = ProfileModel.ByKernel(modelled);
        Assert.Equal(["cc_add_kernel", "cc_fill_kernel"], kernels.Select(k => k.Kernel));
        var add = kernels[0];
        Assert.Equal(2, add.Count);
        Assert.Equal("dram", add.Bound); // 2e9 bytes take ~600 µs; the other add is launch-bound at ~2 µs
        Assert.Equal(modelled[0].Estimate.ModelledUs + modelled[1].Estimate.ModelledUs, add.ModelledUs, 9);
        Assert.Equal("launch", kernels[1].Bound);
    }

    [Fact]
    public void From_ScalesTheMainLoadAndSumsSharedLoadsAndStores()
    {
        var counters = new MemoryCounters
        {
            GlobalLoadRequests = 100, GlobalLoadSectors = 400, GlobalStoreRequests = 10, GlobalStoreSectors = 40, GlobalAtomicRequests = 1,
            GlobalAtomicSectors = 1, UniqueReadBytes = 1000, UniqueReadSectors = 40, UniqueWriteBytes = 500, UniqueWriteSectors = 20, SharedLoadRequests = 7, SharedLoadWavefronts = 14,
            SharedLoadIdealWavefronts = 7, SharedStoreRequests = 3, SharedStoreWavefronts = 3, SharedStoreIdealWavefronts = 3,
        };
        InstructionProfile[] instructions =
        [
            new(1, "cc_k", "kernels/k.cu", 10, MemoryAccessKind.GlobalLoad, 4, Requests: 5, LaneAccesses: 160, Bytes: 640, Sectors: 20, Wavefronts: 0, IdealWavefronts: 0),
            new(2, "cc_k", "kernels/k.cu", 12, MemoryAccessKind.GlobalLoad, 4, Requests: 5, LaneAccesses: 160, Bytes: 640, Sectors: 160, Wavefronts: 0, IdealWavefronts: 0),
            new(3, "cc_k", "", 0, MemoryAccessKind.GlobalStore, 4, Requests: 50, LaneAccesses: 1, Bytes: 4, Sectors: 999, Wavefronts: 0, IdealWavefronts: 0),
        ];
        var profile = new LaunchProfile("cc_k", new Dim3(8, 2), new Dim3(128), 0, 0, BlocksTotal: 16, BlocksSampled: 4, BlocksExecuted: 4,
            OutputsComplete: false, Scale: 4, Raw: counters, Scaled: counters, instructions);
        var launch = MeasuredLaunch.From(profile);

        Assert.Equal((16L, 128, 4L), (launch.GridBlocks, launch.ThreadsPerBlock, launch.BlocksSampled));
        Assert.Equal(441, launch.L2Sectors);
        Assert.Equal((1280.0, 640.0), (launch.DramReadBytes, launch.DramWriteBytes)); // sectors × 32
        Assert.Equal(4.0, launch.SectorsPerLoadRequest);
        Assert.Equal((10.0, 17.0, 10.0), (launch.SharedRequests, launch.SharedWavefronts, launch.SharedIdealWavefronts));
        Assert.Equal(7, launch.BankConflicts);
        Assert.Equal(new MainLoad("kernels/k.cu:12", 20, 640), launch.MainLoad);
        Assert.Equal(32, launch.MainLoad!.SectorsPerRequest);
        Assert.Throws<InvalidOperationException>(() => MeasuredLaunch.From(profile with { Status = 10001 }));
    }

    [Fact]
    public void RecordingBackend_RecordsOpsAndTheirLaunches()
    {
        var launches = 0;
        var backend = new RecordingBackend(new CpuBackend(), () => launches);
        var problem = ConvProblem.Create(1, 2, 4, 4, 3, 3, 3, pad: 1);
        using var x = backend.Upload(new float[problem.InputElements]);
        using var w = backend.Upload(new float[problem.WeightElements]);
        using var y = backend.Allocate(problem.OutputElements);
        backend.Conv2dForward(problem, x, w, y);
        launches += 2; // as if the next op made two launches
        backend.Add(problem.OutputElements, y, y, y);
        backend.Download(y, new float[problem.OutputElements]);
        using var logits = backend.Upload([1f, 0f, 0f, 1f]);
        Assert.Equal(2, backend.CountCorrect(2, 2, logits, [0, 1]));

        Assert.Equal(["Conv2dForward", "Add", "CountCorrect"], backend.Ops.Select(o => o.Name));
        var conv = backend.Ops[0];
        Assert.Equal((problem, "forward", 2.0 * problem.Macs), (conv.Problem!.Value, conv.Pass, conv.Flops));
        Assert.Equal(4 * (problem.InputElements + problem.WeightElements + problem.OutputElements), conv.StorageBytes);
        Assert.Equal((0, 0), (conv.FirstLaunch, conv.LaunchCount));
        Assert.Equal((2, 0), (backend.Ops[1].FirstLaunch, backend.Ops[1].LaunchCount));
        Assert.Equal(3 * 4 * problem.OutputElements, backend.Ops[1].StorageBytes);
        backend.Clear();
        Assert.Empty(backend.Ops);
    }
}
