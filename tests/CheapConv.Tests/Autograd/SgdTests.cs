using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Profiling;
using CheapConv.Tests.Emulator;
using Xunit;

namespace CheapConv.Tests.Autograd;

/// <summary>
/// The optimizer: the backend's SgdStep with a persistent momentum buffer per parameter — per parameter on the CPU, and on
/// a GPU backend one launch over the arenas when every parameter has a gradient, with the same results element by element.
/// </summary>
public class SgdTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
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

    [Theory]
    [InlineData(0.9f, 5e-4f, false)]
    [InlineData(0.9f, 5e-4f, true)]
    public void Step_OnAGpuBackend_IsOneLaunchOverTheArenas_BitForBitThePerParameterSteps(float momentum, float weightDecay, bool nesterov)
    {
        var launches = 0;
        var gpu = new GpuBackend(emulator.Device);
        var backend = new RecordingBackend(gpu, () => launches);
        int[] lengths = [10, 3, 70]; // parts padded to 64 floats in the arena: the padding must stay zero and untouched
        var values = lengths.Select((n, i) => TensorAssert.Random(n, 10 + i)).ToArray();
        var parameters = lengths.Select((n, i) => Tensor.Parameter(backend, [n], values[i])).ToArray();
        using var sgd = new Sgd(parameters, 0.1f, momentum, weightDecay, nesterov);
        var reference = values.Select(v => gpu.Upload(v)).ToArray();
        var buffers = lengths.Select(n => gpu.Upload(new float[n])).ToArray();
        for (var step = 0; step < 2; step++)
        {
            sgd.ZeroGrad();
            using var scope = TensorScope.Begin();
            var gradients = lengths.Select((n, i) => TensorAssert.Random(n, 100 * step + i)).ToArray();
            for (var i = 0; i < parameters.Length; i++)
            {
                Ops.Scale(parameters[i], 1f).Backward(gpu.Upload(gradients[i]));
                ((IBackend)gpu).SgdStep(lengths[i], reference[i], gpu.Upload(gradients[i]), buffers[i], 0.1f, momentum, weightDecay, nesterov);
            }

            backend.Clear();
            sgd.Step();
            Assert.Equal(["SgdStep"], backend.Ops.Select(op => op.Name)); // one op for every parameter
        }

        for (var i = 0; i < parameters.Length; i++)
        {
            TensorAssert.Identical(TensorAssert.Read(gpu, reference[i]), parameters[i].ToArray(), $"parameter {i} after two steps");
            TensorAssert.Identical(TensorAssert.Read(gpu, buffers[i]), sgd.ExportMomentum(parameters[i])!, $"momentum {i} after two steps");
        }
    }

    [Fact]
    public void Step_OnAGpuBackend_WithAParameterWithoutGradient_StepsTheOthersAlone()
    {
        IBackend gpu = new GpuBackend(emulator.Device);
        var trained = Tensor.Parameter(gpu, [5], [1f, 2f, 3f, 4f, 5f]);
        var frozen = Tensor.Parameter(gpu, [3], [1f, 2f, 3f]);
        using var sgd = new Sgd([trained, frozen], 0.5f, 0.9f, 0.1f);
        using (TensorScope.Begin())
        {
            Ops.Scale(trained, 1f).Backward(gpu.Upload([1f, 1f, 1f, 1f, 1f]));
            sgd.Step();
        }

        Assert.Equal([1f, 2f, 3f], frozen.ToArray()); // no gradient: no weight decay either, as in PyTorch
        Assert.Null(sgd.ExportMomentum(frozen));
        // p − lr·(g + wd·p) with a fresh momentum buffer: 1 − 0.5·(1 + 0.1) = 0.45, and so on.
        Assert.All(new[] { 0.45f, 1.4f, 2.35f, 3.3f, 4.25f }.Zip(trained.ToArray()), pair => Assert.Equal(pair.First, pair.Second, 1e-6f));
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
