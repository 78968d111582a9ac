using System.Diagnostics;
using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Problems;
using CheapConv.Verification;

namespace CheapConv.Benchmarking;

/// <summary>One timed pass of one problem, with the numbers that give the time a meaning.</summary>
/// <param name="MedianMicroseconds">Median over the timed repetitions.</param>
/// <param name="GflopsPerSecond">2·MACs / time.</param>
/// <param name="GigabytesPerSecond">Compulsory traffic (every input read once, the output written once) / time.</param>
/// <param name="FractionOfFloor">Floor time / measured time, where the floor is the larger of FLOPs / peak
/// FLOP rate and bytes / peak bandwidth; null where the device's peaks are unknown (the CPU).</param>
/// <param name="Bound">"memory" or "compute": which of the two floors is larger; "" when unknown.</param>
internal sealed record ConvBenchResult(
    ConvProblem Problem, string Pass, double MedianMicroseconds, double MinMicroseconds,
    double GflopsPerSecond, double GigabytesPerSecond, double? FractionOfFloor, string Bound);

/// <summary>
/// Times the three conv passes. On a GPU: CUDA events on the device's stream, L2 flushed before every timed
/// launch (at CIFAR sizes every tensor fits in the 50 MB L2, so without a flush we would time the cache).
/// On the CPU: wall-clock time of the C# backend, the baseline the kernels are meant to beat.
/// </summary>
internal static class ConvBenchmark
{
    public static readonly string[] Passes = ["forward", "backward-data", "backward-weight"];

    public static IReadOnlyList<ConvBenchResult> RunCuda(CudaDevice device, ConvProblem problem, int repeats)
    {
        using var tensors = new ConvTensors(device, problem, ConvInputs.Random(problem, seed: 1));
        using var flush = device.Allocate<byte>(Math.Max(2L * device.Info.L2CacheBytes, 64L << 20));
        using var timer = device.CreateTimer();

        Action[] runs = [tensors.Forward, tensors.BackwardData, tensors.BackwardWeight];

        var results = new List<ConvBenchResult>();
        for (var pass = 0; pass < runs.Length; pass++)
        {
            runs[pass](); // warm-up: JIT of the module, first-touch of the buffers
            var times = new double[repeats];
            for (var i = 0; i < repeats; i++)
            {
                flush.FillBytes((byte)i);
                timer.Start();
                runs[pass]();
                timer.Stop();
                times[i] = timer.ElapsedMilliseconds * 1e3;
            }

            results.Add(Result(problem, pass, times, device.Info.PeakFp32Flops, device.Info.PeakMemoryBytesPerSecond));
        }

        return results;
    }

    public static IReadOnlyList<ConvBenchResult> RunCpu(ConvProblem problem, int repeats)
    {
        var inputs = ConvInputs.Random(problem, seed: 1);
        var y = new float[problem.OutputElements];
        var dx = new float[problem.InputElements];
        var dw = new float[problem.WeightElements];
        Action[] runs =
        [
            () => CpuBackend.Conv2dForward(problem, inputs.X, inputs.W, y),
            () => CpuBackend.Conv2dBackwardData(problem, inputs.Dy, inputs.W, dx),
            () => CpuBackend.Conv2dBackwardWeight(problem, inputs.X, inputs.Dy, dw),
        ];

        var results = new List<ConvBenchResult>();
        for (var pass = 0; pass < runs.Length; pass++)
        {
            runs[pass]();
            var times = new double[repeats];
            for (var i = 0; i < repeats; i++)
            {
                var clock = Stopwatch.StartNew();
                runs[pass]();
                times[i] = clock.Elapsed.TotalMicroseconds;
            }

            results.Add(Result(problem, pass, times, null, null));
        }

        return results;
    }

    /// <summary>Bytes a pass must move at least: its two inputs read once and its output written once.</summary>
    public static long CompulsoryBytes(ConvProblem problem, int pass) => sizeof(float) * pass switch
    {
        0 => problem.InputElements + problem.WeightElements + problem.OutputElements,
        1 => problem.OutputElements + problem.WeightElements + problem.InputElements,
        _ => problem.InputElements + problem.OutputElements + problem.WeightElements,
    };

    private static ConvBenchResult Result(ConvProblem problem, int pass, double[] microseconds, double? peakFlops, double? peakBytes)
    {
        Array.Sort(microseconds);
        var median = microseconds[microseconds.Length / 2];
        var seconds = median * 1e-6;
        double flops = 2.0 * problem.Macs, bytes = CompulsoryBytes(problem, pass);
        double? fraction = null;
        var bound = "";
        if (peakFlops is { } f && peakBytes is { } b)
        {
            double computeFloor = flops / f, memoryFloor = bytes / b;
            fraction = Math.Max(computeFloor, memoryFloor) / seconds;
            bound = computeFloor >= memoryFloor ? "compute" : "memory";
        }

        return new ConvBenchResult(problem, Passes[pass], median, microseconds[0], flops / seconds * 1e-9, bytes / seconds * 1e-9, fraction, bound);
    }
}
