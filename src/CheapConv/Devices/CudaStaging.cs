using static CheapConv.Devices.CudaDriver;

namespace CheapConv.Devices;

/// <summary>
/// Uploads that never make the host wait (<see cref="Device.CopyHostToDeviceStaged"/> on a GPU): the bytes go first into
/// one of two page-locked buffers, then an asynchronous copy takes them to the device, and an event recorded after it
/// says when that buffer may be written again. Two buffers alternate, so the host fills one while the device still
/// reads the other (a step's images while the previous step runs). The host waits only if it comes back to a buffer
/// whose copy has not finished — two uploads ahead of the device — and that wait is counted like any other.
/// </summary>
/// <remarks>Used from the device's thread with its context current; freed by the device's dispose. <c>hostWaited</c> is
/// the device's count of host waits (a wait for a busy buffer is one).</remarks>
internal sealed unsafe class CudaStaging(CudaDevice device, Action<string> hostWaited)
{
    private const int Buffers = 2;
    private const uint EventDisableTiming = 0x2; // CU_EVENT_DISABLE_TIMING: a pure completion marker is cheaper

    private readonly nint[] _host = new nint[Buffers];
    private readonly long[] _capacity = new long[Buffers];
    private readonly nint[] _events = new nint[Buffers];
    private readonly bool[] _inFlight = new bool[Buffers];
    private int _next;

    /// <summary>Copies <paramref name="bytes"/> from <paramref name="source"/> to <paramref name="destination"/> on
    /// <paramref name="stream"/>; the caller's memory is free for reuse when this returns.</summary>
    public void Upload(nint destination, void* source, long bytes, nint stream)
    {
        var slot = _next;
        _next = (_next + 1) % Buffers;
        if (_inFlight[slot])
        {
            var status = cuEventQuery(_events[slot]);
            if (status == CUDA_ERROR_NOT_READY)
            {
                device.CheckStreamCall(cuEventSynchronize(_events[slot]), "cuEventSynchronize", "waiting for a staging buffer's previous upload");
                hostWaited(HostWaitReason.StagingBufferBusy);
            }
            else
            {
                device.CheckStreamCall(status, "cuEventQuery", "asking whether a staging buffer's previous upload is done");
            }

            _inFlight[slot] = false;
        }

        if (_capacity[slot] < bytes)
        {
            // Grown to the largest upload and kept: batches repeat their sizes, so this happens in the first step only.
            if (_host[slot] != 0)
            {
                device.CheckStreamCall(cuMemFreeHost(_host[slot]), "cuMemFreeHost", "freeing a staging buffer to grow it");
                (_host[slot], _capacity[slot]) = (0, 0);
            }

            device.CheckStreamCall(cuMemHostAlloc(out var host, (nuint)bytes, 0), "cuMemHostAlloc", $"allocating {bytes} bytes of page-locked staging memory");
            (_host[slot], _capacity[slot]) = (host, bytes);
        }

        if (_events[slot] == 0)
        {
            device.CheckStreamCall(cuEventCreate(out var created, EventDisableTiming), "cuEventCreate", "creating a staging buffer's event");
            _events[slot] = created;
        }

        Buffer.MemoryCopy(source, (void*)_host[slot], bytes, bytes);
        device.CheckStreamCall(cuMemcpyHtoDAsync_v2(destination, (void*)_host[slot], (nuint)bytes, stream), "cuMemcpyHtoDAsync_v2",
            $"copying {bytes} staged bytes to the device at 0x{destination:x}");
        device.CheckStreamCall(cuEventRecord(_events[slot], stream), "cuEventRecord", "marking the end of a staged upload");
        _inFlight[slot] = true;
    }

    /// <summary>Frees the buffers and events (the device has waited for its stream first). Never throws.</summary>
    public void Release()
    {
        for (var slot = 0; slot < Buffers; slot++)
        {
            if (_host[slot] != 0)
            {
                _ = cuMemFreeHost(_host[slot]);
            }

            if (_events[slot] != 0)
            {
                _ = cuEventDestroy_v2(_events[slot]);
            }

            (_host[slot], _capacity[slot], _events[slot], _inFlight[slot]) = (0, 0, 0, false);
        }
    }
}
