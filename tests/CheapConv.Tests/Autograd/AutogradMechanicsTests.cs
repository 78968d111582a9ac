using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;
using Xunit;

namespace CheapConv.Tests.Autograd;

/// <summary>The engine itself: order, accumulation, no-grad, parameters vs buffers, the caching allocator.</summary>
public class AutogradMechanicsTests
{
    [Fact]
    public void BackwardOrder_Diamond_VisitsEachTensorOnceBeforeItsInputs()
    {
        var backend = new ShapeOnlyBackend();
        using var scope = TensorScope.Begin();
        var a = Tensor.Parameter(backend, [2, 3], new float[6]);
        var left = Ops.Relu(a);
        var right = Ops.Scale(a, 3f);
        var top = Ops.Add(left, right);
        var loss = Ops.Scale(top, 0.5f);

        var order = loss.BackwardOrder();
        Assert.Equal(5, order.Count);
        Assert.Same(loss, order[0]);
        Assert.Same(top, order[1]);
        Assert.Same(a, order[^1]);
        Assert.Equal(new HashSet<Tensor>([left, right]), new HashSet<Tensor>([order[2], order[3]]));
    }

    [Fact]
    public void BackwardOrder_DeepChain_DoesNotRecurse()
    {
        // 20,000 primitives deep: a recursive sort would overflow the stack long before.
        var backend = new ShapeOnlyBackend();
        using var scope = TensorScope.Begin();
        var x = Tensor.Parameter(backend, [4], new float[4]);
        var y = x;
        for (var i = 0; i < 20_000; i++)
        {
            y = Ops.Relu(y);
        }

        Assert.Equal(20_001, y.BackwardOrder().Count);
    }

    [Fact]
    public void NoGrad_RecordsNothing()
    {
        IBackend backend = new CpuBackend();
        using var scope = TensorScope.Begin();
        var w = Tensor.Parameter(backend, [2, 1, 3, 3], TensorAssert.Random(18, 1));
        var x = Tensor.FromHost(backend, [1, 1, 4, 4], TensorAssert.Random(16, 2), requiresGrad: true);
        Tensor y;
        using (GradientMode.NoGrad())
        {
            Assert.False(GradientMode.IsEnabled);
            y = Ops.Conv2d(x, w, pad: 1);
        }

        Assert.True(GradientMode.IsEnabled);
        Assert.Null(y.Creator);
        Assert.False(y.RequiresGrad);
        Assert.Contains("does not require a gradient", Assert.Throws<InvalidOperationException>(() => y.Backward(y.Storage)).Message);
        Assert.NotNull(Ops.Conv2d(x, w, pad: 1).Creator); // recording is back on
    }

    [Fact]
    public void ConstantsOnly_AreNotRecorded()
    {
        IBackend backend = new CpuBackend();
        using var scope = TensorScope.Begin();
        var y = Ops.Conv2d(Tensor.FromHost(backend, [1, 1, 3, 3], new float[9]), Tensor.FromHost(backend, [1, 1, 1, 1], [2f]));
        Assert.Null(y.Creator);
    }

    [Theory]
    [InlineData("G(2)")]
    [InlineData("B(2)")]
    public void Backward_WholeStudent_EveryParameterGetsAGradientAndNoBufferDoes(string block)
    {
        var backend = new ShapeOnlyBackend();
        var model = new WideResNet(WrnConfig.Student(10, 1, UnitSpec.Parse(block), inChannels: 1, imageSize: 16), backend);
        using var scope = TensorScope.Begin();
        var logits = model.Forward(Tensor.Empty(backend, 2, 1, 16, 16));
        Ops.CrossEntropy(logits, [1, 2]).Backward();
        Assert.All(model.NamedParameters(), p => Assert.True(p.Tensor.Gradient is not null, $"{p.Name} has no gradient"));
        Assert.All(model.NamedBuffers(), b => Assert.True(b.Tensor.Gradient is null, $"buffer {b.Name} got a gradient"));
    }

    [Fact]
    public void Backward_TwiceThroughOneGraph_Throws()
    {
        var backend = new ShapeOnlyBackend();
        using var scope = TensorScope.Begin();
        var loss = Ops.Scale(Tensor.Parameter(backend, [1], [1f]), 2f);
        loss.Backward();
        Assert.Throws<InvalidOperationException>(loss.Backward);
    }

