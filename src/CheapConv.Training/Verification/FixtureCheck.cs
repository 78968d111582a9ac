using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.IO;
using CheapConv.Models;
using CheapConv.Training;

namespace CheapConv.Verification;

/// <summary>
/// One tensor of a fixture compared element by element against its own bound: the element whose error is the largest
/// fraction of its bound, with that error and bound (so <see cref="Passed"/> holds exactly when every element is within).
/// </summary>
internal sealed record FixtureComparison(string Name, int Elements, double MaxAbsError, double Limit)
{
    public bool Passed => MaxAbsError <= Limit; // NaN fails
}

/// <summary>
/// Runs our models against the PyTorch fixtures of tests/fixtures (written by make_fixtures.py): the WRN-10-1
/// teacher's training step and the G(2) / B(2) students' distillation steps, on any backend — the whole stack
/// (kernels, autograd, models, losses, SGD) in one check. Used by the test suite and by <c>check model</c>,
/// which is how a GPU machine without the .NET SDK runs it.
/// </summary>
/// <remarks>
/// Bounds, per element, as tests/fixtures/README.md states them for a float32 implementation compared with the float32
/// fixtures (whose own error against a float64 evaluation is at most 2.7e-6 of each array's largest magnitude):
/// <list type="bullet">
/// <item>outputs, gradients, BN statistics and the CE, AT and total losses: |c − f| ≤ <see cref="ArrayBound"/>·max|f|
/// (2e-5: two float32 computations of the same size);</item>
/// <item><c>loss.kd</c>, a small difference of O(1) terms: ε·(4 + 2√C)·T²·mean_n Σ_c p_t·(|log p_t| + |log p_s| + 1), from
/// the fixture's logits in float64 (the house bound of a float32 reduction over the magnitudes that went in);</item>
/// <item>the SGD update p' − p of each element: both sides' float32 rounding of the first momentum step,
/// 2u·(|p'| + 2.25·lr·|d| + lr·wd·|p|) with d = g + wd·p and u = 2⁻²⁴, the rounding of the two differences 2u·|p' − p|,
/// and lr times our gradient's own bound, lr·<see cref="ArrayBound"/>·max|g|.</item>
/// </list>
/// </remarks>
internal static class FixtureCheck
{
    /// <summary>The fixtures' bound for float32 against float32, as a fraction of each array's largest magnitude.</summary>
    public const double ArrayBound = 2e-5;

    private const double Float32Epsilon = 1.1920928955078125e-7;
    private const double UnitRoundoff = Float32Epsilon / 2;

    public const string TeacherFile = "wrn10-1_S.npz";
    public const string GroupedStudentFile = "wrn10-1_G2_distill.npz";
    public const string BottleneckStudentFile = "wrn10-1_B2_distill.npz";

    // The fixture models and recipe (tests/fixtures/make_fixtures.py).
    public const int Batch = 2;
    public const int Classes = 10;
    public const int Image = 16;
    public const float Alpha = 0.9f;
    public const float Temperature = 4f;
    public const float Beta = 1e3f;
    public const float LearningRate = 0.1f;
    public const float Momentum = 0.9f;
    public const float WeightDecay = 5e-4f;

    /// <summary>The fixtures' distillation (teacher S, α 0.9, T 4, β 1000), as a run's configuration holds it.</summary>
    public static DistillationConfig Distillation { get; } = new("tests/fixtures/" + TeacherFile, ModelConfig.From(Config("S")), Alpha, Temperature, Beta);

    /// <summary>Every fixture of <paramref name="directory"/> on <paramref name="backend"/>: (fixture, comparisons).</summary>
    public static IReadOnlyList<(string Fixture, IReadOnlyList<FixtureComparison> Comparisons)> All(IBackend backend, string directory) =>
    [
        (TeacherFile, TeacherStep(backend, Path.Combine(directory, TeacherFile))),
        (GroupedStudentFile, DistillationStep(backend, Path.Combine(directory, GroupedStudentFile), "G(2)")),
        (BottleneckStudentFile, DistillationStep(backend, Path.Combine(directory, BottleneckStudentFile), "B(2)")),
    ];

    public static WrnConfig Config(string unit) =>
        WrnConfig.Student(10, 1, UnitSpec.Parse(unit), inChannels: 1, classes: Classes, imageSize: Image);

