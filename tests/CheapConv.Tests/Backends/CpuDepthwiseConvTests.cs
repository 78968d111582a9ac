using CheapConv.Backends.Cpu;
using CheapConv.Problems;
using CheapConv.Verification;
using Xunit;

namespace CheapConv.Tests.Backends;

/// <summary>
/// The depthwise kernels (<see cref="CpuDepthwiseConv"/>: one input channel per filter, with or without a channel
/// multiplier) at every register width this machine runs — Vector512, Vector256, Vector128 and scalar, so the fallbacks of
/// machines without AVX-512 (and Arm64's 128-bit vectors) are checked here too — against the float64 reference with ConvCheck's bound (see
/// <see cref="CpuFastConvTests"/>), outputs poisoned with NaN; then bit-identical results for one, two and all threads.
/// </summary>
public class CpuDepthwiseConvTests
{
    /// <summary>
    /// "N C H W K R S strideH strideW padH padW": 3 × 3 at stride 1 and 2 and pad 0, 1, 2; odd sizes; Q under,
    /// at and over one vector (4, 8, 15, 16, 17, 33), so rows end in a partial vector or a shifted one; multipliers 1, 2, 3;
    /// one image and several; a 5 × 5 and a 1 × 3 / 3 × 1 (one tap at a time, beside the 3 × 3 weight-gradient kernel); pad 3 ≥ R (the data
    /// gradient then scatters at stride 1 too); unequal strides and pads; a multiplier of 30 (270 running weight-gradient sums
    /// per channel: past the stack's share, on the heap).
    /// </summary>
    private static readonly string[] Shapes =
    [
        "2 3 32 32 3 3 3 1 1 1 1",
        "1 4 17 17 4 3 3 1 1 1 1",
        "3 2 9 15 4 3 3 1 1 0 0",
        "2 3 10 33 9 3 3 1 1 2 2",
        "2 4 32 32 4 3 3 2 2 1 1",
        "1 3 17 17 6 3 3 2 2 1 1",
        "2 2 16 16 2 3 3 2 2 0 0",
        "2 2 15 35 4 3 3 2 2 2 2",
        "3 5 8 8 5 3 3 1 1 1 1",
        "2 2 4 4 6 3 3 1 1 1 1",
        "2 3 7 7 3 3 3 2 2 1 1",
        "2 2 13 19 4 5 5 1 1 2 2",
        "2 2 12 21 2 5 5 2 2 1 1",
        "2 3 11 18 3 1 3 1 1 0 1",
        "2 3 11 18 6 3 1 1 1 1 0",
        "2 2 9 20 2 3 3 1 1 3 3",
        "2 2 14 23 4 3 3 2 1 1 2",
        "1 1 1 1 1 3 3 1 1 1 1",
        "2 2 9 10 60 3 3 1 1 1 1",
    ];

    /// <summary>Every shape at every width this machine runs natively.</summary>
    public static TheoryData<string, string> Cases()
    {
        var cases = new TheoryData<string, string>();
        foreach (var width in Enum.GetValues<LaneWidth>().Where(Lanes.IsAccelerated))
        {
            foreach (var shape in Shapes)
            {
                cases.Add(shape, width.ToString());
            }
        }

        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void AllPasses_MatchFloat64ReferenceAndAreBitIdenticalAcrossThreads(string shape, string widthName)
    {
        var width = Enum.Parse<LaneWidth>(widthName);
        var v = shape.Split(' ').Select(int.Parse).ToArray();
        var problem = ConvProblem.Create(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], groups: v[1]);
        var inputs = ConvInputs.Random(problem, seed: 23);
        var all = Run(problem, inputs, width, threads: -1);
        CpuFastConvTests.AssertPassed(ConvCheck.Compare(problem, inputs, all, $"cpu depthwise {width}"));
        foreach (var threads in new[] { 1, 2 })
        {
            var limited = Run(problem, inputs, width, threads);
            Assert.Equal(all.Y, limited.Y);
            Assert.Equal(all.Dx, limited.Dx);
            Assert.Equal(all.Dw, limited.Dw);
        }
    }

    private static ConvOutputs Run(ConvProblem problem, ConvInputs inputs, LaneWidth width, int threads)
    {
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = threads };
        var outputs = new ConvOutputs(Poison(problem.OutputElements), Poison(problem.InputElements), Poison(problem.WeightElements));
        CpuDepthwiseConv.Forward(problem, inputs.X, inputs.W, outputs.Y, parallel, width);
        CpuDepthwiseConv.BackwardData(problem, inputs.Dy, inputs.W, outputs.Dx, parallel, width);
        CpuDepthwiseConv.BackwardWeight(problem, inputs.X, inputs.Dy, outputs.Dw, parallel, width);
        return outputs;
    }

    private static float[] Poison(long length) => Enumerable.Repeat(float.NaN, checked((int)length)).ToArray();
}
