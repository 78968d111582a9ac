using CheapConv.Interop;
using CheapConv.Problems;

namespace CheapConv.Backends;

// The convolution that applies its input's batch norm as it reads it (IBackend.InputBatchNorm.cs): the launcher's 1×1
// tensor-core kernels do (cc_conv_input_bn_supported says where), the other problems keep the separate batch norm.
public sealed unsafe partial class GpuBackend
{
    bool IBackend.SupportsInputBatchNorm(ConvProblem problem) => Device.Native.ConvInputBnSupported(problem, ConvOptions);

    void IBackend.BatchNormTrainStatistics(int n, int c, int h, int w, Storage x, BatchNormStatistics statistics)
    {
        CheckStatistics(n, c, h, w, x, statistics);
        var problem = new BatchNormProblem(n, c, h, w, statistics.Eps, statistics.Momentum, Relu: 0);
        Device.Native.BatchNormTrainStatistics(Device.Handle, problem, Buffer(x).Pointer, Buffer(statistics.RunningMean).Pointer,
            Buffer(statistics.RunningVar).Pointer, Buffer(statistics.SaveMean).Pointer, Buffer(statistics.SaveInvStd).Pointer, Device.Stream);
        Device.Queued(AbiFunctions.Name(AbiFunction.BatchnormTrainStatistics), problem);
    }

    void IBackend.Conv2dForwardBatchNormStatistics(ConvProblem problem, Storage x, Storage w, Storage y, BatchNormStatistics statistics)
    {
        // The slots travel in the workspace's scratch from the convolution to the statistics launch, as in
        // Conv2dForwardBatchNormTrain: that forward pass takes no workspace of its own.
        var slots = Device.Native.ConvBatchNormStatsSlots(problem, ConvOptions);
        if (slots is not { } count || Device.Native.ConvWorkspaceSize(problem, ConvPass.ForwardBatchNormStats, ConvOptions) != 0)
        {
            Conv2dForward(problem, Buffer(x), Buffer(w), Buffer(y));
            ((IBackend)this).BatchNormTrainStatistics(problem.N, problem.K, problem.P, problem.Q, y, statistics);
            return;
        }

        Check(problem, ("x", Buffer(x), problem.InputElements), ("w", Buffer(w), problem.WeightElements), ("y", Buffer(y), problem.OutputElements));
        CheckStatistics(problem.N, problem.K, problem.P, problem.Q, y, statistics);
        var (stats, statsBytes) = StatsScratch(problem.K, count);
        Device.Native.ConvForwardBatchNormStats(Device.Handle, problem, ConvOptions, 0, Buffer(x).Pointer, Buffer(w).Pointer, Buffer(y).Pointer,
            stats, statsBytes, 0, 0, Device.Stream);
        Device.Queued(AbiFunctions.Name(AbiFunction.ConvForwardBnStats), problem);
        var norm = new BatchNormProblem(problem.N, problem.K, problem.P, problem.Q, statistics.Eps, statistics.Momentum, Relu: 0);
        Device.Native.BatchNormTrainStatisticsFromStats(Device.Handle, norm, stats, count, Buffer(statistics.RunningMean).Pointer,
            Buffer(statistics.RunningVar).Pointer, Buffer(statistics.SaveMean).Pointer, Buffer(statistics.SaveInvStd).Pointer, Device.Stream);
        Device.Queued(AbiFunctions.Name(AbiFunction.BatchnormTrainStatisticsFromStats), norm);
    }

