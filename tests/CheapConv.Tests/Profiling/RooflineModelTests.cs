using CheapConv.Profiling;
using Xunit;

namespace CheapConv.Tests.Profiling;

/// <summary>
/// The roofline model's arithmetic on hand-computed launches, on the H100 SXM model: 132 SMs at 1.98 GHz, DRAM
/// 3.35e12 B/s, L2 5120 B/clk = 1.01376e13 B/s, one shared wavefront per SM per clock, 67e12 fp32 FLOP/s,
/// 494.5e12 tf32, 2 µs per launch, FFMA latency 4.
/// </summary>
public class RooflineModelTests
{
    private const double Tolerance = 1e-9; // relative: the expected values are exact up to rounding

    private static readonly GpuModel H100 = GpuModels.H100Sxm;

    [Fact]
    public void Estimate_OneFullWaveOfACopy_IsL2BoundAtAQuarterOfTheRoofline()
    {
        // 1056 blocks = 132 SMs × 8: one full wave. 3.35e6 compulsory bytes: the roofline is 1 µs. The profile saw the
        // same unique bytes (DRAM 1 µs) but 633,600 sectors = 20,275,200 B through L2: 2 µs. Modelled 2 + 2 (launch) = 4 µs.
        var work = new LaunchWork("copy", GridBlocks: 1056, ThreadsPerBlock: 256, BlocksPerSm: 8, Flops: 0, TensorCores: false,
            CompulsoryBytes: 3.35e6, DramBytes: 3.35e6, L2Sectors: 633_600, SharedWavefronts: 0);
        var e = RooflineModel.Estimate(H100, work);
        Near(1.0, e.RooflineUs);
        Near(1.0, e.DramUs);
        Near(2.0, e.L2Us);
        Assert.Equal(0, e.SharedUs);
        Assert.Equal(0, e.ArithmeticUs);
        Near(4.0, e.ModelledUs);
        Near(0.25, e.RooflineFraction);
        Assert.Equal("l2", e.Bound);
        Assert.Equal(132, e.ActiveSms);
    }

    [Fact]
    public void Estimate_HalfTheSmsWithTwoWarpsPerScheduler_IssueAtAQuarterOfPeak()
    {
        // 66 blocks of 8 warps: 66 SMs busy (half the chip), one block each = 2 warps per scheduler, half of the 4 an FFMA
        // latency needs: efficiency 0.5 × 0.5 = 0.25. 67e6 FLOPs take 1 µs at peak, 4 µs here. Shared: 130,680 wavefronts
        // over 66 SMs at 1.98 GHz = 1 µs.
        var work = new LaunchWork("gemm", GridBlocks: 66, ThreadsPerBlock: 256, BlocksPerSm: 8, Flops: 67e6, TensorCores: false,
            CompulsoryBytes: 0, DramBytes: 0, L2Sectors: 0, SharedWavefronts: 130_680);
        var e = RooflineModel.Estimate(H100, work);
        Near(1.0, e.RooflineUs);
        Near(0.25, e.IssueEfficiency);
        Near(4.0, e.ArithmeticUs);
        Near(1.0, e.SharedUs);
        Near(6.0, e.ModelledUs);
        Near(1.0 / 6, e.RooflineFraction);
        Assert.Equal("fp32", e.Bound);
        Assert.Equal(66, e.ActiveSms);
    }

    [Fact]
    public void Estimate_AFullWaveAndAThinTail_WeighsEachWaveByItsShare()
    {
        // 1188 blocks = a full wave of 1056 (8 blocks per SM, 16 warps per scheduler: efficiency 1) and a tail of 132
        // (1 block per SM, 2 warps per scheduler: 0.5). Relative time 1056/1188 / 1 + 132/1188 / 0.5 = 10/9: efficiency 0.9.
        var work = new LaunchWork("conv", GridBlocks: 1188, ThreadsPerBlock: 256, BlocksPerSm: 8, Flops: 67e6, TensorCores: false,
            CompulsoryBytes: 0, DramBytes: 0, L2Sectors: 0, SharedWavefronts: 0);
        var e = RooflineModel.Estimate(H100, work);
        Near(0.9, e.IssueEfficiency);
        Near(10.0 / 9, e.ArithmeticUs);
        Near(2 + 10.0 / 9, e.ModelledUs);
    }

    [Fact]
    public void Estimate_ATinyKernel_IsLaunchBound()
    {
        // One block, 4 KiB: DRAM 4096 / 3.35e12 = 1.22 ns; L2 128 sectors through 1/132 of the L2 bandwidth = 53.3 ns.
        var work = new LaunchWork("reduce", GridBlocks: 1, ThreadsPerBlock: 256, BlocksPerSm: 8, Flops: 0, TensorCores: false,
            CompulsoryBytes: 4096, DramBytes: 4096, L2Sectors: 128, SharedWavefronts: 0);
        var e = RooflineModel.Estimate(H100, work);
        Near(4096 / 3.35e12 * 1e6, e.RooflineUs);
        Near(4096.0 * 132 / 1.01376e13 * 1e6, e.L2Us);
        Near(2 + 4096.0 * 132 / 1.01376e13 * 1e6, e.ModelledUs);
        Assert.Equal("launch", e.Bound);
        Assert.Equal(1, e.ActiveSms);
    }

    [Fact]
    public void Estimate_TensorCoreKernel_UsesTheTf32Peak()
    {
        // 4.945e9 FLOPs: 10 µs at the 494.5 TFLOP/s tf32 peak (148 µs at the fp32 one).
        var work = new LaunchWork("mma", GridBlocks: 1056, ThreadsPerBlock: 256, BlocksPerSm: 8, Flops: 4.945e9, TensorCores: true,
            CompulsoryBytes: 0, DramBytes: 0, L2Sectors: 0, SharedWavefronts: 0);
        var e = RooflineModel.Estimate(H100, work);
        Near(10.0, e.RooflineUs);
        Near(10.0, e.ArithmeticUs);
        Assert.Equal("tf32", e.Bound);
    }

    [Fact]
    public void Estimate_OnH200_OnlyTheDramTermChanges()
    {
        var work = new LaunchWork("copy", 1056, 256, 8, 0, false, CompulsoryBytes: 4.8e6, DramBytes: 4.8e6, L2Sectors: 0, SharedWavefronts: 0);
        Near(1.0, RooflineModel.Estimate(GpuModels.H200, work).DramUs);
        Near(4.8 / 3.35, RooflineModel.Estimate(H100, work).DramUs);
    }

    [Fact]
    public void WaveEfficiency_IsTheSmShareTimesTheLatencyCover()
    {
        Near(1.0, RooflineModel.WaveEfficiency(H100, 1056, 8));
        Near(0.5, RooflineModel.WaveEfficiency(H100, 132, 8));   // 2 warps per scheduler
        Near(1.0, RooflineModel.WaveEfficiency(H100, 264, 8));   // 4
        Near(1.0 / 132 * 0.5, RooflineModel.WaveEfficiency(H100, 1, 8));
        Near(36.0 / 132 * 0.5, RooflineModel.WaveEfficiency(H100, 36, 8)); // a depthwise 3×3 weight gradient of 288 weights
    }

    [Fact]
    public void Estimate_RefusesAnEmptyGrid() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => RooflineModel.Estimate(H100, new LaunchWork("k", 0, 256, 8, 0, false, 0, 0, 0, 0)));

    private static void Near(double expected, double actual) =>
        Assert.True(Math.Abs(expected - actual) <= Tolerance * Math.Max(1, Math.Abs(expected)), $"expected {expected:R}, got {actual:R}");
}
