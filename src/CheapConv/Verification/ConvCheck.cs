using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Interop;
using CheapConv.Problems;

namespace CheapConv.Verification;

/// <summary>The inputs of one convolution check: x, w and the incoming gradient dy, in fp32.</summary>
internal sealed record ConvInputs(float[] X, float[] W, float[] Dy)
{
    /// <summary>Uniform values in [-1, 1) from a seeded generator, so a failure can be reproduced exactly.</summary>
    public static ConvInputs Random(ConvProblem problem, int seed)
    {
        var random = new Random(seed);
        float[] Fill(long length)
        {
            var data = new float[length];
            for (var i = 0; i < data.Length; i++)
            {
                data[i] = (float)(random.NextDouble() * 2 - 1);
            }

            return data;
        }

        return new ConvInputs(Fill(problem.InputElements), Fill(problem.WeightElements), Fill(problem.OutputElements));
    }

    /// <summary>
    /// Multiples of 2⁻⁸ in [-1, 1) from a seeded generator: exact in tf32 (at most 9 significant bits), so rounding to
    /// tf32 changes nothing and a tensor-core kernel owes the fp32 bound (<see cref="ConvCheck.RelativeTolerance"/>),
    /// which a misplaced or dropped term exceeds by far.
    /// </summary>
    public static ConvInputs RandomTf32Exact(ConvProblem problem, int seed)
    {
        var random = new Random(seed);
        float[] Fill(long length)
        {
            var data = new float[length];
            for (var i = 0; i < data.Length; i++)
            {
                data[i] = random.Next(-256, 256) / 256f;
            }

            return data;
        }

        return new ConvInputs(Fill(problem.InputElements), Fill(problem.WeightElements), Fill(problem.OutputElements));
    }
}

/// <summary>The results of the three passes: y (forward), dx (backward-data), dw (backward-weight).</summary>
internal sealed record ConvOutputs(float[] Y, float[] Dx, float[] Dw);

/// <summary>How one pass compared with the float64 reference.</summary>
/// <param name="Pass">"forward", "backward-data" or "backward-weight".</param>
/// <param name="MaxAbsError">Largest |actual − reference|.</param>
/// <param name="MaxRelError">Largest |actual − reference| / scale, where scale is the sum of the absolute values of the terms the element adds up (so cancellation does not inflate it).</param>
/// <param name="Tolerance">The relative bound every element must meet (see <see cref="ConvCheck.RelativeTolerance"/>).</param>
/// <param name="Failures">Elements outside the bound, unwritten (NaN) ones included.</param>
/// <param name="FirstFailures">Up to five failing elements as "index: actual vs reference" lines.</param>
internal sealed record PassComparison(
    string Pass, long Elements, double MaxAbsError, double MaxRelError, double Tolerance, long Failures, IReadOnlyList<string> FirstFailures)
{
    public bool Passed => Failures == 0;
}

/// <summary>One problem checked on one device: the three passes.</summary>
internal sealed record ConvCheckResult(ConvProblem Problem, string Device, IReadOnlyList<PassComparison> Passes)
{
    public bool Passed => Passes.All(p => p.Passed);
}

/// <summary>
/// Runs the forward, backward-data and backward-weight passes of a convolution on a device and compares each
/// with <see cref="CpuBackend"/> evaluated in float64. Outputs on the device are poisoned with NaN before
/// the run, so an element a kernel forgot to write fails.
/// </summary>
internal static class ConvCheck
{
    /// <summary>Absolute slack for elements whose terms are all zero (there the result must be ~exactly 0).</summary>
    public const double AbsoluteTolerance = 1e-6;

    /// <summary>
    /// The relative bound for a sum of <paramref name="terms"/> fp32 products: rounding errors of a sum grow
    /// like √n·ε for any order of additions a kernel may choose (sequential, tree, shuffles), so the bound is
    /// ε·(4 + 2√n) of the sum of absolute terms, with ε = 2^-23. Not tuned to pass: it follows from the
    /// arithmetic, and a kernel that drops or doubles a single term exceeds it by orders of magnitude.
    /// </summary>
    public static double RelativeTolerance(long terms) => Math.Pow(2, -23) * (4 + 2 * Math.Sqrt(terms));

