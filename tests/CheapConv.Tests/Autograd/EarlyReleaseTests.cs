using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;
using Xunit;

namespace CheapConv.Tests.Autograd;

/// <summary>
/// Storages that go back to the cache before their scope ends (issue 13, item 2: the step's peak memory): intermediate
/// gradients once the backward pass has used them, a no-grad forward pass's activations once the next block has, never
/// while a graph is being captured, and never twice.
/// </summary>
public class EarlyReleaseTests
{
    [Fact]
    public void Backward_ThroughAChain_NeedsTwoGradientStoragesNotOnePerNode()
    {
        IBackend backend = new CpuBackend(1);
        var cache = StorageCache.For(backend);
        using var scope = TensorScope.Begin();
        var x = Tensor.FromHost(backend, [1, 1, 4, 4], TensorAssert.Random(16, 1), requiresGrad: true);
        var h = x;
        var intermediates = new List<Tensor>();
        for (var i = 0; i < 10; i++)
        {
            h = Ops.Scale(h, 2f);
            intermediates.Add(h);
        }

        using var seed = backend.Upload(Enumerable.Repeat(1f, 16).ToArray());
        var before = cache.Allocations;
        h.Backward(seed);

        // The seed's copy and one more: each node's gradient goes back once its primitive has made the next one.
        Assert.Equal(2, cache.Allocations - before);
        Assert.All(intermediates, tensor => Assert.Null(tensor.Gradient));
        Assert.All(x.GradientToArray(), value => Assert.Equal(1024f, value));
    }

    [Fact]
    public void Backward_APrimitiveHandingItsGradientOn_KeepsItForTheInputItWasHandedTo()
    {
        // Tensor.Backward releases a node's gradient once its primitive has run, unless the primitive returned that very
        // tensor as an input's gradient (HandedOn): then it is the input's gradient too and is read again later.
        IBackend backend = new CpuBackend(1);
        using var scope = TensorScope.Begin();
        var x = Tensor.FromHost(backend, [1, 1, 2, 2], TensorAssert.Random(4, 2), requiresGrad: true);
        var handedOn = HandOnFunction.Apply(Ops.Scale(x, 2f));
        var output = Ops.Scale(handedOn, 3f);

        using var seed = backend.Upload([1f, 2f, 3f, 4f]);
        output.Backward(seed);

        Assert.Equal([6f, 12f, 18f, 24f], x.GradientToArray());
    }

    /// <summary>An identity whose backward returns the output's gradient itself (no built-in primitive does: PassThrough copies).</summary>
    private sealed class HandOnFunction(Tensor x) : Function(x)
    {
        public static Tensor Apply(Tensor x)
        {
            var y = Tensor.Empty(x.Backend, [.. x.Shape]);
            x.Backend.Copy(x.Storage, y.Storage);
            return Record(y, () => new HandOnFunction(x), x);
        }

        protected internal override Tensor?[] Backward(Tensor outputGradient) => [outputGradient];
    }

    [Fact]
    public void ReleaseEarly_StorageRentedAgainInTheSameScope_GoesBackOnceAtTheEnd()
    {
        IBackend backend = new CpuBackend(1);
        var cache = StorageCache.For(backend);
        using (TensorScope.Begin())
        {
            var first = Tensor.Empty(backend, 8);
            var storage = first.Storage;
            first.ReleaseEarly();
            Assert.Throws<ObjectDisposedException>(() => first.Storage);
            var second = Tensor.Empty(backend, 8);
            Assert.Same(storage, second.Storage);
            Assert.Equal(0, cache.Idle);
        }

        Assert.Equal(1, cache.Allocations);
        Assert.Equal(1, cache.Idle);
    }

    [Fact]
    public void ReleaseEarly_OfATensorOutsideAnyScope_LeavesIt()
    {
        IBackend backend = new CpuBackend(1);
        var owned = Tensor.Empty(backend, 4);
        owned.ReleaseEarly();
        Assert.Equal(4, owned.Storage.Length);
        owned.Dispose();
    }

