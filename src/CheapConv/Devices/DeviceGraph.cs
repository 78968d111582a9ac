namespace CheapConv.Devices;

/// <summary>
/// What a capture on a device recorded (<see cref="Device.BeginCapture"/> … <see cref="Device.EndCapture"/>): the kernels,
/// copies and fills of that stretch of work, replayed by <see cref="Launch"/> as one submission — a CUDA graph on a GPU, a
/// recorded list on the emulator — with the same pointers and values, on the buffers' contents at the time of the launch.
/// </summary>
internal sealed class DeviceGraph : IDisposable
{
    private nint _graph;

    internal DeviceGraph(Device device, nint graph)
    {
        Device = device;
        _graph = graph;
    }

    /// <summary>The device it was captured on.</summary>
    public Device Device { get; }

    /// <summary>Queues the recorded work again on the device's stream.</summary>
    public void Launch()
    {
        ObjectDisposedException.ThrowIf(_graph == 0, this);
        Device.Native.GraphLaunch(Device.Handle, _graph, Device.Stream);
        Device.Queued("cc_graph_launch");
    }

    public void Dispose()
    {
        if (_graph != 0)
        {
            Device.Native.GraphDestroy(Device.Handle, _graph);
            _graph = 0;
        }
    }
}
