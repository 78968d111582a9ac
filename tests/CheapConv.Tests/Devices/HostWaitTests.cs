using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Tests.Emulator;
using Xunit;

namespace CheapConv.Tests.Devices;

/// <summary>
/// The device layer's count of host waits (<see cref="HostWaits"/>) on the emulator, which counts the waits a GPU would
/// make for the same calls: copies to the host and from pageable host memory, synchronisations, frees with work queued —
/// and not staged uploads, device-side copies or launches. The strict scope fails on any of them.
/// </summary>
public class HostWaitTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    private EmulatedDevice Device => emulator.Device;

    [Fact]
    public void EachKindOfWait_IsCountedWithItsReason_AndStreamOrderedWorkIsNot()
    {
        IBackend backend = new GpuBackend(Device);
        using var watch = Device.HostWaits.Watch();
        using var a = backend.Upload([1f, 2f, 3f]);            // from pageable memory: the GPU waits
        using var b = backend.Allocate(3);
        backend.CopyFromHost([4f, 5f, 6f], b);                  // staged: no wait
        backend.CopyElements(a, 0, b, 1, 2);                     // on the stream: no wait
        backend.Add(3, a, b, b);                                 // a launch: no wait
        var values = new float[3];
        backend.Download(b, values);                             // to the host: waits
        Device.Synchronize();                                    // waits
        backend.Copy(a, b);                                      // queued again
        b.Dispose();                                             // a free with a copy queued: waits
        a.Dispose();                                             // nothing queued since: no wait

        Assert.Equal([5f, 3f, 5f], values); // b = [4, 5, 6], then [4, 1, 2], then a + b
        Assert.Equal(
            [HostWaitReason.CopyFromHost, HostWaitReason.CopyToHost, HostWaitReason.Synchronize, HostWaitReason.FreeWithWorkQueued],
            watch.Reasons);
    }

    [Fact]
    public void Forbid_ThrowsAtTheWaitThatCanThrow_AndAtTheEndForAFree()
    {
        IBackend backend = new GpuBackend(Device);
        using var x = backend.Upload([1f, float.NaN]);
        var before = Device.HostWaits.Count;

        using (Device.HostWaits.Forbid("a test step"))
        {
            backend.CopyFromHost([3f, 4f], x); // allowed: no wait
            var error = Assert.Throws<HostWaitException>(() => backend.Download(x, new float[2]));
            Assert.Equal([HostWaitReason.CopyToHost], error.Reasons);
            Assert.Contains("inside a test step", error.Message);
        }

        var scope = Device.HostWaits.Forbid("a scope that frees with work queued");
        var temporary = backend.Allocate(2);
        backend.Copy(x, temporary);
        temporary.Dispose(); // a free must not throw (it may run on the finalizer thread): the scope's end reports it
        var atEnd = Assert.Throws<HostWaitException>(scope.Dispose);
        Assert.Equal([HostWaitReason.FreeWithWorkQueued], atEnd.Reasons);
        Assert.Equal(before + 2, Device.HostWaits.Count);

        // Closed scopes leave waits allowed again.
        backend.Download(x, new float[2]);
    }

    [Fact]
    public void AFreeByTheFinalizer_HasItsOwnReason_AndDoesNotBreakAStrictScope()
    {
        IBackend backend = new GpuBackend(Device);
        using var x = backend.Upload([1f, 2f]);
        using var y = backend.Allocate(2);
        using var watch = Device.HostWaits.Watch();
        using (Device.HostWaits.Forbid("a scope during which the collector runs"))
        {
            DropABuffer(backend);
            backend.Copy(x, y); // work queued when the finalizer frees the dropped buffer
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        // At least the dropped buffer's free (earlier tests of this class may have dropped more on this device).
        Assert.Contains(HostWaitReason.FreeByFinalizer, watch.Reasons);
        Assert.All(watch.Reasons, reason => Assert.Equal(HostWaitReason.FreeByFinalizer, reason));
    }

    // Allocates a buffer and drops it without Dispose; not inlined, so nothing on the test's stack keeps it alive.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void DropABuffer(IBackend backend) => backend.Allocate(4);

    [Fact]
    public void Forbid_DoesNotNest()
    {
        using var scope = Device.HostWaits.Forbid("the outer scope");
        var error = Assert.Throws<InvalidOperationException>(() => Device.HostWaits.Forbid("an inner scope"));
        Assert.Contains("the outer scope", error.Message);
    }
}