    void IBackend.Conv2dForwardInputBatchNorm(ConvProblem problem, InputBatchNorm bn, Storage z, Storage w, Storage y, Storage? residual,
        TrainBatchNorm? next)
    {
        var output = problem.OutputElements;
        Check(problem, ("z", Buffer(z), problem.InputElements), ("w", Buffer(w), problem.WeightElements), ("y", Buffer(y), output));
        OptionalCheck(problem, "residual", residual, output);
        var input = InputBn(problem, bn);
        // With the next batch norm: y's statistics slots in the workspace's scratch (the 1×1 forward takes no workspace), then
        // that batch norm from them, as Conv2dForwardBatchNormTrain does.
        var slots = next is null ? null : Device.Native.ConvBatchNormStatsSlots(problem, ConvOptions);
        var (stats, statsBytes) = slots is { } count ? StatsScratch(problem.K, count) : (0, 0);
        var (workspace, bytes) = SplitWorkspace(Device.Native.ConvWorkspaceSize(problem, ConvPass.Forward, ConvOptions));
        if (stats != 0 && bytes != 0)
        {
            throw new InvalidOperationException($"the forward pass of {problem} asks for a workspace, which its statistics slots would share");
        }

        Device.Native.ConvForwardInputBn(Device.Handle, problem, ConvOptions, input, Address(residual), Buffer(z).Pointer, Buffer(w).Pointer,
            Buffer(y).Pointer, stats, statsBytes, workspace, bytes, Device.Stream);
        Device.Queued(AbiFunctions.Name(AbiFunction.ConvForwardInputBn), problem);
        if (next is not { } after)
        {
            return;
        }

        if (slots is not { } slotCount)
        {
            after.RunOn(this, problem.N, problem.K, problem.P, problem.Q, y);
            return;
        }

        CpuBackend.CheckBatchNormTraining(problem.N, problem.K, problem.P, problem.Q, y.Length, after.Output.Length, after.Gamma.Length,
            after.Beta.Length, after.RunningMean.Length, after.RunningVar.Length, after.SaveMean.Length, after.SaveInvStd.Length);
        var norm = new BatchNormProblem(problem.N, problem.K, problem.P, problem.Q, after.Eps, after.Momentum, after.Relu ? 1 : 0);
        Device.Native.BatchNormTrainForwardFromStats(Device.Handle, norm, stats, slotCount, Buffer(y).Pointer, Buffer(after.Gamma).Pointer,
            Buffer(after.Beta).Pointer, Buffer(after.RunningMean).Pointer, Buffer(after.RunningVar).Pointer, Buffer(after.Output).Pointer,
            Buffer(after.SaveMean).Pointer, Buffer(after.SaveInvStd).Pointer, Device.Stream);
        Device.Queued(AbiFunctions.Name(AbiFunction.BatchnormTrainForwardFromStats), norm);
    }

    void IBackend.Conv2dBackwardInputBatchNorm(ConvProblem problem, InputBatchNorm bn, Storage z, Storage dy, Storage w, Storage? da, Storage? dz,
        bool accumulateDz, Storage? dgamma, Storage? dbeta, Storage? dw)
    {
        var input = problem.InputElements;
        Check(problem, ("z", Buffer(z), input), ("dy", Buffer(dy), problem.OutputElements), ("w", Buffer(w), problem.WeightElements));
        OptionalCheck(problem, "dw", dw, problem.WeightElements);
        var inputBn = InputBn(problem, bn);
        var batchNorm = (da, dz, dgamma, dbeta) switch
        {
            (null, null, null, null) => false,
            ({ }, { }, { }, { }) => true,
            _ => throw new ArgumentException("Conv2dBackwardInputBatchNorm: da, dz, dgamma and dbeta come together or not at all"),
        };
        if (!batchNorm && dw is null)
        {
            throw new ArgumentException("Conv2dBackwardInputBatchNorm: neither the batch norm's gradients nor dw: nothing to write");
        }

        var c = problem.C;
        var norm = new BatchNormProblem(problem.N, c, problem.H, problem.W, Eps: 0, Momentum: 0, bn.Relu ? 1 : 0, accumulateDz ? 1 : 0);
        if (batchNorm && BatchNormSumsInDataGradient && Device.Native.ConvBnSumSlots(problem, ConvOptions) is { } slots
            && Device.Native.ConvWorkspaceSize(problem, ConvPass.BackwardData, ConvOptions) == 0)
        {
            Check(problem, ("da", Buffer(da!), input), ("dz", Buffer(dz!), input));
            CpuBackend.CheckNormLengths(("dgamma", dgamma!.Length, c), ("dbeta", dbeta!.Length, c));
            BackwardWithSums(problem, bn, inputBn, norm, slots, z, dy, w, da!, dz!, dgamma, dbeta!, dw);
            return;
        }

        var (workspace, bytes) = SplitWorkspace(Device.Native.ConvWorkspaceSize(problem, ConvPass.Backward, ConvOptions));
        Device.Native.ConvBackwardInputBn(Device.Handle, problem, ConvOptions, inputBn, Buffer(z).Pointer, Buffer(dy).Pointer, Buffer(w).Pointer,
            Address(da), Address(dw), workspace, bytes, Device.Stream);
        Device.Queued(AbiFunctions.Name(AbiFunction.ConvBackwardInputBn), problem);
        if (!batchNorm)
        {
            return;
        }

        Check(problem, ("da", Buffer(da!), input), ("dz", Buffer(dz!), input));
        CpuBackend.CheckNormLengths(("dgamma", dgamma!.Length, c), ("dbeta", dbeta!.Length, c));
        Device.Native.BatchNormBackward(Device.Handle, norm, Buffer(z).Pointer, Buffer(da!).Pointer, Buffer(bn.Gamma).Pointer,
            bn.Relu ? Buffer(bn.Beta).Pointer : 0, Buffer(bn.Mean).Pointer, Buffer(bn.InvStd).Pointer, Buffer(dz!).Pointer, Buffer(dgamma).Pointer,
            Buffer(dbeta!).Pointer, Device.Stream);
        Device.Queued(AbiFunctions.Name(AbiFunction.BatchnormBackward), norm);
    }

