using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.IO;
using CheapConv.Models;

namespace CheapConv.Verification;

/// <summary>One tensor of a fixture compared: the largest error and the bound it had to meet.</summary>
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
/// Tolerance: two float32 implementations with different summation orders. One reduction of n terms is within
/// ε·(4+2√n) of the sum of |terms| of the exact value, so two implementations differ by at most twice that; the
/// longest reductions here have n ≤ 576 → 2·ε·52 with ε = 2⁻²⁴; errors of successive layers add to first order
/// along the longest forward + backward path (≈60 reductions), so each tensor must agree within 60·2·52·ε
/// (≈3.7e-4) of its largest magnitude. The fixtures themselves are within 3e-6 of a float64 evaluation.
/// </remarks>
internal static class FixtureCheck
{
    public const double Tolerance = 60 * 2 * 52 * 5.9604644775390625e-8;

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
    public static IReadOnlyList<FixtureComparison> DistillationStep(IBackend backend, string path, string unit)
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
                new DistillationOptions(Alpha, Temperature, Beta));
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
            results.Add(Compare(file, "loss.kd", loss.KnowledgeDistillation!.ToArray()));
            results.Add(Compare(file, "loss.total", loss.Total.ToArray()));
        }

        results.AddRange(student.NamedParameters().Select(p => Compare(file, $"student.grad.{p.Name}", p.Tensor.GradientToArray())));

        var before = student.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.ToArray());
        sgd.Step();
        foreach (var (name, parameter) in student.NamedParameters())
        {
            var expected = Difference(file[$"student.param_after_sgd.{name}"].AsFloat32(), file[$"student.param.{name}"].AsFloat32());
            results.Add(Compare($"SGD update of {name}", expected, Difference(parameter.ToArray(), before[name])));
        }

        results.AddRange(student.NamedBuffers().Select(b => Compare(file, $"student.buffer_after.{b.Name}", b.Tensor.ToArray())));
        if (teacher.Parameters().Any(p => p.Gradient is not null))
        {
            results.Add(new FixtureComparison("teacher received a gradient", 0, double.PositiveInfinity, 0));
        }

        return results;
    }

    /// <summary>|actual − expected| ≤ <see cref="Tolerance"/> · max|expected| for every element.</summary>
    public static FixtureComparison Compare(string name, float[] expected, float[] actual)
    {
        if (expected.Length != actual.Length)
        {
            return new FixtureComparison($"{name} ({actual.Length} elements, expected {expected.Length})", expected.Length, double.PositiveInfinity, 0);
        }

        var scale = expected.Length == 0 ? 0 : expected.Max(v => Math.Abs((double)v));
        var maxError = 0.0;
        for (var i = 0; i < expected.Length; i++)
        {
            var error = Math.Abs((double)actual[i] - expected[i]);
            maxError = double.IsNaN(error) ? double.NaN : Math.Max(maxError, error);
            if (double.IsNaN(maxError))
            {
                break;
            }
        }

        return new FixtureComparison(name, expected.Length, maxError, Tolerance * Math.Max(scale, 1e-30));
    }

    private static FixtureComparison Compare(NpzFile file, string key, float[] actual) => Compare(key, file[key].AsFloat32(), actual);

    private static int[] Labels(NpzFile file) => file["labels"].AsInt64().Select(l => (int)l).ToArray();

    private static Dictionary<string, float[]> State(NpzFile file, string prefix) =>
        file.WithPrefix(prefix).ToDictionary(e => e.Key, e => e.Value.AsFloat32(), StringComparer.Ordinal);

    private static float[] Difference(float[] after, float[] before) => after.Select((a, i) => a - before[i]).ToArray();
}
