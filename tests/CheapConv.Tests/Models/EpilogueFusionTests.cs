using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Interop;
using CheapConv.Models;
using CheapConv.Nn;
using CheapConv.Profiling;
using CheapConv.Tests.Autograd;
using CheapConv.Tests.Emulator;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Models;

/// <summary>
/// Models with the work after a convolution done in its store (<see cref="EpilogueFusion"/>): a block's residual add always,
/// and in eval-mode inference every batch norm + ReLU (the teacher during distillation, evaluation). On the emulated GPU
/// (tf32, so the tensor-core kernels run the fused stores) and on the CPU backend, the results are bit for bit those of the
/// unfused ops: the fused stores compute the separate kernels' operations, and the gradients are the same sums.
/// </summary>
public class EpilogueFusionTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TeacherEvalForward_Fused_IsBitForBitTheUnfusedOpsWithoutBatchNormOrAdd(bool gpu)
    {
        var (fusedOutputs, fusedOps) = Teacher(gpu, fused: true);
        var (unfusedOutputs, unfusedOps) = Teacher(gpu, fused: false);
        Assert.Equal(unfusedOutputs.Count, fusedOutputs.Count);
        for (var i = 0; i < unfusedOutputs.Count; i++)
        {
            TensorAssert.Identical(unfusedOutputs[i], fusedOutputs[i], i == 0 ? "logits" : $"group {i}");
        }

        // Every batch norm (the stem's, both of each block, the final one) and every residual add went into a convolution.
        Assert.Equal(0, fusedOps.GetValueOrDefault(nameof(IBackend.BatchNormReluEvalForward)));
        Assert.Equal(0, fusedOps.GetValueOrDefault(nameof(IBackend.Add)));
        Assert.Equal(2 * 3 + 1, unfusedOps[nameof(IBackend.BatchNormReluEvalForward)]); // WRN-10-1: 3 blocks
        Assert.Equal(3, unfusedOps[nameof(IBackend.Add)]);
        Assert.Equal(2 * 3 + 1, fusedOps[nameof(IBackend.Conv2dForwardFused)]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void DistillationSteps_Fused_AreBitForBitTheUnfusedOps(bool gpu)
    {
        var fused = DistillationRun.Run(Device(gpu), () => null);
        var unfused = DistillationRun.Run(Device(gpu), EpilogueFusion.Disabled);
        int fusedAdds = Adds(fused.Backend), unfusedAdds = Adds(unfused.Backend);
        Assert.True(fusedAdds == 0 && unfusedAdds > 0, $"residual adds: fused {fusedAdds}, unfused {unfusedAdds}");
        DistillationRun.AssertIdentical((unfused.Weights, unfused.Log), (fused.Weights, fused.Log));
    }

    [Fact]
    public void NormalizedConvolution_RefusesToRunWhileGradientsAreRecorded()
    {
        var backend = new CpuBackend(1);
        var conv = new Conv2d(backend, 4, 4, 1, new Random(1));
        var bn = new BatchNorm2d(backend, 4);
        bn.Eval();
        var x = Tensor.FromHost(backend, [1, 4, 2, 2], TensorAssert.Random(16, 2));
        var error = Assert.Throws<InvalidOperationException>(() => ((IFusableUnit)conv).ForwardNormalized(x, null, bn, keepOutput: false));
        Assert.Contains("GradientMode.NoGrad", error.Message, StringComparison.Ordinal);
    }

    private IBackend Device(bool gpu) =>
        gpu ? new GpuBackend(emulator.Device) { ConvPrecision = KernelPrecision.Tf32 } : new CpuBackend(2);

    // The logits and the group outputs of the eval-mode teacher, and how many of each op it made.
    private (List<float[]> Outputs, Dictionary<string, int> Ops) Teacher(bool gpu, bool fused)
    {
        var backend = new RecordingBackend(Device(gpu), () => 0);
        var teacher = DistillationRun.Teacher(backend);
        // Running statistics away from their initial 0 and 1, so a wrong channel or parameter changes the outputs.
        var random = new Random(9);
        foreach (var (name, buffer) in teacher.NamedBuffers())
        {
            var values = name.EndsWith("running_var", StringComparison.Ordinal)
                ? Enumerable.Range(0, (int)buffer.Length).Select(_ => 0.5f + random.NextSingle()).ToArray()
                : Enumerable.Range(0, (int)buffer.Length).Select(_ => 0.2f * (random.NextSingle() - 0.5f)).ToArray();
            backend.CopyFromHost(values, buffer.Storage);
        }

        backend.Clear();
        using var scope = TensorScope.Begin();
        using var noGrad = GradientMode.NoGrad();
        using (fused ? null : EpilogueFusion.Disabled())
        {
            var output = teacher.ForwardWithGroups(Tensor.FromHost(backend, [DistillationRun.Batch, 1, 12, 12], DistillationRun.Data(0).Images));
            var ops = backend.Ops.GroupBy(op => op.Name).ToDictionary(g => g.Key, g => g.Count());
            return ([output.Logits.ToArray(), .. output.Groups.Select(g => g.ToArray())], ops);
        }
    }

    private static int Adds(RecordingBackend backend) => backend.Ops.Count(op => op.Name == nameof(IBackend.Add));
}