    /// <summary>The teacher's training step: forward in train mode, CE, backward; outputs, loss, gradients, BN statistics.</summary>
    public static IReadOnlyList<FixtureComparison> TeacherStep(IBackend backend, string path)
    {
        var file = NpzReader.Read(path);
        var results = new List<FixtureComparison>();
        var model = new WideResNet(Config("S"), backend, seed: 0);
        model.LoadStateDict(State(file, "param.").Concat(State(file, "buffer.")).ToDictionary());
        model.Train();
        using (TensorScope.Begin())
        {
            var output = model.ForwardWithGroups(Tensor.FromHost(backend, [Batch, 1, Image, Image], file["x"].AsFloat32()));
            var loss = Ops.CrossEntropy(output.Logits, Labels(file));
            loss.Backward();
            results.Add(Compare(file, "out.logits", output.Logits.ToArray()));
            for (var g = 0; g < 3; g++)
            {
                results.Add(Compare(file, $"out.group{g + 1}", output.Groups[g].ToArray()));
            }

            results.Add(Compare(file, "loss.ce", loss.ToArray()));
        }

        results.AddRange(model.NamedParameters().Select(p => Compare(file, $"grad.{p.Name}", p.Tensor.GradientToArray())));
        results.AddRange(model.NamedBuffers().Select(b => Compare(file, $"buffer_after.{b.Name}", b.Tensor.ToArray())));
        return results;
    }

    /// <summary>
    /// One distillation step: teacher (eval, no grad) and student forward, CE + KD + AT, backward, SGD; every
    /// output, loss, gradient, BN statistic and the SGD update (after − before, which a tolerance scaled by the
    /// parameters' magnitude would not see).
    /// </summary>
    /// <param name="distillation">The loss weights, through the same <see cref="DistillationConfig.LossOptions"/> a run uses;
    /// <see cref="Distillation"/> (the fixtures' own) by default — the self-test changes α here and must fail.</param>
    public static IReadOnlyList<FixtureComparison> DistillationStep(IBackend backend, string path, string unit, DistillationConfig? distillation = null)
    {
        var file = NpzReader.Read(path);
        var results = new List<FixtureComparison>();
        var teacher = new WideResNet(Config("S"), backend, seed: 0);
        teacher.LoadStateDict(State(file, "teacher.param.").Concat(State(file, "teacher.buffer.")).ToDictionary());
        teacher.Eval();
        var student = new WideResNet(Config(unit), backend, seed: 0);
        student.LoadStateDict(State(file, "student.param.").Concat(State(file, "student.buffer.")).ToDictionary());
        student.Train();

        using var sgd = new Sgd(student.Parameters(), LearningRate, Momentum, WeightDecay);
        using (TensorScope.Begin())
        {
            var images = Tensor.FromHost(backend, [Batch, 1, Image, Image], file["x"].AsFloat32());
            WrnOutput taught;
            using (GradientMode.NoGrad())
            {
                taught = teacher.ForwardWithGroups(images);
            }

            var output = student.ForwardWithGroups(images);
            var loss = DistillationLoss.Compute(output.Logits, taught.Logits, Labels(file), output.Groups, taught.Groups,
                (distillation ?? Distillation).LossOptions());
            sgd.ZeroGrad();
            loss.Total.Backward();

            results.Add(Compare(file, "teacher.out.logits", taught.Logits.ToArray()));
            results.Add(Compare(file, "student.out.logits", output.Logits.ToArray()));
            for (var g = 0; g < 3; g++)
            {
                results.Add(Compare(file, $"teacher.out.group{g + 1}", taught.Groups[g].ToArray()));
                results.Add(Compare(file, $"student.out.group{g + 1}", output.Groups[g].ToArray()));
                results.Add(Compare(file, $"loss.at{g + 1}", loss.AttentionTransfer[g].ToArray()));
            }

            results.Add(Compare(file, "loss.ce", loss.CrossEntropy.ToArray()));
            results.Add(Compare("loss.kd", file["loss.kd"].AsFloat32(), loss.KnowledgeDistillation!.ToArray(), _ => KdBound(file)));
            results.Add(Compare(file, "loss.total", loss.Total.ToArray()));
        }

        results.AddRange(student.NamedParameters().Select(p => Compare(file, $"student.grad.{p.Name}", p.Tensor.GradientToArray())));

        var before = student.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.ToArray());
        sgd.Step();
        foreach (var (name, parameter) in student.NamedParameters())
        {
            float[] p = file[$"student.param.{name}"].AsFloat32(), after = file[$"student.param_after_sgd.{name}"].AsFloat32(), g = file[$"student.grad.{name}"].AsFloat32();
            var gradientBound = LearningRate * ArrayBound * MaxMagnitude(g);
            results.Add(Compare($"SGD update of {name}", Difference(after, p), Difference(parameter.ToArray(), before[name]), i =>
            {
                var d = g[i] + ((double)WeightDecay * p[i]);
                return (2 * UnitRoundoff * (Math.Abs(after[i]) + (2.25 * LearningRate * Math.Abs(d)) + (LearningRate * WeightDecay * Math.Abs(p[i]))))
                    + (2 * UnitRoundoff * Math.Abs(after[i] - p[i])) + gradientBound;
            }));
        }

