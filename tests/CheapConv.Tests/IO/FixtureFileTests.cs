using CheapConv.IO;
using Xunit;

namespace CheapConv.Tests.IO;

/// <summary>
/// The committed PyTorch fixtures exist, hold exactly the arrays the model specification implies (names,
/// shapes, types), and are consistent with themselves where that needs no model: the distillation files
/// carry the teacher file's weights, loss.total is the weighted sum of its parts, and the recorded SGD step
/// follows from the stored parameters and gradients. The models themselves are compared elsewhere.
/// </summary>
public class FixtureFileTests
{
    /// <summary>Float32 machine epsilon (2 u), as in ConvCheck.RelativeTolerance.</summary>
    private const double Float32Epsilon = 1.0 / (1 << 23);

    /// <summary>Float32 unit roundoff u: the largest relative error of one rounding.</summary>
    private const double Float32UnitRoundoff = 1.0 / (1 << 24);

    public static TheoryData<string> Files() => [.. FixtureLayout.Files];

    [Theory]
    [MemberData(nameof(Files))]
    public void FixtureFile_HoldsExactlyTheExpectedArrays(string file)
    {
        var path = FixtureLayout.PathOf(file);
        Assert.True(File.Exists(path), $"{path} is missing; regenerate with /usr/bin/python3 tests/fixtures/make_fixtures.py");
        var fixture = NpzReader.Read(path);
        var expected = FixtureLayout.ExpectedArrays(file);

        var missing = expected.Select(e => e.Name).Except(fixture.Names).ToList();
        var unexpected = fixture.Names.Except(expected.Select(e => e.Name)).ToList();
        Assert.True(missing.Count == 0 && unexpected.Count == 0,
            $"{file}: missing [{string.Join(", ", missing.Take(10))}], unexpected [{string.Join(", ", unexpected.Take(10))}]");

        foreach (var (name, shape) in expected)
        {
            var array = fixture[name];
            Assert.True(shape.SequenceEqual(array.Shape), $"{file}: {name} has shape ({string.Join(", ", array.Shape)}), expected ({string.Join(", ", shape)})");
            var type = name == "labels" ? NpyDataType.Int64 : NpyDataType.Float32;
            Assert.True(array.DataType == type, $"{file}: {name} is {array.DataType}, expected {type}");
            if (type == NpyDataType.Float32)
            {
                Assert.True(array.AsFloat32().All(float.IsFinite), $"{file}: {name} holds non-finite values");
            }
        }

        Assert.All(fixture["labels"].AsInt64(), label => Assert.InRange(label, 0, FixtureLayout.Classes - 1));
    }

    [Theory]
    [InlineData(FixtureLayout.GroupedStudent)]
    [InlineData(FixtureLayout.BottleneckStudent)]
    public void DistillationFixture_TeacherAndInputs_AreTheTeacherFixtures(string file)
    {
        var teacher = NpzReader.Read(FixtureLayout.PathOf(FixtureLayout.Teacher));
        var distillation = NpzReader.Read(FixtureLayout.PathOf(file));

        Assert.Equal(teacher["x"].AsFloat32(), distillation["x"].AsFloat32());
        Assert.Equal(teacher["labels"].AsInt64(), distillation["labels"].AsInt64());
        foreach (var (name, array) in distillation.WithPrefix("teacher.param.").Concat(distillation.WithPrefix("teacher.buffer.")))
        {
            var kind = array.Name.StartsWith("teacher.param.", StringComparison.Ordinal) ? "param." : "buffer.";
            Assert.True(teacher[kind + name].AsFloat32().SequenceEqual(array.AsFloat32()), $"{file}: {array.Name} differs from {FixtureLayout.Teacher}");
        }
    }