    /// <summary>
    /// The relative bound for the same sum computed on tensor cores in tf32: each factor is first rounded to tf32
    /// (10 mantissa bits, round to nearest: |ã − a| ≤ v·|a| with v = 2⁻¹¹), so each product is off by at most (2v + v²)·|ab|
    /// — together at most (2v + v²) times the scale, whatever the reduction length — and the fp32 sum of the rounded
    /// products, whose absolute values add up to at most (1 + v)² times the scale, adds <see cref="RelativeTolerance"/> of
    /// that. A worst-case bound on the rounding (relative to the sum of absolute terms), so it does not shrink with the
    /// reduction length: data whose terms do not cancel is what makes a wrong term visible, and
    /// <see cref="ConvInputs.RandomTf32Exact"/> checks tensor-core kernels against the fp32 bound itself.
    /// </summary>
    public static double RelativeToleranceTf32(long terms)
    {
        var v = Math.Pow(2, -11);
        return 2 * v + v * v + RelativeTolerance(terms) * (1 + v) * (1 + v);
    }

    /// <summary>Runs the three passes on <paramref name="device"/> through <see cref="GpuBackend"/> (the C ABI): the kernels
    /// the launcher chooses with what <paramref name="precision"/> allows, or those of a forced <paramref name="algorithm"/>.</summary>
    public static ConvOutputs RunOnDevice(Device device, ConvProblem problem, ConvInputs inputs, KernelPrecision precision = KernelPrecision.Fp32,
        KernelAlgorithm algorithm = KernelAlgorithm.Auto)
    {
        using var tensors = new ConvTensors(device, problem, inputs, precision, algorithm);
        const byte nanPoison = 0xFF;
        tensors.Y.FillBytes(nanPoison);
        tensors.Dx.FillBytes(nanPoison);
        tensors.Dw.FillBytes(nanPoison);
        tensors.Forward();
        tensors.BackwardData();
        tensors.BackwardWeight();
        device.Synchronize();
        return new ConvOutputs(tensors.Y.ToArray(), tensors.Dx.ToArray(), tensors.Dw.ToArray());
    }

    /// <summary>Runs the three passes with the fp32 C# backend (the "cpu" device).</summary>
    public static ConvOutputs RunOnCpu(ConvProblem problem, ConvInputs inputs)
    {
        var outputs = new ConvOutputs(new float[problem.OutputElements], new float[problem.InputElements], new float[problem.WeightElements]);
        Array.Fill(outputs.Y, float.NaN);
        Array.Fill(outputs.Dx, float.NaN);
        Array.Fill(outputs.Dw, float.NaN);
        CpuBackend.Conv2dForward(problem, inputs.X, inputs.W, outputs.Y);
        CpuBackend.Conv2dBackwardData(problem, inputs.Dy, inputs.W, outputs.Dx);
        CpuBackend.Conv2dBackwardWeight(problem, inputs.X, inputs.Dy, outputs.Dw);
        return outputs;
    }

    /// <summary>Compares fp32 outputs with the float64 reference of the same inputs, with the bound of
    /// <paramref name="precision"/> (<see cref="RelativeTolerance"/> or <see cref="RelativeToleranceTf32"/>).</summary>
    public static ConvCheckResult Compare(ConvProblem problem, ConvInputs inputs, ConvOutputs actual, string device,
        KernelPrecision precision = KernelPrecision.Fp32)
    {
        Func<long, double> tolerance = precision == KernelPrecision.Tf32 ? RelativeToleranceTf32 : RelativeTolerance;
        var reference = Evaluate(problem, ToDouble(inputs.X), ToDouble(inputs.W), ToDouble(inputs.Dy));
        return CompareWith(problem, actual, reference, Scales(problem, inputs), tolerance, device);
    }

