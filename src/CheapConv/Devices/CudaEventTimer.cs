using static CheapConv.Devices.CudaDriver;

namespace CheapConv.Devices;

/// <summary>
/// Measures GPU time on a <see cref="CudaDevice"/>'s stream with a pair of CUDA events: <see cref="Start"/>,
/// launch work, <see cref="Stop"/>, then read <see cref="ElapsedMilliseconds"/> (which waits for the stop
/// event). Resolution is about half a microsecond. Reusable: Start again for another measurement.
/// </summary>
public sealed class CudaEventTimer : IDisposable
{
    private readonly CudaDevice _device;
    private nint _start;
    private nint _stop;
    private bool _started;
    private bool _stopped;

    internal CudaEventTimer(CudaDevice device)
    {
        _device = device;
        device.Bind();
        Check(cuEventCreate(out _start, CU_EVENT_DEFAULT), $"{device.Name}: creating a timing event");
        var status = cuEventCreate(out _stop, CU_EVENT_DEFAULT);
        if (status != CUDA_SUCCESS)
        {
            _ = cuEventDestroy_v2(_start);
            _start = 0;
            Check(status, $"{device.Name}: creating a timing event");
        }
    }

    /// <summary>Records the start event on the device's stream (after all work launched so far).</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(_start == 0, this);
        _device.Bind();
        Check(cuEventRecord(_start, _device.StreamHandle), _device.Name);
        _started = true;
        _stopped = false;
    }

    /// <summary>Records the stop event on the device's stream (after all work launched since <see cref="Start"/>).</summary>
    public void Stop()
    {
        ObjectDisposedException.ThrowIf(_start == 0, this);
        if (!_started)
        {
            throw new InvalidOperationException("Stop before Start");
        }

        _device.Bind();
        Check(cuEventRecord(_stop, _device.StreamHandle), _device.Name);
        _stopped = true;
    }

    /// <summary>GPU milliseconds between <see cref="Start"/> and <see cref="Stop"/>; waits for the stop event.</summary>
    public float ElapsedMilliseconds
    {
        get
        {
            ObjectDisposedException.ThrowIf(_start == 0, this);
            if (!_stopped)
            {
                throw new InvalidOperationException("ElapsedMilliseconds needs Start and Stop first");
            }

            _device.Bind();
            Check(cuEventSynchronize(_stop), $"{_device.Name}: waiting for the timed work");
            Check(cuEventElapsedTime(out var milliseconds, _start, _stop), _device.Name);
            return milliseconds;
        }
    }

    /// <summary>Destroys the events; a no-op after the device was disposed (they went with its context).</summary>
    public void Dispose()
    {
        if (_start == 0)
        {
            return;
        }

        if (_device.ContextHandle != 0)
        {
            _ = cuCtxSetCurrent(_device.ContextHandle);
            _ = cuEventDestroy_v2(_start);
            _ = cuEventDestroy_v2(_stop);
        }

        _start = 0;
        _stop = 0;
    }
}