    /// <summary>
    /// Whether <see cref="IBackend.Conv2dBackwardInputBatchNorm"/> reduces the batch norm's backward sums in the store of the
    /// convolution's data gradient (cc_conv_backward_data_bn_sums, then cc_batchnorm_backward_from_sums, which reads z and da
    /// once) instead of running the batch norm's own backward after both gradients. Off by default: the sums kernel computes
    /// the data gradient alone, so dw takes a launch of its own, and the profile model puts that at +310.7 µs on the
    /// WRN-40-2 → G(4) step (bench/results/profile-2026-11-30-prologue.md); a GPU measurement should decide.
    /// </summary>
    public bool BatchNormSumsInDataGradient { get; init; }

    // The batch norm's backward reduction in the data gradient's store (cc_conv_backward_data_bn_sums: da and per-block sums),
    // then its backward from the sums (cc_batchnorm_backward_from_sums: z and da read once); dw on its own before them, since
    // its split workspace and the sums' scratch are the same buffer.
    private void BackwardWithSums(ConvProblem problem, InputBatchNorm bn, ConvInputBn inputBn, BatchNormProblem norm, int slots, Storage z,
        Storage dy, Storage w, Storage da, Storage dz, Storage dgamma, Storage dbeta, Storage? dw)
    {
        if (dw is not null)
        {
            var (workspace, bytes) = SplitWorkspace(Device.Native.ConvWorkspaceSize(problem, ConvPass.Backward, ConvOptions));
            Device.Native.ConvBackwardInputBn(Device.Handle, problem, ConvOptions, inputBn, Buffer(z).Pointer, Buffer(dy).Pointer, 0, 0,
                Buffer(dw).Pointer, workspace, bytes, Device.Stream);
            Device.Queued(AbiFunctions.Name(AbiFunction.ConvBackwardInputBn), problem);
        }

        var sumsBytes = (nuint)((long)problem.C * slots * CheapConvNative.BatchNormSumsFloatsPerSlot * sizeof(float));
        var (sums, _) = Workspace(sumsBytes);
        Device.Native.ConvBackwardDataBnSums(Device.Handle, problem, ConvOptions, inputBn, Buffer(z).Pointer, Buffer(dy).Pointer, Buffer(w).Pointer,
            Buffer(da).Pointer, sums, sumsBytes, 0, 0, Device.Stream);
        Device.Queued(AbiFunctions.Name(AbiFunction.ConvBackwardDataBnSums), problem);
        Device.Native.BatchNormBackwardFromSums(Device.Handle, norm, sums, slots, Buffer(z).Pointer, Buffer(da).Pointer, Buffer(bn.Gamma).Pointer,
            bn.Relu ? Buffer(bn.Beta).Pointer : 0, Buffer(bn.Mean).Pointer, Buffer(bn.InvStd).Pointer, Buffer(dz).Pointer, Buffer(dgamma).Pointer,
            Buffer(dbeta).Pointer, Device.Stream);
        Device.Queued(AbiFunctions.Name(AbiFunction.BatchnormBackwardFromSums), norm);
    }

    // The device addresses of an input batch norm, its four arrays checked against the convolution's input channels.
    private ConvInputBn InputBn(ConvProblem problem, InputBatchNorm bn)
    {
        CpuBackend.CheckNormLengths(("the input batch norm's mean", bn.Mean.Length, problem.C), ("its invstd", bn.InvStd.Length, problem.C),
            ("its gamma", bn.Gamma.Length, problem.C), ("its beta", bn.Beta.Length, problem.C));
        return new ConvInputBn(Buffer(bn.Mean).Pointer, Buffer(bn.InvStd).Pointer, Buffer(bn.Gamma).Pointer, Buffer(bn.Beta).Pointer, bn.Relu ? 1 : 0);
    }

    // A forward convolution's batch-norm statistics slots for `channels` output channels, in the workspace's scratch.
    private (nint Pointer, nuint Bytes) StatsScratch(int channels, int slots)
    {
        var bytes = (nuint)((long)channels * slots * CheapConvNative.BatchNormStatsFloatsPerSlot * sizeof(float));
        return (Workspace(bytes).Pointer, bytes);
    }

    private static void CheckStatistics(int n, int c, int h, int w, Storage x, BatchNormStatistics statistics)
    {
        var elements = CpuBackend.CheckNormShape(n, c, h, w);
        CpuBackend.CheckNormLengths(("x", x.Length, elements), ("runningMean", statistics.RunningMean.Length, c),
            ("runningVar", statistics.RunningVar.Length, c), ("saveMean", statistics.SaveMean.Length, c), ("saveInvStd", statistics.SaveInvStd.Length, c));
    }
}