    /// <summary>
    /// Compares fp32 outputs with those of another kernel (an oracle, e.g. the direct kernels): each is within the
    /// <see cref="RelativeTolerance"/> of the exact sums, so the two are within twice it of each other.
    /// </summary>
    public static ConvCheckResult CompareWithOracle(ConvProblem problem, ConvInputs inputs, ConvOutputs actual, ConvOutputs oracle, string device)
    {
        var reference = (ToDouble(oracle.Y), ToDouble(oracle.Dx), ToDouble(oracle.Dw));
        return CompareWith(problem, actual, reference, Scales(problem, inputs), terms => 2 * RelativeTolerance(terms), device);
    }

    private static ConvCheckResult CompareWith(ConvProblem problem, ConvOutputs actual, (double[] Y, double[] Dx, double[] Dw) reference,
        (double[] Y, double[] Dx, double[] Dw) scale, Func<long, double> tolerance, string device)
    {
        long taps = (long)problem.R * problem.S;
        return new ConvCheckResult(problem, device,
        [
            ComparePass("forward", actual.Y, reference.Y, scale.Y, tolerance(problem.ChannelsPerGroup * taps)),
            ComparePass("backward-data", actual.Dx, reference.Dx, scale.Dx, tolerance(problem.FiltersPerGroup * taps)),
            ComparePass("backward-weight", actual.Dw, reference.Dw, scale.Dw, tolerance((long)problem.N * problem.P * problem.Q)),
        ]);
    }

    // y, dx and dw in float64.
    private static (double[] Y, double[] Dx, double[] Dw) Evaluate(ConvProblem problem, double[] x, double[] w, double[] dy)
    {
        var y = new double[problem.OutputElements];
        var dx = new double[problem.InputElements];
        var dw = new double[problem.WeightElements];
        CpuBackend.Conv2dForward(problem, x, w, y);
        CpuBackend.Conv2dBackwardData(problem, dy, w, dx);
        CpuBackend.Conv2dBackwardWeight(problem, x, dy, dw);
        return (y, dx, dw);
    }

    // Per element, the sum of the absolute values of the terms it adds up: the passes over |x|, |w|, |dy|.
    private static (double[] Y, double[] Dx, double[] Dw) Scales(ConvProblem problem, ConvInputs inputs) =>
        Evaluate(problem, Abs(ToDouble(inputs.X)), Abs(ToDouble(inputs.W)), Abs(ToDouble(inputs.Dy)));

    /// <summary>Element-wise comparison: |actual − reference| ≤ atol + rtol·scale, NaN always failing.</summary>
    public static PassComparison ComparePass(string pass, float[] actual, double[] reference, double[] scale, double tolerance)
    {
        if (actual.Length != reference.Length)
        {
            throw new ArgumentException($"{pass}: {actual.Length} results for {reference.Length} reference elements");
        }

        double maxAbs = 0, maxRel = 0;
        long failures = 0;
        var first = new List<string>();
        for (var i = 0; i < actual.Length; i++)
        {
            var error = Math.Abs(actual[i] - reference[i]);
            var relative = error / Math.Max(scale[i], double.Epsilon);
            var ok = error <= AbsoluteTolerance + tolerance * scale[i];
            if (!ok)
            {
                failures++;
                if (first.Count < 5)
                {
                    first.Add($"[{i}] {actual[i]:R} vs {reference[i]:R} (error {error:0.00e+00}, scale {scale[i]:0.00e+00})");
                }
            }

            // NaN compares false everywhere: record it as an infinite error.
            maxAbs = double.IsNaN(error) ? double.PositiveInfinity : Math.Max(maxAbs, error);
            maxRel = double.IsNaN(relative) ? double.PositiveInfinity : Math.Max(maxRel, scale[i] > 0 ? relative : 0);
        }

        return new PassComparison(pass, actual.Length, maxAbs, maxRel, tolerance, failures, first);
    }

    private static double[] ToDouble(float[] values) => Array.ConvertAll(values, v => (double)v);

    private static double[] Abs(double[] values) => Array.ConvertAll(values, Math.Abs);
}