    [Theory]
    [InlineData(FixtureLayout.GroupedStudent)]
    [InlineData(FixtureLayout.BottleneckStudent)]
    public void DistillationFixture_TotalLoss_IsTheWeightedSumOfItsParts(string file)
    {
        var fixture = NpzReader.Read(FixtureLayout.PathOf(file));
        var ce = fixture["loss.ce"].Scalar();
        var kd = fixture["loss.kd"].Scalar();
        var at = new[] { "loss.at1", "loss.at2", "loss.at3" }.Select(n => fixture[n].Scalar()).ToArray();
        double[] terms = [(1 - FixtureLayout.Alpha) * ce, FixtureLayout.Alpha * kd, .. at.Select(a => FixtureLayout.Beta * a)];

        // PyTorch summed the five float32 terms in float32: the house bound eps (4 + 2 sqrt(n)) sum |terms|.
        var expected = terms.Sum();
        var tolerance = Float32Epsilon * (4 + 2 * Math.Sqrt(terms.Length)) * terms.Sum(Math.Abs);
        var total = fixture["loss.total"].Scalar();
        Assert.True(Math.Abs(total - expected) <= tolerance, $"{file}: loss.total {total} but the parts give {expected} (tolerance {tolerance:0.0e+0})");
        Assert.All(at, a => Assert.True(a > 0, "every AT loss is positive for different teacher and student"));
    }

    [Theory]
    [InlineData(FixtureLayout.GroupedStudent)]
    [InlineData(FixtureLayout.BottleneckStudent)]
    public void DistillationFixture_SgdStep_FollowsFromParametersAndGradients(string file)
    {
        var fixture = NpzReader.Read(FixtureLayout.PathOf(file));
        var gradients = fixture.WithPrefix("student.grad.");
        foreach (var (name, after) in fixture.WithPrefix("student.param_after_sgd."))
        {
            var p = fixture["student.param." + name].AsFloat64();
            var g = gradients[name].AsFloat64();
            var actual = after.AsFloat64();
            for (var i = 0; i < p.Length; i++)
            {
                // First step with momentum: the buffer starts as d = g + wd p, so p' = p - lr d. In float32 (unit
                // roundoff u) PyTorch rounds wd p and the sum (error <= u (|d| + wd |p|) in d, times lr), the
                // product lr d (u lr |d|) and the update (u |p'|); lr itself is 0.1f, off 0.1 by 1.5e-8
                // relative (< 0.25 u lr |d|). The bound is the sum of those.
                var d = g[i] + (FixtureLayout.WeightDecay * p[i]);
                var expected = p[i] - (FixtureLayout.LearningRate * d);
                var tolerance = Float32UnitRoundoff * (Math.Abs(expected)
                    + (2.25 * FixtureLayout.LearningRate * Math.Abs(d))
                    + (FixtureLayout.LearningRate * FixtureLayout.WeightDecay * Math.Abs(p[i])));
                Assert.True(Math.Abs(actual[i] - expected) <= tolerance,
                    $"{file}: student.param_after_sgd.{name}[{i}] = {actual[i]} but p - lr (g + wd p) = {expected} (p {p[i]}, g {g[i]})");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void FixtureFile_BatchNormState_IsPerturbedFromItsInitialisation(string file)
    {
        // A fixture with gamma = 1, beta = 0, mean 0, var 1 would let swapped BN parameters pass unnoticed.
        var fixture = NpzReader.Read(FixtureLayout.PathOf(file));
        var prefix = file == FixtureLayout.Teacher ? "" : "student.";
        var (unit, block) = FixtureLayout.ModelOf(file);
        foreach (var (name, _) in FixtureLayout.Parameters(unit, block).Concat(FixtureLayout.Buffers(unit, block))
                     .Where(e => e.Name.EndsWith(".bias", StringComparison.Ordinal) || e.Name.Contains(".running_", StringComparison.Ordinal)
                         || (e.Name.EndsWith(".weight", StringComparison.Ordinal) && e.Shape.Length == 1)))
        {
            var kind = name.Contains(".running_", StringComparison.Ordinal) ? "buffer." : "param.";
            var values = fixture[prefix + kind + name].AsFloat32();
            Assert.True(values.Distinct().Count() > 1, $"{file}: {prefix}{kind}{name} is constant");
        }
    }
}