    [Fact]
    public void ScopeKeepingStorages_ReturnsNothingEarly_AndKeepsItsNestedScopesStorages()
    {
        IBackend backend = new CpuBackend(1);
        var cache = StorageCache.For(backend);
        var scope = TensorScope.BeginKeepingStorages();
        var kept = Tensor.Empty(backend, 8);
        kept.ReleaseEarly();
        Assert.Equal(8, kept.Storage.Length); // still held: a captured graph would keep using its address
        using (TensorScope.Begin())
        {
            _ = Tensor.Empty(backend, 4);
        }

        Assert.Equal(0, cache.Idle);
        var storages = scope.EndKeepingStorages();
        Assert.Equal([8L, 4L], storages.Select(rented => rented.Storage.Length));
        Assert.Equal(0, cache.Idle);
        foreach (var (owner, storage) in storages)
        {
            owner.Return(storage);
        }
    }

    [Fact]
    public void PassToOuter_TensorOutlivesTheNestedScope_AndGoesBackWithTheOuterOnce()
    {
        IBackend backend = new CpuBackend(1);
        var cache = StorageCache.For(backend);
        using (TensorScope.Begin())
        {
            Tensor passed;
            using (var inner = TensorScope.Begin())
            {
                passed = Tensor.Empty(backend, 8);
                _ = Tensor.Empty(backend, 4);
                inner.PassToOuter(passed);
            }

            Assert.Equal(1, cache.Idle); // the 4: the nested scope's own
            Assert.Equal(8, passed.Storage.Length);
            passed.ReleaseEarly(); // now the outer scope's: it goes back early through it
            Assert.Equal(2, cache.Idle);
        }

        Assert.Equal(2, cache.Idle);
        Assert.Equal(2, cache.Allocations);
    }

    [Fact]
    public void PassToOuter_OfATensorFromAnotherScope_Refuses()
    {
        IBackend backend = new CpuBackend(1);
        using (TensorScope.Begin())
        {
            var outer = Tensor.Empty(backend, 2);
            using var inner = TensorScope.Begin();
            Assert.Throws<InvalidOperationException>(() => inner.PassToOuter(outer));
        }

        using var alone = TensorScope.Begin();
        Assert.Throws<InvalidOperationException>(() => alone.PassToOuter(Tensor.Empty(backend, 2)));
    }

    [Fact]
    public void NoGradForward_OfADeeperNetwork_RentsNoMoreStorages()
    {
        // Each block's intermediates and input go back when the next block has them, so the storages a no-grad forward
        // pass rents do not grow with the depth (before: every activation of the pass, about three per block).
        Assert.Equal(NoGradForwardAllocations(16), NoGradForwardAllocations(40));
    }

    [Fact]
    public void NoGradForward_ReleasingBlocksEarly_GivesTheSameOutputs()
    {
        IBackend backend = new CpuBackend(2);
        var teacher = new WideResNet(WrnConfig.Teacher(16, 1, inChannels: 1, classes: 10, imageSize: 8), backend, seed: 3);
        teacher.Eval();
        var images = TensorAssert.Random(4 * 64, 4);
        float[][] Run(bool scoped)
        {
            using var noGrad = GradientMode.NoGrad();
            using var scope = scoped ? TensorScope.Begin() : null; // outside a scope nothing is released early
            var output = teacher.ForwardWithGroups(Tensor.FromHost(backend, [4, 1, 8, 8], images));
            return [output.Logits.ToArray(), .. output.Groups.Select(group => group.ToArray())];
        }

        var released = Run(scoped: true);
        var kept = Run(scoped: false);
        for (var i = 0; i < kept.Length; i++)
        {
            TensorAssert.Identical(kept[i], released[i], $"output {i}");
        }
    }

    private static long NoGradForwardAllocations(int depth)
    {
        IBackend backend = new CpuBackend(1);
        var cache = StorageCache.For(backend);
        var teacher = new WideResNet(WrnConfig.Teacher(depth, 1, inChannels: 1, classes: 10, imageSize: 8), backend, seed: 1);
        teacher.Eval();
        using var noGrad = GradientMode.NoGrad();
        using var scope = TensorScope.Begin();
        _ = teacher.ForwardWithGroups(Tensor.FromHost(backend, [2, 1, 8, 8], TensorAssert.Random(128, 2)));
        return cache.Allocations;
    }
}
