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
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void DistillationSteps_FusedAccumulation_AreBitForBitTheSeparateAxpys(bool gpu)
    {
        var fused = DistillationRun.Run(Device(gpu), () => null);
        var separate = DistillationRun.Run(Device(gpu), GradientMode.SeparateAccumulation);
        int fusedAxpys = Axpys(fused.Backend), separateAxpys = Axpys(separate.Backend);
        Assert.True(fusedAxpys < separateAxpys, $"fused: {fusedAxpys} Axpy calls, separate: {separateAxpys}");
        DistillationRun.AssertIdentical((separate.Weights, separate.Log), (fused.Weights, fused.Log));
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

    private static int Axpys(RecordingBackend backend) => backend.Ops.Count(op => op.Name == nameof(IBackend.Axpy));

    // Every parameter gradient of one forward and backward pass of the student through a cross-entropy loss.
    private List<float[]> Gradients(bool gpu, bool fused)
    {
        var backend = Device(gpu);
        var student = DistillationRun.Student(backend);
        var (images, labels) = DistillationRun.Data(0);
        using var scope = TensorScope.Begin();
        using (fused ? null : GradientMode.SeparateAccumulation())
        {
            var x = Tensor.FromHost(backend, [DistillationRun.Batch, 1, 12, 12], images);
            var logits = student.Forward(x);
            Ops.CrossEntropy(logits, labels).Backward();
        }

        return [.. student.Parameters().Select(p => p.GradientToArray())];
    }
}
