using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;
using CheapConv.Profiling;
using CheapConv.Tests.Emulator;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Autograd;

/// <summary>
/// Where a tensor feeds several consumers, <see cref="Tensor.Backward()"/> lets the primitive producing its later gradient
/// add it in its own kernel (batch norm's backward accumulates into dx) instead of a separate Axpy. Distillation steps
/// on the emulated GPU and on the CPU backend give bit for bit the weights, momentum and logged values of the separate
/// path (<see cref="GradientMode.SeparateAccumulation"/>), with fewer Axpy calls.
/// </summary>
public class FusedAccumulationTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    private const int Batch = 8;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void DistillationSteps_FusedAccumulation_AreBitForBitTheSeparateAxpys(bool gpu)
    {
        var (fusedWeights, fusedLog, fusedAxpys) = Run(gpu, fused: true);
        var (separateWeights, separateLog, separateAxpys) = Run(gpu, fused: false);

        Assert.True(fusedAxpys < separateAxpys, $"fused: {fusedAxpys} Axpy calls, separate: {separateAxpys}");
        Assert.Equal(separateLog.Count, fusedLog.Count);
        for (var i = 0; i < separateLog.Count; i++)
        {
            Assert.Equal(separateLog[i], fusedLog[i]); // every loss term, count and check
        }

        Assert.Equal(separateWeights.Count, fusedWeights.Count);
        for (var i = 0; i < separateWeights.Count; i++)
        {
            TensorAssert.Identical(separateWeights[i], fusedWeights[i], $"tensor {i}");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void OneBackward_FusedAccumulation_GivesTheSeparateParameterGradients(bool gpu)
    {
        var fused = Gradients(gpu, fused: true);
        var separate = Gradients(gpu, fused: false);
        Assert.Equal(separate.Count, fused.Count);
        for (var i = 0; i < separate.Count; i++)
        {
            TensorAssert.Identical(separate[i], fused[i], $"gradient {i}");
        }
    }

    private IBackend Device(bool gpu) => gpu ? new GpuBackend(emulator.Device) : new CpuBackend(2);

    // The weights, momentum and log after three distillation steps, and the Axpy calls they made.
    private (List<float[]> Weights, List<StepRecord> Log, int Axpys) Run(bool gpu, bool fused)
    {
        var backend = new RecordingBackend(Device(gpu), () => 0);
        var student = Student(backend);
        var teacher = new WideResNet(new ModelConfig("wrn-10-1", "S", "basic", 1, 10, 12).ToWrnConfig(), backend, seed: 4);
        teacher.Eval();
        var loss = new DistillationOptions(0.9f, 4f, 1e3f);
        using var optimizer = new Sgd(student.Parameters(), 0.1f, 0.9f, 5e-4f);
        using var log = new StepLog(backend, student, TrainingStep.AttentionGroups(loss), capacity: 4);
        using (fused ? null : GradientMode.SeparateAccumulation())
        {
            for (var step = 0; step < 3; step++)
            {
                var (images, labels) = Data(step);
                TrainingStep.Run(student, teacher, optimizer, loss, backend, [Batch, 1, 12, 12], images, labels, log);
            }
        }

        var weights = student.ExportStateDict().OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => e.Value)
            .Concat(student.Parameters().Select(p => optimizer.ExportMomentum(p)!)).ToList();
        return (weights, [.. log.ReadNew()], backend.Ops.Count(op => op.Name == nameof(IBackend.Axpy)));
    }

    // Every parameter gradient of one forward and backward pass of the student through a cross-entropy loss.
    private List<float[]> Gradients(bool gpu, bool fused)
    {
        var backend = Device(gpu);
        var student = Student(backend);
        var (images, labels) = Data(0);
        using var scope = TensorScope.Begin();
        using (fused ? null : GradientMode.SeparateAccumulation())
        {
            var x = Tensor.FromHost(backend, [Batch, 1, 12, 12], images);
            var logits = student.Forward(x);
            Ops.CrossEntropy(logits, labels).Backward();
        }

        return [.. student.Parameters().Select(p => p.GradientToArray())];
    }

    private static WideResNet Student(IBackend backend)
    {
        var student = new WideResNet(new ModelConfig("wrn-10-1", "G2", "basic", 1, 10, 12).ToWrnConfig(), backend, seed: 3);
        student.Train();
        return student;
    }

    private static (float[] Images, int[] Labels) Data(int step)
    {
        var random = new Random(40 + step);
        var images = new float[Batch * 144];
        for (var i = 0; i < images.Length; i++)
        {
            images[i] = (float)(random.NextDouble() * 2 - 1);
        }

        return (images, [.. Enumerable.Range(0, Batch).Select(i => (7 * i + step) % 10)]);
    }
}