    [Fact]
    public void Backward_NonScalarWithoutSeed_SaysToPassTheGradient()
    {
        var backend = new ShapeOnlyBackend();
        using var scope = TensorScope.Begin();
        var y = Ops.Relu(Tensor.Parameter(backend, [3], new float[3]));
        Assert.Contains("pass the gradient", Assert.Throws<InvalidOperationException>(y.Backward).Message);
    }

    [Fact]
    public void Backward_TensorUsedTwice_AccumulatesBothGradients()
    {
        // a feeds relu and scale(3); da = relu'(a)·dy + 3·dy, the two arrivals summed with Axpy.
        IBackend backend = new CpuBackend();
        using var scope = TensorScope.Begin();
        var values = TensorAssert.Random(12, 4);
        var seed = TensorAssert.Random(12, 5);
        var a = Tensor.FromHost(backend, [3, 4], values, requiresGrad: true);
        var y = Ops.Add(Ops.Relu(a), Ops.Scale(a, 3f));
        using var dy = backend.Upload(seed);
        y.Backward(dy);
        var expected = values.Select((v, i) => (v > 0 ? seed[i] : 0f) + 3f * seed[i]).ToArray();
        TensorAssert.Identical(expected, a.GradientToArray(), "da");
    }

    [Fact]
    public void Backward_ParameterUsedInTwoSteps_GradientIsReplacedAfterZeroGradAndAccumulatedWithout()
    {
        IBackend backend = new CpuBackend();
        var w = Tensor.Parameter(backend, [1, 1, 1, 1], [2f]);
        float Step()
        {
            using var scope = TensorScope.Begin();
            var x = Tensor.FromHost(backend, [1, 1, 1, 2], [1f, 3f]);
            Ops.Conv2d(x, w).Backward(backend.Upload([1f, 1f]));
            return w.GradientToArray()[0];
        }

        Assert.Equal(4f, Step());
        Assert.Equal(8f, Step()); // no ZeroGrad: accumulated
        w.ZeroGrad();
        Assert.Null(w.Gradient);
        Assert.Equal(4f, Step());
    }

    [Fact]
    public void CachingAllocator_RepeatedSteps_ReuseEveryTemporary()
    {
        IBackend backend = new CpuBackend(); // its own cache
        var cache = StorageCache.For(backend);
        var w1 = Tensor.Parameter(backend, [4, 2, 3, 3], TensorAssert.Random(72, 1));
        var w2 = Tensor.Parameter(backend, [3, 4, 1, 1], TensorAssert.Random(12, 2));
        using var seed = backend.Upload(TensorAssert.Random(2 * 3 * 5 * 5, 3));
        long[] allocations = new long[3];
        float[][] gradients = new float[3][];
        for (var step = 0; step < 3; step++)
        {
            using (TensorScope.Begin())
            {
                var x = Tensor.Empty(backend, 2, 2, 5, 5);
                backend.Copy(backend.Upload(TensorAssert.Random(100, 4)), x.Storage);
                Ops.Conv2d(Ops.Conv2d(x, w1, pad: 1), w2).Backward(seed);
            }

            gradients[step] = w1.GradientToArray();
            w1.ZeroGrad();
            w2.ZeroGrad();
            allocations[step] = cache.Allocations;
        }

        Assert.True(allocations[0] > 0);
        Assert.Equal(allocations[0], allocations[1]);
        Assert.Equal(allocations[0], allocations[2]);
        Assert.Equal(2 * allocations[0], cache.Reuses);
        Assert.Equal(allocations[0], cache.Idle);
        TensorAssert.Identical(gradients[0], gradients[2], "dw1 with reused storages");
    }

    [Fact]
    public void TensorScope_TemporaryUsedAfterItsScope_Throws()
    {
        IBackend backend = new CpuBackend();
        Tensor y;
        using (TensorScope.Begin())
        {
            y = Ops.Conv2d(Tensor.FromHost(backend, [1, 1, 2, 2], new float[4]), Tensor.Parameter(backend, [1, 1, 1, 1], [1f]));
        }

        Assert.Throws<ObjectDisposedException>(() => y.Storage);
    }

    [Fact]
    public void TensorScope_ParametersOutliveIt()
    {
        IBackend backend = new CpuBackend();
        var w = Tensor.Parameter(backend, [1], [5f]);
        using (TensorScope.Begin())
        {
            _ = Tensor.Empty(backend, 1);
        }

        Assert.Equal(5f, w.Item());
    }
}
