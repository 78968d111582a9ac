using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;
using CheapConv.Tests.Autograd;
using CheapConv.Tests.Emulator;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Training;

/// <summary>
/// A training step captured as a graph (<see cref="StepGraph"/>) and replayed on the emulator gives the bits of the same
/// steps run eagerly — weights, momentum and every logged value — and a replay makes no host wait; one replayed step
/// agrees with a step of the C# CPU backend from the same state within the one-step tolerance.
/// </summary>
public class StepGraphTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    private const int Batch = 8;
    private const int SmallBatch = 2; // the batch StudentOnEmulatorTests' bound is derived for

    private static int[] SmallShape => [SmallBatch, 1, 16, 16];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReplayedSteps_AreBitForBitTheEagerSteps_AndDoNotWait(bool distill)
    {
        var (eagerWeights, eagerLog) = Run(distill, graph: false);
        var (graphWeights, graphLog) = Run(distill, graph: true);

        Assert.Equal(eagerLog.Count, graphLog.Count);
        for (var i = 0; i < eagerLog.Count; i++)
        {
            Assert.Equal(eagerLog[i], graphLog[i]); // records compare by value: every loss term, count and check
        }

        Assert.Equal(eagerWeights.Count, graphWeights.Count);
        for (var i = 0; i < eagerWeights.Count; i++)
        {
            TensorAssert.Identical(eagerWeights[i], graphWeights[i], $"tensor {i}");
        }
    }

    [Fact]
    public void Capture_BeforeAnyEagerStep_IsRefused_AndLeavesNothingOpen()
    {
        var backend = new GpuBackend(emulator.Device);
        var student = Student(backend);
        using var optimizer = new Sgd(student.Parameters(), 0.1f, 0.9f, 5e-4f);
        using var log = new StepLog(backend, student, 0, capacity: 2);
        var (_, labels) = Data(0);
        // The step log's gradient list is uploaded by the first eager step: inside a capture that upload is refused.
        var error = Assert.Throws<InvalidOperationException>(() => StepGraph.Capture(student, null, optimizer, null, backend, [Batch, 1, 12, 12], labels, log));
        Assert.Contains("capture is under way", error.Message);
        Assert.False(emulator.Device.Capturing);
        Assert.Null(TensorScope.Current);
    }

    [Fact]
    public void Graph_NoLongerFits_AnotherLearningRate_AnotherShape_OrAMovedLabelBuffer()
    {
        var backend = new GpuBackend(emulator.Device);
        var student = Student(backend);
        using var optimizer = new Sgd(student.Parameters(), 0.1f, 0.9f, 5e-4f);
        using var log = new StepLog(backend, student, 0, capacity: 2);
        int[] shape = [Batch, 1, 12, 12];
        var (images, labels) = Data(0);
        TrainingStep.Run(student, null, optimizer, null, backend, shape, images, labels, log);
        using var graph = StepGraph.Capture(student, null, optimizer, null, backend, shape, labels, log);

        Assert.True(graph.Fits(shape, 0.1f));
        Assert.False(graph.Fits(shape, 0.05f)); // the captured SGD launch holds the learning rate
        Assert.False(graph.Fits([Batch / 2, 1, 12, 12], 0.1f));
        backend.StageLabels(new int[Batch]); // the same length: the buffer stays
        Assert.True(graph.Fits(shape, 0.1f));
        backend.StageLabels(new int[2 * Batch]); // an evaluation's larger batch: the buffer the graph reads is replaced
        Assert.False(graph.Fits(shape, 0.1f));
    }

    /// <summary>
    /// One replayed step against one step of the C# CPU backend from the same state, held to the one-step bound derived in
    /// <see cref="StudentOnEmulatorTests"/> for its model and batch, which this test uses: the GPU model is trained an eager
    /// step and a replayed one, its whole state (weights, BN running statistics, momentum, and the teacher's weights) is
    /// copied to a CPU model, then both take one step on the same batch — the GPU by replaying its graph.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReplayedStep_AgreesWithACpuStepFromTheSameState_WithinTheOneStepTolerance(bool distill)
    {
        var (before, replayed) = ReplayedStep(distill);
        AssertWithinOneStep(CpuStep(distill, before), replayed, distill ? "distillation" : "training");
    }

    [Fact]
    public void ReplayedStepComparison_CatchesACpuParameterOffByAFewTolerances()
    {
        var (before, replayed) = ReplayedStep(distill: false);
        string? perturbed = null;
        var cpu = CpuStep(distill: false, before, model =>
        {
            // The stem's weights, one element moved by 4 × the tolerance of the tensor's scale before the step.
            var (name, parameter) = model.NamedParameters().First();
            var values = parameter.ToArray();
            values[0] += (float)(4 * StudentOnEmulatorTests.Tolerance * values.Max(Math.Abs));
            parameter.Load(values);
            perturbed = name;
        });
        var error = Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => AssertWithinOneStep(cpu, replayed, "perturbed"));
        Assert.Contains($"perturbed: {perturbed}:", error.Message);
    }

    private static (float[] Images, int[] Labels) SmallData(int step) =>
        (TensorAssert.Random(SmallBatch * 16 * 16, 50 + step), [(3 * step + 1) % 10, (7 * step + 4) % 10]);

    private static DistillationOptions? Loss(bool distill) => distill ? new DistillationOptions() : null;

    private static StepState State(WideResNet student, WideResNet? teacher, Sgd optimizer, StepRecord record) =>
        new(student.ExportStateDict(),
            student.NamedParameters().ToDictionary(p => p.Name, p => optimizer.ExportMomentum(p.Tensor)!, StringComparer.Ordinal),
            student.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.GradientToArray(), StringComparer.Ordinal),
            teacher?.ExportStateDict() ?? [], record);

    /// <summary>
    /// On the emulator: an eager step, a captured and replayed one, then the state (<c>Before</c>), then a second replay
    /// on another batch (<c>After</c>).
    /// </summary>
    private (StepState Before, StepState After) ReplayedStep(bool distill)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var backend = new GpuBackend(emulator.Device);
        var (student, teacher) = SmallModels(backend, distill);
        var loss = Loss(distill);
        using var optimizer = new Sgd(student.Parameters(), 0.1f, 0.9f, 5e-4f);
        using var log = new StepLog(backend, student, TrainingStep.AttentionGroups(loss), capacity: 3);
        var (images, labels) = SmallData(0);
        TrainingStep.Run(student, teacher, optimizer, loss, backend, SmallShape, images, labels, log);
        (images, labels) = SmallData(1);
        using var graph = StepGraph.Capture(student, teacher, optimizer, loss, backend, SmallShape, labels, log);
        using (emulator.Device.HostWaits.Forbid("replayed step 2"))
        {
            graph.Run(images, labels);
        }

        var before = State(student, teacher, optimizer, log.ReadNew()[^1]);
        (images, labels) = SmallData(2);
        using (emulator.Device.HostWaits.Forbid("replayed step 3"))
        {
            graph.Run(images, labels);
        }

        return (before, State(student, teacher, optimizer, log.ReadNew().Single()));
    }

    /// <summary>
    /// On the C# CPU backend: models and optimizer loaded with <paramref name="before"/> (every state-dict entry, every
    /// parameter's momentum), <paramref name="perturb"/> applied to the student, then one eager step on the batch of the
    /// GPU's second replay.
    /// </summary>
    private static StepState CpuStep(bool distill, StepState before, Action<WideResNet>? perturb = null)
    {
        var backend = new CpuBackend();
        var (student, teacher) = SmallModels(backend, distill);
        student.LoadStateDict(before.Student);
        teacher?.LoadStateDict(before.Teacher);
        var loss = Loss(distill);
        using var optimizer = new Sgd(student.Parameters(), 0.1f, 0.9f, 5e-4f);
        foreach (var (name, parameter) in student.NamedParameters())
        {
            optimizer.ImportMomentum(parameter, before.Momentum[name]);
        }

        perturb?.Invoke(student);
        using var log = new StepLog(backend, student, TrainingStep.AttentionGroups(loss), capacity: 1);
        var (images, labels) = SmallData(2);
        TrainingStep.Run(student, teacher, optimizer, loss, backend, SmallShape, images, labels, log);
        return State(student, teacher, optimizer, log.ReadNew().Single());
    }

    /// <summary>StudentOnEmulatorTests' models: the G(2) student (train mode) and, to distil, the S teacher (eval mode).</summary>
    private static (WideResNet Student, WideResNet? Teacher) SmallModels(IBackend backend, bool distill)
    {
        var student = new WideResNet(StudentOnEmulatorTests.Config("G(2)"), backend, seed: 2);
        student.Train();
        var teacher = distill ? new WideResNet(StudentOnEmulatorTests.Config("S"), backend, seed: 1) : null;
        teacher?.Eval();
        return (student, teacher);
    }

    /// <summary>
    /// Every tensor of <paramref name="actual"/> within <see cref="StudentOnEmulatorTests.Tolerance"/> of
    /// <paramref name="expected"/>'s, relative to the tensor's scale, and each logged loss term relative to itself — as
    /// StudentOnEmulatorTests compares one step.
    /// </summary>
    private static void AssertWithinOneStep(StepState expected, StepState actual, string what)
    {
        const double tolerance = StudentOnEmulatorTests.Tolerance;
        foreach (var (kind, e, a) in new[] { ("", expected.Student, actual.Student), ("momentum ", expected.Momentum, actual.Momentum),
                     ("grad ", expected.Gradients, actual.Gradients), ("teacher ", expected.Teacher, actual.Teacher) })
        {
            Assert.Equal(e.Keys.Order(StringComparer.Ordinal), a.Keys.Order(StringComparer.Ordinal));
            foreach (var (name, values) in e)
            {
                TensorAssert.Close(values, a[name], tolerance, $"{what}: {kind}{name}");
            }
        }

        Assert.Equal((expected.Record.Images, expected.Record.Diverged), (actual.Record.Images, actual.Record.Diverged));
        foreach (var (term, e, a) in new[] { ("loss", expected.Record.Loss, actual.Record.Loss), ("ce", expected.Record.CrossEntropy, actual.Record.CrossEntropy),
                     ("kd", expected.Record.KnowledgeDistillation, actual.Record.KnowledgeDistillation), ("at", expected.Record.AttentionTransfer, actual.Record.AttentionTransfer) })
        {
            TensorAssert.Close([(float)e], [(float)a], tolerance, $"{what}: {term}");
        }
    }

    private (List<float[]> Weights, List<StepRecord> Log) Run(bool distill, bool graph)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var backend = new GpuBackend(emulator.Device);
        var student = Student(backend);
        WideResNet? teacher = null;
        if (distill)
        {
            teacher = new WideResNet(new ModelConfig("wrn-10-1", "S", "basic", 1, 10, 12).ToWrnConfig(), backend, seed: 4);
            teacher.Eval();
        }

        var loss = distill ? new DistillationOptions(0.9f, 4f, 1e3f) : null;
        using var optimizer = new Sgd(student.Parameters(), 0.1f, 0.9f, 5e-4f);
        using var log = new StepLog(backend, student, TrainingStep.AttentionGroups(loss), capacity: 4);
        int[] shape = [Batch, 1, 12, 12];
        StepGraph? captured = null;
        try
        {
            for (var step = 0; step < 4; step++)
            {
                var (images, labels) = Data(step);
                if (!graph || step == 0)
                {
                    TrainingStep.Run(student, teacher, optimizer, loss, backend, shape, images, labels, log);
                    continue;
                }

                captured ??= StepGraph.Capture(student, teacher, optimizer, loss, backend, shape, labels, log);
                using (emulator.Device.HostWaits.Forbid($"replayed step {step + 1}"))
                {
                    captured.Run(images, labels);
                }
            }
        }
        finally
        {
            captured?.Dispose();
        }

        var weights = student.ExportStateDict().OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => e.Value)
            .Concat(student.Parameters().Select(p => optimizer.ExportMomentum(p)!)).ToList();
        return (weights, [.. log.ReadNew()]);
    }

    private static WideResNet Student(IBackend backend)
    {
        var student = new WideResNet(new ModelConfig("wrn-10-1", "G2", "basic", 1, 10, 12).ToWrnConfig(), backend, seed: 3);
        student.Train();
        return student;
    }

    private static (float[] Images, int[] Labels) Data(int step)
    {
        var random = new Random(20 + step);
        var images = new float[Batch * 144];
        for (var i = 0; i < images.Length; i++)
        {
            images[i] = (float)(random.NextDouble() * 2 - 1);
        }

        return (images, [.. Enumerable.Range(0, Batch).Select(i => (3 * i + step) % 10)]);
    }

    /// <summary>A model's state after a step: the student's state dict, momentum and gradient by parameter name, the teacher's state
    /// dict (empty without one) and the step's row.</summary>
    private sealed record StepState(Dictionary<string, float[]> Student, Dictionary<string, float[]> Momentum, Dictionary<string, float[]> Gradients,
        Dictionary<string, float[]> Teacher, StepRecord Record);
}
