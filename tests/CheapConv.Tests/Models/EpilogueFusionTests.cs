using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Interop;
using CheapConv.Models;
using CheapConv.Nn;
using CheapConv.Problems;
using CheapConv.Profiling;
using CheapConv.Tests.Autograd;
using CheapConv.Tests.Emulator;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Models;

/// <summary>
/// Models with the work after a convolution done in its store (<see cref="EpilogueFusion"/>): a block's residual add always,
/// in eval-mode inference every batch norm + ReLU (the teacher during distillation, evaluation), and in training the batch
/// norms' statistics. On the emulated GPU (tf32, so the tensor-core kernels run the fused stores) and on the CPU backend, the
/// eval-mode results are bit for bit those of the unfused ops: the fused stores compute the separate kernels' operations.
/// Training steps are bit for bit on the CPU; on the GPU the fused statistics are combined from per-block slots, so they
/// agree within rounding (the bound of the test).
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

    [Fact]
    public void DistillationSteps_FusedOnTheCpu_AreBitForBitTheUnfusedOps()
    {
        // The CPU backend computes a convolution and its training batch norm as the two ops (IBackend's default), so every
        // fusion, the batch-norm statistics included, gives the unfused bits.
        var fused = DistillationRun.Run(Device(gpu: false), () => null);
        var unfused = DistillationRun.Run(Device(gpu: false), EpilogueFusion.Disabled);
        int fusedAdds = Adds(fused.Backend), unfusedAdds = Adds(unfused.Backend);
        Assert.True(fusedAdds == 0 && unfusedAdds > 0, $"residual adds: fused {fusedAdds}, unfused {unfusedAdds}");
        Assert.True(Ops(fused.Backend, nameof(IBackend.Conv2dForwardBatchNormTrain)) > 0, "the batch norms went to the convolutions");
        DistillationRun.AssertIdentical((unfused.Weights, unfused.Log), (fused.Weights, fused.Log));
    }

    [Fact]
    public void DistillationStep_FusedOnTheEmulatedGpu_MovesTheResultsNoMoreThanRoundingTheInput()
    {
        // On the emulated GPU (tf32) the convolutions' stores also compute the training batch norms' statistics (per-block
        // slots combined by the batch norm): the same convolution outputs, and statistics within a few float32 roundings of
        // cc_batchnorm_train_forward's (bounded by the native tests, conv_bn_stats_tests.cpp), so the step differs from the
        // unfused one by rounding only. This small, ill-conditioned step (12×12 images, attention transfer at β = 1000)
        // amplifies any rounding difference through the backward passes, so the bound is the step's own sensitivity: the
        // weights and momenta after one step (the momenta are the first gradients) move from the unfused step's by at most
        // twice as much, in norm relative to theirs, as when every input pixel moves one float32 step. A wrong statistic
        // (a slot lost, a channel's slots mixed up) is orders of magnitude above that.
        var unfused = DistillationRun.Run(Device(gpu: true), EpilogueFusion.Disabled, steps: 1);
        var nudged = DistillationRun.Run(Device(gpu: true), EpilogueFusion.Disabled, steps: 1, nudgeImages: true);
        var fused = DistillationRun.Run(Device(gpu: true), () => null, steps: 1);
        Assert.Equal(0, Adds(fused.Backend));
        Assert.Equal(0, Ops(unfused.Backend, nameof(IBackend.Conv2dForwardBatchNormTrain)));
        // Every training batch norm of the student went to the convolution before it (the backend runs those whose convolution
        // cannot write the statistics unfused: BackwardLaunchCountTests counts the kernels). Inside each G(2) unit only its
        // statistics go there (Conv2dForwardBatchNormStatistics) and the pointwise convolution after it applies it as it reads
        // (PrologueFusion); that convolution carries the batch norm after it too (bn2, the next block's bn1, the final one).
        var statistics = Ops(fused.Backend, nameof(IBackend.Conv2dForwardBatchNormStatistics));
        Assert.Equal(statistics, Ops(fused.Backend, nameof(IBackend.Conv2dForwardInputBatchNorm)));
        Assert.Equal(Ops(unfused.Backend, nameof(IBackend.BatchNormReluTrainForward)),
            Ops(fused.Backend, nameof(IBackend.Conv2dForwardBatchNormTrain)) + 2 * statistics);
        Assert.Equal(0, Ops(fused.Backend, nameof(IBackend.BatchNormReluTrainForward)));

        double fusedMove = RelativeDistance(unfused.Weights, fused.Weights), roundingMove = RelativeDistance(unfused.Weights, nudged.Weights);
        Assert.True(roundingMove > 0, "one float32 step of the input moves the results");
        Assert.True(fusedMove <= 2 * roundingMove,
            $"the fused statistics move the weights and momenta by {fusedMove:0.00e+00} (relative norm), one float32 step of the input by {roundingMove:0.00e+00}");
        // The forward pass (the step's losses) differs only by the batch norms' rounding before the output: 1e-4 relative.
        StepRecord want = unfused.Log[0], got = fused.Log[0];
        Assert.True(Math.Abs(want.Loss - got.Loss) <= 1e-4 * Math.Abs(want.Loss), $"loss {got.Loss:R} fused, {want.Loss:R} unfused");
        Assert.True(Math.Abs(want.CrossEntropy - got.CrossEntropy) <= 1e-4 * Math.Abs(want.CrossEntropy),
            $"cross-entropy {got.CrossEntropy:R} fused, {want.CrossEntropy:R} unfused");
    }

    [Theory]
    [InlineData("G2")]
    [InlineData("B2")]
    public void DistillationStep_WithTheInputBatchNormInThePointwiseConvolution_MovesTheResultsNoMoreThanRoundingTheInput(string block)
    {
        // The units' batch norm between a 3×3 and the 1×1 after it (G(2): grouped 3×3 → pointwise; B(2): 3×3 → expanding 1×1),
        // applied by the 1×1 as it reads the 3×3's output (PrologueFusion; the 1×1 tensor-core kernels): the statistics then
        // come from the 3×3's store (or a statistics launch), the 1×1 multiplies the activation the batch norm would have
        // stored, and the backward recomputes it. Against
        // the same step with that batch norm on its own (every other fusion on in both), the weights and momenta move by at most
        // twice what one float32 step of every input pixel moves them, as in the test above.
        var separate = DistillationRun.Run(Device(gpu: true), PrologueFusion.Disabled, steps: 1, block: block);
        var nudged = DistillationRun.Run(Device(gpu: true), PrologueFusion.Disabled, steps: 1, nudgeImages: true, block: block);
        var fused = DistillationRun.Run(Device(gpu: true), () => null, steps: 1, block: block);
        // WRN-10-1: one block per group, its conv1 and conv2 each a unit: 6 units, each with a 1×1 on the tensor cores after a
        // batch norm (G(2): the pointwise after the grouped 3×3's; B(2): the expanding 1×1 after the 3×3's).
        var applied = Ops(fused.Backend, nameof(IBackend.Conv2dForwardInputBatchNorm));
        Assert.Equal(6, applied);
        Assert.Equal(applied, Ops(fused.Backend, nameof(IBackend.Conv2dForwardBatchNormStatistics)));
        Assert.Equal(applied, Ops(fused.Backend, nameof(IBackend.Conv2dBackwardInputBatchNorm)));
        Assert.Equal(0, Ops(separate.Backend, nameof(IBackend.Conv2dForwardInputBatchNorm)));
        // The 13 training batch norms: with the prologue, the stem's after its convolution, the units' 6 as statistics and
        // prologue, and the 6 after the pointwise convolutions in those convolutions' ops.
        Assert.Equal(Ops(separate.Backend, nameof(IBackend.Conv2dForwardBatchNormTrain)) + Ops(separate.Backend, nameof(IBackend.BatchNormReluTrainForward)),
            Ops(fused.Backend, nameof(IBackend.Conv2dForwardBatchNormTrain)) + 2 * applied);

        double fusedMove = RelativeDistance(separate.Weights, fused.Weights), roundingMove = RelativeDistance(separate.Weights, nudged.Weights);
        Assert.True(roundingMove > 0, "one float32 step of the input moves the results");
        Assert.True(fusedMove <= 2 * roundingMove,
            $"the batch norm in the pointwise convolution moves the weights and momenta by {fusedMove:0.00e+00} (relative norm), one float32 step of the input by {roundingMove:0.00e+00}");
        StepRecord want = separate.Log[0], got = fused.Log[0];
        Assert.True(Math.Abs(want.Loss - got.Loss) <= 1e-4 * Math.Abs(want.Loss), $"loss {got.Loss:R} fused, {want.Loss:R} separate");
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void InputBatchNormBackward_WithTheSumsInTheDataGradient_MatchesTheBatchNormsOwnBackward(bool relu, bool accumulate)
    {
        // GpuBackend.BatchNormSumsInDataGradient: the data gradient's store also sums the batch norm's backward terms per block,
        // and the batch norm's backward combines them (cc_conv_backward_data_bn_sums, cc_batchnorm_backward_from_sums). da and
        // dw are the same kernels' (bit for bit); dz, dγ and dβ add the same terms in another order, so they agree within a
        // few float32 roundings of their scale (the native tests bound each element: conv_bn_sums_tests.cpp). A lost slot or
        // mask moves them by a sizeable fraction of that scale.
        var problem = ConvProblem.Create(3, 20, 7, 5, 12, 1, 1);
        var random = new Random(17);
        float[] Values(long count, double low, double high) => [.. Enumerable.Range(0, (int)count).Select(_ => (float)(low + (high - low) * random.NextDouble()))];
        var inputs = new Dictionary<string, float[]>
        {
            ["z"] = Values(problem.InputElements, -2, 2), ["dy"] = Values(problem.OutputElements, -1, 1), ["w"] = Values(problem.WeightElements, -0.5, 0.5),
            ["mean"] = Values(problem.C, -0.3, 0.3), ["invstd"] = Values(problem.C, 0.5, 2), ["gamma"] = Values(problem.C, -1.5, 1.5),
            ["beta"] = Values(problem.C, -0.5, 0.5), ["dz"] = Values(problem.InputElements, -1, 1),
        };
        var separate = InputBatchNormBackward(new GpuBackend(emulator.Device) { ConvPrecision = KernelPrecision.Tf32 }, problem, inputs, relu, accumulate);
        var sums = InputBatchNormBackward(new GpuBackend(emulator.Device) { ConvPrecision = KernelPrecision.Tf32, BatchNormSumsInDataGradient = true },
            problem, inputs, relu, accumulate);
        TensorAssert.Identical(separate["da"], sums["da"], "da");
        TensorAssert.Identical(separate["dw"], sums["dw"], "dw");
        foreach (var name in new[] { "dz", "dgamma", "dbeta" })
        {
            var scale = separate[name].Max(Math.Abs);
            var worst = separate[name].Zip(sums[name], (a, b) => Math.Abs(a - b)).Max();
            Assert.True(worst <= 1e-5 * scale, $"{name}: the sums path differs by {worst:0.00e+00}, the values reach {scale:0.00e+00}");
        }
    }

    // The gradients Conv2dBackwardInputBatchNorm writes on `backend` for these inputs (dz starts from inputs["dz"]: accumulated
    // into when `accumulate`).
    private static Dictionary<string, float[]> InputBatchNormBackward(GpuBackend gpu, ConvProblem problem, Dictionary<string, float[]> inputs, bool relu,
        bool accumulate)
    {
        IBackend backend = gpu;
        var storages = inputs.ToDictionary(e => e.Key, e => backend.Upload(e.Value));
        using var da = backend.Allocate(problem.InputElements);
        using var dw = backend.Allocate(problem.WeightElements);
        using var dgamma = backend.Allocate(problem.C);
        using var dbeta = backend.Allocate(problem.C);
        var bn = new InputBatchNorm(storages["mean"], storages["invstd"], storages["gamma"], storages["beta"], relu);
        backend.Conv2dBackwardInputBatchNorm(problem, bn, storages["z"], storages["dy"], storages["w"], da, storages["dz"], accumulate, dgamma, dbeta, dw);
        var results = new Dictionary<string, float[]>();
        foreach (var (name, storage) in new[] { ("da", da), ("dw", dw), ("dz", storages["dz"]), ("dgamma", dgamma), ("dbeta", dbeta) })
        {
            var host = new float[storage.Length];
            backend.Download(storage, host);
            results[name] = host;
        }

        foreach (var storage in storages.Values)
        {
            storage.Dispose();
        }

        gpu.Dispose();
        return results;
    }

    // ‖b − a‖₂ / ‖a‖₂ over every tensor of the lists together.
    private static double RelativeDistance(List<float[]> a, List<float[]> b)
    {
        double difference = 0, norm = 0;
        for (var i = 0; i < a.Count; i++)
        {
            for (var j = 0; j < a[i].Length; j++)
            {
                difference += ((double)b[i][j] - a[i][j]) * ((double)b[i][j] - a[i][j]);
                norm += (double)a[i][j] * a[i][j];
            }
        }

        return Math.Sqrt(difference / norm);
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

    private static int Adds(RecordingBackend backend) => Ops(backend, nameof(IBackend.Add));

    private static int Ops(RecordingBackend backend, string name) => backend.Ops.Count(op => op.Name == name);
}