        results.AddRange(student.NamedBuffers().Select(b => Compare(file, $"student.buffer_after.{b.Name}", b.Tensor.ToArray())));
        if (teacher.Parameters().Any(p => p.Gradient is not null))
        {
            results.Add(new FixtureComparison("teacher received a gradient", 0, double.PositiveInfinity, 0));
        }

        return results;
    }

    /// <summary>|actual − expected| ≤ <see cref="ArrayBound"/> · max|expected| for every element.</summary>
    public static FixtureComparison Compare(string name, float[] expected, float[] actual)
    {
        ArgumentNullException.ThrowIfNull(expected);
        var bound = ArrayBound * Math.Max(MaxMagnitude(expected), double.Epsilon);
        return Compare(name, expected, actual, _ => bound);
    }

    /// <summary>|actual[i] − expected[i]| ≤ bound(i) for every element; reports the element that uses most of its bound.</summary>
    public static FixtureComparison Compare(string name, float[] expected, float[] actual, Func<int, double> bound)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        ArgumentNullException.ThrowIfNull(bound);
        if (expected.Length != actual.Length)
        {
            return new FixtureComparison($"{name} ({actual.Length} elements, expected {expected.Length})", expected.Length, double.PositiveInfinity, 0);
        }

        var worst = new FixtureComparison(name, expected.Length, 0, expected.Length == 0 ? 0 : bound(0));
        var worstRatio = -1.0;
        for (var i = 0; i < expected.Length; i++)
        {
            var error = Math.Abs((double)actual[i] - expected[i]);
            var limit = bound(i);
            if (double.IsNaN(error))
            {
                return new FixtureComparison(name, expected.Length, double.NaN, limit);
            }

            var ratio = error / limit;
            if (ratio > worstRatio)
            {
                (worstRatio, worst) = (ratio, new FixtureComparison(name, expected.Length, error, limit));
            }
        }

        return worst;
    }

    /// <summary>The KD bound of tests/fixtures/README.md from the fixture's teacher and student logits (float64).</summary>
    private static double KdBound(NpzFile file)
    {
        var student = file["student.out.logits"].AsFloat64();
        var teacher = file["teacher.out.logits"].AsFloat64();
        double scale = 0;
        for (var n = 0; n < Batch; n++)
        {
            var logPt = LogSoftmax(teacher.AsSpan(n * Classes, Classes), Temperature);
            var logPs = LogSoftmax(student.AsSpan(n * Classes, Classes), Temperature);
            for (var c = 0; c < Classes; c++)
            {
                scale += Math.Exp(logPt[c]) * (Math.Abs(logPt[c]) + Math.Abs(logPs[c]) + 1);
            }
        }

        scale *= (double)Temperature * Temperature / Batch;
        return Float32Epsilon * (4 + (2 * Math.Sqrt(Classes))) * scale;
    }

    private static double[] LogSoftmax(ReadOnlySpan<double> logits, double temperature)
    {
        var max = double.NegativeInfinity;
        foreach (var z in logits)
        {
            max = Math.Max(max, z / temperature);
        }

        double sum = 0;
        foreach (var z in logits)
        {
            sum += Math.Exp((z / temperature) - max);
        }

        var result = new double[logits.Length];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = (logits[i] / temperature) - max - Math.Log(sum);
        }

        return result;
    }

    private static double MaxMagnitude(float[] values) => values.Length == 0 ? 0 : values.Max(v => Math.Abs((double)v));

    private static FixtureComparison Compare(NpzFile file, string key, float[] actual) => Compare(key, file[key].AsFloat32(), actual);

    private static int[] Labels(NpzFile file) => file["labels"].AsInt64().Select(l => (int)l).ToArray();

    private static Dictionary<string, float[]> State(NpzFile file, string prefix) =>
        file.WithPrefix(prefix).ToDictionary(e => e.Key, e => e.Value.AsFloat32(), StringComparer.Ordinal);

    private static float[] Difference(float[] after, float[] before) => after.Select((a, i) => a - before[i]).ToArray();
}
