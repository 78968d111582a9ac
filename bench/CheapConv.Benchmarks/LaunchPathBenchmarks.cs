using BenchmarkDotNet.Attributes;
using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Interop;

namespace CheapConv.Benchmarks;

/// <summary>
/// What the device layer costs per kernel call (issue 10), on the emulator's library. <see cref="DeviceLayerOnly"/> makes
/// the call <see cref="GpuBackend"/> makes for an element-wise add (<see cref="CheapConvNative.Add"/>), for an empty
/// tensor, which the C ABI validates and returns from without launching: the C# side of every launch (the export's
/// function pointer, the handle's reference, the status check) and the ABI's entry and validation, nothing of the kernel.
/// <see cref="EmulatedLaunch"/> is a whole op with a real launch — the emulator running one block of 256 threads — for
/// scale (the emulator is for correctness; a GPU launch costs the driver's few microseconds instead). The memory
/// diagnoser shows the bytes each call allocates on the managed heap.
/// </summary>
[MemoryDiagnoser]
public class LaunchPathBenchmarks
{
    private EmulatedDevice _device = null!;
    private IBackend _backend = null!;
    private Storage _one = null!;
    private DeviceBuffer<float> _buffer = null!;

    [GlobalSetup]
    public void Setup()
    {
        _device = EmulatedDevice.Open();
        _backend = new GpuBackend(_device);
        _buffer = _device.Allocate<float>(1);
        _one = _backend.Upload([0f]);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _one.Dispose();
        _buffer.Dispose();
        _device.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void DeviceLayerOnly() =>
        _device.Native.Add(_device.Handle, new ElementwiseProblem(0), _buffer.Pointer, _buffer.Pointer, _buffer.Pointer, _device.Stream);

    [Benchmark]
    public void EmulatedLaunch() => _backend.Fill(_one, 1f);
}
