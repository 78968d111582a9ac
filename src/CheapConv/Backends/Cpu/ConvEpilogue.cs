using CheapConv.Problems;

namespace CheapConv.Backends.Cpu;

/// <summary>
/// What follows a convolution in a pre-activation residual network (<see cref="IBackend.Conv2dForwardFused"/>): y += residual,
/// then output = relu(eval-mode batch norm(y)) — applied by <see cref="CpuConv.Forward"/> to each image right after its
/// output is written, while it is still in cache, instead of two more passes over the whole batch's output in memory.
/// The element-wise arithmetic is that of <see cref="CpuVector.Add"/> and <see cref="CpuNorm.EvalForward"/>, so the bits are
/// those of the three ops made in turn.
/// </summary>
internal sealed class ConvEpilogue(float[]? residual, float[]? gamma, float[]? beta, float[]? runningMean, float[]? runningVar, float eps,
    float[]? output)
{
    /// <summary>The epilogue of image <paramref name="n"/> of <paramref name="y"/> (the convolution's output).</summary>
    public void Apply(in ConvProblem pr, float[] y, int n)
    {
        var pq = pr.P * pr.Q;
        var start = n * pr.K * pq;
        if (residual is not null)
        {
            CpuVector.AddSlice(y, residual, y, start, pr.K * pq);
        }

        if (output is null)
        {
            return;
        }

        for (var k = 0; k < pr.K; k++)
        {
            var offset = start + k * pq;
            CpuNorm.NormalizeRow(y.AsSpan(offset, pq), output.AsSpan(offset, pq), runningMean![k], CpuNorm.EvalInvStd(runningVar![k], eps),
                gamma![k], beta![k], relu: true);
        }
    }
}
