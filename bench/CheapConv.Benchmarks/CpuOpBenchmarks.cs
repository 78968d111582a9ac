using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using CheapConv.Backends;
using CheapConv.Problems;

namespace CheapConv.Benchmarks;

/// <summary>
/// Per-op CPU timings (issue 13, item 4): each convolution pass of <see cref="CpuBackend"/> (the fast paths of
/// Backends/Cpu: im2col + packed GEMM per group, direct vector loops for depthwise) against the same pass of the
/// reference — <see cref="CpuBackend"/>'s textbook static methods in float, one output element at a time, the oracle the
/// tests check every kernel and fast path against — on the layer kinds of a WRN-40-2 → G(4) distillation step. Both run
/// on every core (the reference splits over independent outputs as the fast path does). The batch is 32, not the step's
/// 128, so that the reference's passes take about a second instead of four; the fast path at 128 is in `bench step --ops`.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
[CategoriesColumn]
public class CpuOpBenchmarks
{
    private const int Batch = 32;

    /// <summary>
    /// The layer kinds of the step at its 32×32 stage (rows of shapes/wrn40-2-moonshine.txt at batch 32): the teacher's dense
    /// 3×3, 32 → 32 channels, and its stride-2 3×3, 32 → 64; G(4)'s grouped 3×3 (4 groups of 8 channels) and 1×1, 32 → 32;
    /// the depthwise student's 3×3 over 32 channels. Short names, since BenchmarkDotNet's table cuts long ones.
    /// </summary>
    private static readonly Dictionary<string, ConvProblem> Layers = new()
    {
        ["dense3x3"] = ConvProblem.Create(Batch, 32, 32, 32, 32, 3, 3, stride: 1, pad: 1),
        ["dense3x3-s2"] = ConvProblem.Create(Batch, 32, 32, 32, 64, 3, 3, stride: 2, pad: 1),
        ["grouped3x3-g4"] = ConvProblem.Create(Batch, 32, 32, 32, 32, 3, 3, stride: 1, pad: 1, groups: 4),
        ["depthwise3x3"] = ConvProblem.Create(Batch, 32, 32, 32, 32, 3, 3, stride: 1, pad: 1, groups: 32),
        ["pointwise1x1"] = ConvProblem.Create(Batch, 32, 32, 32, 32, 1, 1),
    };

    private readonly IBackend _backend = new CpuBackend();
    private ConvProblem _problem;
    private float[] _x = [], _w = [], _y = [], _dy = [], _dx = [], _dw = [];
    private Storage _xs = null!, _ws = null!, _ys = null!, _dys = null!, _dxs = null!, _dws = null!;

    [ParamsSource(nameof(LayerNames))]
    public string Layer { get; set; } = "";

    public static IEnumerable<string> LayerNames => Layers.Keys;

    [GlobalSetup]
    public void Setup()
    {
        _problem = Layers[Layer];
        var random = new Random(1);
        _x = Filled(_problem.InputElements, random);
        _w = Filled(_problem.WeightElements, random);
        _dy = Filled(_problem.OutputElements, random);
        _y = new float[_problem.OutputElements];
        _dx = new float[_problem.InputElements];
        _dw = new float[_problem.WeightElements];
        (_xs, _ws, _dys) = (_backend.Upload(_x), _backend.Upload(_w), _backend.Upload(_dy));
        (_ys, _dxs, _dws) = (_backend.Allocate(_y.Length), _backend.Allocate(_dx.Length), _backend.Allocate(_dw.Length));
    }

    private static float[] Filled(long length, Random random)
    {
        var values = new float[length];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (float)(random.NextDouble() * 2 - 1);
        }

        return values;
    }

    [Benchmark(Baseline = true), BenchmarkCategory("forward")]
    public void ForwardReference() => CpuBackend.Conv2dForward<float>(_problem, _x, _w, _y);

    [Benchmark, BenchmarkCategory("forward")]
    public void Forward() => _backend.Conv2dForward(_problem, _xs, _ws, _ys);

    [Benchmark(Baseline = true), BenchmarkCategory("backward-data")]
    public void BackwardDataReference() => CpuBackend.Conv2dBackwardData<float>(_problem, _dy, _w, _dx);

    [Benchmark, BenchmarkCategory("backward-data")]
    public void BackwardData() => _backend.Conv2dBackwardData(_problem, _dys, _ws, _dxs);

    [Benchmark(Baseline = true), BenchmarkCategory("backward-weight")]
    public void BackwardWeightReference() => CpuBackend.Conv2dBackwardWeight<float>(_problem, _x, _dy, _dw);

    [Benchmark, BenchmarkCategory("backward-weight")]
    public void BackwardWeight() => _backend.Conv2dBackwardWeight(_problem, _xs, _dys, _dws);
}
