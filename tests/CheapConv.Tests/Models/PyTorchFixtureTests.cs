using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.IO;
using CheapConv.Models;
using CheapConv.Tests.Autograd;
using CheapConv.Tests.Emulator;
using CheapConv.Tests.IO;
using Xunit;

namespace CheapConv.Tests.Models;

/// <summary>
/// Our models against PyTorch: tests/fixtures/make_fixtures.py builds the same WRN-10-1 teacher and the
/// G(2) / B(2) students in PyTorch 1.13, and records inputs, weights, outputs, losses, every gradient, the
/// updated BN statistics and the parameters after one SGD step. Here the same weights are loaded into our
/// models and the same step runs on the CPU backend, on the emulator (the CUDA kernels) and, where there is
/// one, on a real GPU.
/// </summary>
/// <remarks>
/// Tolerance: two float32 implementations with different summation orders, so the bound derived for
/// emulator vs CPU in <see cref="StudentOnEmulatorTests"/> applies unchanged (≈3.7e-4 of each tensor's
/// largest magnitude); the fixtures themselves are within 3e-6 of a float64 evaluation.
/// </remarks>
public class PyTorchFixtureTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    private const double Tolerance = 60 * 2 * 52 * 5.9604644775390625e-8;

    private static readonly Lazy<CheapConv.Devices.CudaDevice?> Cuda = new(() =>
        CheapConv.Devices.CudaDevice.Probe().IsAvailable ? CheapConv.Devices.CudaDevice.Open() : null);

    private IBackend Backend(string name)
    {
        switch (name)
        {
            case "cpu":
                return new CpuBackend();
            case "emu":
                return new GpuBackend(emulator.Device);
            default:
                Skip.If(Cuda.Value is null, $"no CUDA device: {CheapConv.Devices.CudaDevice.Probe().Reason}");
                return new GpuBackend(Cuda.Value!);
        }
    }

    private static WrnConfig Config(string unit) =>
        WrnConfig.Student(10, 1, UnitSpec.Parse(unit), inChannels: 1, classes: FixtureLayout.Classes, imageSize: 16);

    private static Dictionary<string, float[]> State(NpzFile file, string prefix) =>
        file.WithPrefix(prefix).ToDictionary(e => e.Key, e => e.Value.AsFloat32(), StringComparer.Ordinal);

    private static void Close(NpzFile file, string key, float[] actual, string what) =>
        TensorAssert.Close(file[key].AsFloat32(), actual, Tolerance, $"{what}: {key}");

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("emu")]
    [InlineData("cuda")]
    public void Teacher_TrainingStep_MatchesPyTorch(string device)
    {
        var file = NpzReader.Read(FixtureLayout.PathOf(FixtureLayout.Teacher));
        var backend = Backend(device);
        var model = new WideResNet(Config("S"), backend, seed: 0);
        model.LoadStateDict(State(file, "param.").Concat(State(file, "buffer.")).ToDictionary());
        model.Train();
        var labels = file["labels"].AsInt64().Select(l => (int)l).ToArray();
        using (TensorScope.Begin())
        {
            var output = model.ForwardWithGroups(Tensor.FromHost(backend, [FixtureLayout.Batch, 1, 16, 16], file["x"].AsFloat32()));
            var loss = Ops.CrossEntropy(output.Logits, labels);
            loss.Backward();
            Close(file, "out.logits", output.Logits.ToArray(), device);
            for (var g = 0; g < 3; g++)
            {
                Close(file, $"out.group{g + 1}", output.Groups[g].ToArray(), device);
            }

            Close(file, "loss.ce", loss.ToArray(), device);
        }

        foreach (var (name, parameter) in model.NamedParameters())
        {
            Close(file, $"grad.{name}", parameter.GradientToArray(), device);
        }

        foreach (var (name, buffer) in model.NamedBuffers())
        {
            Close(file, $"buffer_after.{name}", buffer.ToArray(), device);
        }
    }

    [SkippableTheory]
    [InlineData(FixtureLayout.GroupedStudent, "G(2)", "cpu")]
    [InlineData(FixtureLayout.GroupedStudent, "G(2)", "emu")]
    [InlineData(FixtureLayout.GroupedStudent, "G(2)", "cuda")]
    [InlineData(FixtureLayout.BottleneckStudent, "B(2)", "cpu")]
    [InlineData(FixtureLayout.BottleneckStudent, "B(2)", "emu")]
    [InlineData(FixtureLayout.BottleneckStudent, "B(2)", "cuda")]
    public void DistillationStep_MatchesPyTorch(string fixture, string unit, string device)
    {
        var file = NpzReader.Read(FixtureLayout.PathOf(fixture));
        var backend = Backend(device);
        var teacher = new WideResNet(Config("S"), backend, seed: 0);
        teacher.LoadStateDict(State(file, "teacher.param.").Concat(State(file, "teacher.buffer.")).ToDictionary());
        teacher.Eval();
        var student = new WideResNet(Config(unit), backend, seed: 0);
        student.LoadStateDict(State(file, "student.param.").Concat(State(file, "student.buffer.")).ToDictionary());
        student.Train();
        var labels = file["labels"].AsInt64().Select(l => (int)l).ToArray();
        var what = $"{unit} on {device}";

        using var sgd = new Sgd(student.Parameters(), (float)FixtureLayout.LearningRate, (float)FixtureLayout.Momentum, weightDecay: 5e-4f);
        using (TensorScope.Begin())
        {
            var images = Tensor.FromHost(backend, [FixtureLayout.Batch, 1, 16, 16], file["x"].AsFloat32());
            WrnOutput taught;
            using (GradientMode.NoGrad())
            {
                taught = teacher.ForwardWithGroups(images);
            }

            var output = student.ForwardWithGroups(images);
            var options = new DistillationOptions((float)FixtureLayout.Alpha, (float)FixtureLayout.Temperature, (float)FixtureLayout.Beta);
            var loss = DistillationLoss.Compute(output.Logits, taught.Logits, labels, output.Groups, taught.Groups, options);
            sgd.ZeroGrad();
            loss.Total.Backward();

            Close(file, "teacher.out.logits", taught.Logits.ToArray(), what);
            Close(file, "student.out.logits", output.Logits.ToArray(), what);
            for (var g = 0; g < 3; g++)
            {
                Close(file, $"teacher.out.group{g + 1}", taught.Groups[g].ToArray(), what);
                Close(file, $"student.out.group{g + 1}", output.Groups[g].ToArray(), what);
                Close(file, $"loss.at{g + 1}", loss.AttentionTransfer[g].ToArray(), what);
            }

            Close(file, "loss.ce", loss.CrossEntropy.ToArray(), what);
            Close(file, "loss.kd", loss.KnowledgeDistillation!.ToArray(), what);
            Close(file, "loss.total", loss.Total.ToArray(), what);
        }

        foreach (var (name, parameter) in student.NamedParameters())
        {
            Close(file, $"student.grad.{name}", parameter.GradientToArray(), what);
        }

        // Compare the SGD update (after − before), not the parameters: the update is ~lr·|g| and would vanish
        // inside a tolerance scaled by the parameters' magnitude.
        var before = student.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.ToArray());
        sgd.Step();
        foreach (var (name, parameter) in student.NamedParameters())
        {
            var expected = Difference(file[$"student.param_after_sgd.{name}"].AsFloat32(), file[$"student.param.{name}"].AsFloat32());
            TensorAssert.Close(expected, Difference(parameter.ToArray(), before[name]), Tolerance, $"{what}: SGD update of {name}");
        }

        foreach (var (name, buffer) in student.NamedBuffers())
        {
            Close(file, $"student.buffer_after.{name}", buffer.ToArray(), what);
        }

        Assert.All(teacher.Parameters(), p => Assert.Null(p.Gradient));
    }

    private static float[] Difference(float[] after, float[] before) => after.Select((a, i) => a - before[i]).ToArray();
}
