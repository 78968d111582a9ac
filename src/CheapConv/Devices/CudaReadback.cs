using static CheapConv.Devices.CudaDriver;

namespace CheapConv.Devices;

/// <summary>
/// <see cref="HostReadback"/> on a GPU: page-locked host memory (the only host memory an asynchronous device-to-host copy
/// leaves the host free during), an asynchronous copy on the device's stream, and an event recorded after it that
/// <see cref="IsDone"/> queries without waiting.
/// </summary>
internal sealed unsafe class CudaReadback : HostReadback
{
    private const uint EventDisableTiming = 0x2; // CU_EVENT_DISABLE_TIMING: a pure completion marker

    private readonly CudaDevice _device;
    private readonly Action<string> _hostWaited;
    private nint _host;
    private nint _event;
    private bool _inFlight;

    public CudaReadback(CudaDevice device, long bytes, Action<string> hostWaited)
        : base(device, bytes)
    {
        _device = device;
        _hostWaited = hostWaited;
        _device.Bind();
        _device.CheckStreamCall(cuMemHostAlloc(out _host, (nuint)Math.Max(bytes, 1), 0), "cuMemHostAlloc",
            $"allocating {bytes} bytes of page-locked memory to read back into");
        _device.CheckStreamCall(cuEventCreate(out _event, EventDisableTiming), "cuEventCreate", "creating a read-back event");
    }

    public override bool IsDone
    {
        get
        {
            if (!_inFlight)
            {
                return true;
            }

            _device.Bind();
            var status = cuEventQuery(_event);
            if (status == CUDA_ERROR_NOT_READY)
            {
                return false;
            }

            _device.CheckStreamCall(status, "cuEventQuery", "asking whether a read-back has arrived");
            _inFlight = false;
            return true;
        }
    }

    private protected override nint Buffer => _host;

    public override void Wait()
    {
        if (IsDone)
        {
            return;
        }

        _device.CheckStreamCall(cuEventSynchronize(_event), "cuEventSynchronize", "waiting for a read-back");
        _inFlight = false;
        _hostWaited(HostWaitReason.ReadBackNotArrived);
    }

    private protected override void StartCopy(nint source, long length)
    {
        Wait(); // the buffer is about to be overwritten: the previous copy into it must be done
        _device.Bind();
        _device.CheckStreamCall(cuMemcpyDtoHAsync_v2((void*)_host, source, (nuint)length, _device.Stream), "cuMemcpyDtoHAsync_v2",
            $"reading {length} bytes back from 0x{source:x}");
        _device.CheckStreamCall(cuEventRecord(_event, _device.Stream), "cuEventRecord", "marking the end of a read-back");
        _inFlight = true;
    }

    /// <summary>Frees the buffer and the event once no copy can still be writing the buffer. Never throws.</summary>
    public override void Dispose()
    {
        if (_host == 0)
        {
            return;
        }

        if (_inFlight)
        {
            _ = cuEventSynchronize(_event);
        }

        _ = cuMemFreeHost(_host);
        _ = cuEventDestroy_v2(_event);
        (_host, _event, _inFlight) = (0, 0, false);
    }
}
