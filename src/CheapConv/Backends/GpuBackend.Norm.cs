using CheapConv.Interop;

namespace CheapConv.Backends;

// The Norm family on a device: cc_batchnorm_*, the element-wise calls, pooling and padding. Sizes are checked with
// the reference's checks (CpuBackend.Norm.cs), so both backends refuse the same calls with the same words.
public sealed unsafe partial class GpuBackend
{
    void IBackend.BatchNormTrainForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float momentum, float eps, Storage y, Storage saveMean, Storage saveInvStd) =>
        BatchNormTrain(n, c, h, w, x, gamma, beta, runningMean, runningVar, momentum, eps, y, saveMean, saveInvStd, relu: false);

    void IBackend.BatchNormReluTrainForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float momentum, float eps, Storage y, Storage saveMean, Storage saveInvStd) =>
        BatchNormTrain(n, c, h, w, x, gamma, beta, runningMean, runningVar, momentum, eps, y, saveMean, saveInvStd, relu: true);

    void IBackend.BatchNormEvalForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float eps, Storage y) =>
        BatchNormEval(n, c, h, w, x, gamma, beta, runningMean, runningVar, eps, y, relu: false);

    void IBackend.BatchNormReluEvalForward(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float eps, Storage y) =>
        BatchNormEval(n, c, h, w, x, gamma, beta, runningMean, runningVar, eps, y, relu: true);

    void IBackend.BatchNormBackward(int n, int c, int h, int w, Storage x, Storage dy, Storage gamma, Storage saveMean,
        Storage saveInvStd, Storage dx, Storage dgamma, Storage dbeta, bool accumulateDx) =>
        BatchNormBackward(n, c, h, w, x, dy, gamma, beta: null, saveMean, saveInvStd, dx, dgamma, dbeta, accumulateDx);

    void IBackend.BatchNormReluBackward(int n, int c, int h, int w, Storage x, Storage dy, Storage gamma, Storage beta,
        Storage saveMean, Storage saveInvStd, Storage dx, Storage dgamma, Storage dbeta, bool accumulateDx) =>
        BatchNormBackward(n, c, h, w, x, dy, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta, accumulateDx);

    void IBackend.ReluForward(long length, Storage x, Storage y)
    {
        var problem = new ElementwiseProblem(CpuBackend.CheckNormElementCount(length, ("x", x.Length), ("y", y.Length)));
        if (problem.Length > 0)
        {
            Device.Native.ReluForward(Device.Handle, problem, Buffer(x).Pointer, Buffer(y).Pointer, Device.Stream);
            Device.Queued("cc_relu_forward", problem);
        }
    }

    void IBackend.ReluBackward(long length, Storage y, Storage dy, Storage dx)
    {
        var problem = new ElementwiseProblem(CpuBackend.CheckNormElementCount(length, ("y", y.Length), ("dy", dy.Length), ("dx", dx.Length)));
        if (problem.Length > 0)
        {
            Device.Native.ReluBackward(Device.Handle, problem, Buffer(y).Pointer, Buffer(dy).Pointer, Buffer(dx).Pointer, Device.Stream);
            Device.Queued("cc_relu_backward", problem);
        }
    }

    void IBackend.Add(long length, Storage a, Storage b, Storage y)
    {
        var problem = new ElementwiseProblem(CpuBackend.CheckNormElementCount(length, ("a", a.Length), ("b", b.Length), ("y", y.Length)));
        if (problem.Length > 0)
        {
            Device.Native.Add(Device.Handle, problem, Buffer(a).Pointer, Buffer(b).Pointer, Buffer(y).Pointer, Device.Stream);
            Device.Queued("cc_add", problem);
        }
    }

    void IBackend.Fill(Storage x, float value)
    {
        var problem = new ElementwiseProblem(CpuBackend.CheckNormElementCount(x.Length));
        if (problem.Length > 0)
        {
            Device.Native.Fill(Device.Handle, problem, value, Buffer(x).Pointer, Device.Stream);
            Device.Queued("cc_fill", problem);
        }
    }

    void IBackend.Scale(Storage x, float alpha)
    {
        var problem = new ElementwiseProblem(CpuBackend.CheckNormElementCount(x.Length));
        if (problem.Length > 0)
        {
            Device.Native.Scale(Device.Handle, problem, alpha, Buffer(x).Pointer, Device.Stream);
            Device.Queued("cc_scale", problem);
        }
    }

    void IBackend.Axpy(float alpha, Storage x, Storage y)
    {
        CpuBackend.CheckNormLengths(("y", y.Length, x.Length));
        var problem = new ElementwiseProblem(CpuBackend.CheckNormElementCount(x.Length));
        if (problem.Length > 0)
        {
            Device.Native.Axpy(Device.Handle, problem, alpha, Buffer(x).Pointer, Buffer(y).Pointer, Device.Stream);
            Device.Queued("cc_axpy", problem);
        }
    }

    void IBackend.Sum(Storage x, Storage result)
    {
        CpuBackend.CheckNormLengths(("result", result.Length, 1));
        var problem = new ElementwiseProblem(CpuBackend.CheckNormElementCount(x.Length));
        var (workspace, bytes) = Workspace(Device.Native.SumWorkspaceSize(problem));
        Device.Native.Sum(Device.Handle, problem, Buffer(x).Pointer, Buffer(result).Pointer, workspace, bytes, Device.Stream);
        Device.Queued("cc_sum", problem);
    }

    void IBackend.GlobalAvgPoolForward(int n, int c, int h, int w, Storage x, Storage y)
    {
        var elements = CpuBackend.CheckNormShape(n, c, h, w);
        CpuBackend.CheckNormLengths(("x", x.Length, elements), ("y", y.Length, (long)n * c));
        var problem = new PoolProblem(n, c, h, w);
        Device.Native.GlobalAvgPoolForward(Device.Handle, problem, Buffer(x).Pointer, Buffer(y).Pointer, Device.Stream);
        Device.Queued("cc_global_avg_pool_forward", problem);
    }

    void IBackend.GlobalAvgPoolBackward(int n, int c, int h, int w, Storage dy, Storage dx)
    {
        var elements = CpuBackend.CheckNormShape(n, c, h, w);
        CpuBackend.CheckNormLengths(("dy", dy.Length, (long)n * c), ("dx", dx.Length, elements));
        var problem = new PoolProblem(n, c, h, w);
        Device.Native.GlobalAvgPoolBackward(Device.Handle, problem, Buffer(dy).Pointer, Buffer(dx).Pointer, Device.Stream);
        Device.Queued("cc_global_avg_pool_backward", problem);
    }

    void IBackend.ZeroPadForward(int n, int c, int h, int w, int top, int bottom, int left, int right, Storage x, Storage y)
    {
        var (input, output) = CpuBackend.CheckPadding(n, c, h, w, top, bottom, left, right);
        CpuBackend.CheckNormLengths(("x", x.Length, input), ("y", y.Length, output));
        var problem = new PoolProblem(n, c, h, w, top, bottom, left, right);
        Device.Native.ZeroPadForward(Device.Handle, problem, Buffer(x).Pointer, Buffer(y).Pointer, Device.Stream);
        Device.Queued("cc_zero_pad_forward", problem);
    }

    void IBackend.ZeroPadBackward(int n, int c, int h, int w, int top, int bottom, int left, int right, Storage dy, Storage dx)
    {
        var (input, output) = CpuBackend.CheckPadding(n, c, h, w, top, bottom, left, right);
        CpuBackend.CheckNormLengths(("dy", dy.Length, output), ("dx", dx.Length, input));
        var problem = new PoolProblem(n, c, h, w, top, bottom, left, right);
        Device.Native.ZeroPadBackward(Device.Handle, problem, Buffer(dy).Pointer, Buffer(dx).Pointer, Device.Stream);
        Device.Queued("cc_zero_pad_backward", problem);
    }

    private void BatchNormTrain(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float momentum, float eps, Storage y, Storage saveMean, Storage saveInvStd, bool relu)
    {
        CpuBackend.CheckBatchNormTraining(n, c, h, w, x.Length, y.Length, gamma.Length, beta.Length, runningMean.Length,
            runningVar.Length, saveMean.Length, saveInvStd.Length);
        var problem = new BatchNormProblem(n, c, h, w, eps, momentum, relu ? 1 : 0);
        Device.Native.BatchNormTrainForward(Device.Handle, problem, Buffer(x).Pointer, Buffer(gamma).Pointer, Buffer(beta).Pointer,
            Buffer(runningMean).Pointer, Buffer(runningVar).Pointer, Buffer(y).Pointer, Buffer(saveMean).Pointer, Buffer(saveInvStd).Pointer,
            Device.Stream);
        Device.Queued("cc_batchnorm_train_forward", problem);
    }

    private void BatchNormEval(int n, int c, int h, int w, Storage x, Storage gamma, Storage beta, Storage runningMean,
        Storage runningVar, float eps, Storage y, bool relu)
    {
        var elements = CpuBackend.CheckNormShape(n, c, h, w);
        CpuBackend.CheckNormLengths(("x", x.Length, elements), ("y", y.Length, elements), ("gamma", gamma.Length, c),
            ("beta", beta.Length, c), ("runningMean", runningMean.Length, c), ("runningVar", runningVar.Length, c));
        // The momentum only updates running statistics, which evaluation never does.
        var problem = new BatchNormProblem(n, c, h, w, eps, Momentum: 0, relu ? 1 : 0);
        Device.Native.BatchNormEvalForward(Device.Handle, problem, Buffer(x).Pointer, Buffer(gamma).Pointer, Buffer(beta).Pointer,
            Buffer(runningMean).Pointer, Buffer(runningVar).Pointer, Buffer(y).Pointer, Device.Stream);
        Device.Queued("cc_batchnorm_eval_forward", problem);
    }

    // beta == null: plain batch norm, whose backward never reads β (cc_batchnorm_backward reads it only with ReLU).
    // accumulateDx: the problem's accumulate flag, dx += the gradient in the same kernel (no separate axpy).
    private void BatchNormBackward(int n, int c, int h, int w, Storage x, Storage dy, Storage gamma, Storage? beta,
        Storage saveMean, Storage saveInvStd, Storage dx, Storage dgamma, Storage dbeta, bool accumulateDx)
    {
        var elements = CpuBackend.CheckNormShape(n, c, h, w);
        CpuBackend.CheckNormLengths(("x", x.Length, elements), ("dy", dy.Length, elements), ("dx", dx.Length, elements),
            ("gamma", gamma.Length, c), ("beta", beta?.Length ?? c, c), ("saveMean", saveMean.Length, c),
            ("saveInvStd", saveInvStd.Length, c), ("dgamma", dgamma.Length, c), ("dbeta", dbeta.Length, c));
        // eps and momentum play no part: the saved statistics already hold eps.
        var problem = new BatchNormProblem(n, c, h, w, Eps: 0, Momentum: 0, beta is null ? 0 : 1, accumulateDx ? 1 : 0);
        Device.Native.BatchNormBackward(Device.Handle, problem, Buffer(x).Pointer, Buffer(dy).Pointer, Buffer(gamma).Pointer,
            beta is null ? 0 : Buffer(beta).Pointer, Buffer(saveMean).Pointer, Buffer(saveInvStd).Pointer, Buffer(dx).Pointer,
            Buffer(dgamma).Pointer, Buffer(dbeta).Pointer, Device.Stream);
        Device.Queued("cc_batchnorm_backward", problem);
    }
}
