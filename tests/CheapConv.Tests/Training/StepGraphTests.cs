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
/// steps run eagerly — weights, momentum and every logged value — and a replay makes no host wait.
/// </summary>
public class StepGraphTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    private const int Batch = 8;

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
}
