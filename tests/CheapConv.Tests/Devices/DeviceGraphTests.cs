using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Tests.Emulator;
using Xunit;

namespace CheapConv.Tests.Devices;

/// <summary>
/// Capture and replay on the emulator (<see cref="Device.BeginCapture"/>, <see cref="DeviceGraph"/>): the backend's
/// kernels, copies and fills are recorded, not run; each launch of the graph runs them again in order on the buffers'
/// current contents; what cannot be replayed (uploads, host waits, read-backs) is refused during a capture.
/// </summary>
public class DeviceGraphTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    private EmulatedDevice Device => emulator.Device;

    [Fact]
    public void Graph_ReplaysKernelsCopiesAndFills_OnTheBuffersCurrentContents()
    {
        IBackend backend = new GpuBackend(Device);
        using var a = backend.Upload([1f, 2f, 3f]);
        using var b = backend.Upload([10f, 20f, 30f]);
        using var sum = backend.Upload([-1f, -1f, -1f]);
        using var copy = backend.Upload([-1f, -1f, -1f]);
        using var zeros = backend.Upload([5f, 5f, 5f]);

        Device.BeginCapture();
        backend.Add(3, a, b, sum);
        backend.Scale(sum, 2f);
        backend.CopyElements(sum, 1, copy, 0, 2);
        backend.Fill(zeros, 0f);
        using var graph = Device.EndCapture();
        Assert.Equal([-1f, -1f, -1f], Read(backend, sum)); // nothing ran while captured
        Assert.Equal([5f, 5f, 5f], Read(backend, zeros));

        graph.Launch();
        Assert.Equal([22f, 44f, 66f], Read(backend, sum));
        Assert.Equal([44f, 66f, -1f], Read(backend, copy));
        Assert.Equal([0f, 0f, 0f], Read(backend, zeros));

        backend.CopyFromHost([0.5f, 0.5f, 0.5f], a); // the next inputs, into the captured buffer
        graph.Launch();
        Assert.Equal([21f, 41f, 61f], Read(backend, sum));
        Assert.Equal([41f, 61f, -1f], Read(backend, copy));
    }

    [Fact]
    public void Capture_RefusesWhatAGraphCannotReplay_AndEndsCleanly()
    {
        IBackend backend = new GpuBackend(Device);
        using var x = backend.Upload([1f, 2f]);
        using var readback = backend.CreateReadback(x);
        Device.BeginCapture();
        try
        {
            Assert.Contains("an upload while a capture is under way", Assert.Throws<InvalidOperationException>(() => backend.CopyFromHost([3f, 4f], x)).Message);
            Assert.Contains("a host wait", Assert.Throws<InvalidOperationException>(() => backend.Download(x, new float[2])).Message);
            Assert.Contains("a read-back while a capture", Assert.Throws<InvalidOperationException>(readback.Start).Message);
        }
        finally
        {
            Device.EndCapture().Dispose();
        }

        Assert.Equal([1f, 2f], Read(backend, x)); // waits are allowed again
    }

    private static float[] Read(IBackend backend, Storage storage)
    {
        var values = new float[storage.Length];
        backend.Download(storage, values);
        return values;
    }
}
