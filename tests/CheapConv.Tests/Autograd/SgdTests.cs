using CheapConv.Autograd;
using CheapConv.Backends;
using Xunit;

namespace CheapConv.Tests.Autograd;

/// <summary>The optimizer: one backend SgdStep per parameter with a persistent momentum buffer.</summary>
public class SgdTests
{
    [Theory]
    [InlineData(0.9f, 5e-4f, false)]
    [InlineData(0.9f, 5e-4f, true)]
    [InlineData(0f, 0f, false)]
    public void Step_TwoSteps_AreTheBackendOpWithItsMomentumBuffer(float momentum, float weightDecay, bool nesterov)
    {
        IBackend backend = new CpuBackend();
        float[] p0 = TensorAssert.Random(10, 1), g1 = TensorAssert.Random(10, 2), g2 = TensorAssert.Random(10, 3);
        var parameter = Tensor.Parameter(backend, [10], p0);
        var frozen = Tensor.Parameter(backend, [3], [1f, 2f, 3f]); // never gets a gradient: left alone
        using var sgd = new Sgd([parameter, frozen], 0.1f, momentum, weightDecay, nesterov);
        foreach (var g in new[] { g1, g2 })
        {
            sgd.ZeroGrad();
            using var scope = TensorScope.Begin();
            Ops.Scale(parameter, 1f).Backward(backend.Upload(g)); // gradient exactly g
            sgd.Step();
        }

        Storage p = backend.Upload(p0), buffer = backend.Upload(new float[10]);
        backend.SgdStep(10, p, backend.Upload(g1), buffer, 0.1f, momentum, weightDecay, nesterov);
        backend.SgdStep(10, p, backend.Upload(g2), buffer, 0.1f, momentum, weightDecay, nesterov);
        TensorAssert.Identical(TensorAssert.Read(backend, p), parameter.ToArray(), "parameter after two steps");
        Assert.Equal([1f, 2f, 3f], frozen.ToArray());
    }

    [Fact]
    public void Constructor_NesterovWithoutMomentum_Throws() =>
        Assert.Contains("Nesterov", Assert.Throws<ArgumentException>(() => new Sgd([], 0.1f, nesterov: true)).Message);

    [Fact]
    public void Constructor_Buffer_IsNotAParameter()
    {
        var buffer = Tensor.Buffer(new CpuBackend(), [2], [0f, 1f]);
        buffer.Name = "running_mean";
        Assert.Contains("running_mean", Assert.Throws<ArgumentException>(() => new Sgd([buffer], 0.1f)).Message);
    }
}
