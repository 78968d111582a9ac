using CheapConv.Backends;
using CheapConv.Devices;

namespace CheapConv.Training;

/// <summary>
/// Where a run computes, as --device names it: "cpu" (the C# backend), "emu" (the CUDA kernels on the emulator,
/// for correctness only: slow) or "cuda" (the first GPU); "auto" picks cuda when a GPU is usable, else cpu.
/// Owns the device and its backend.
/// </summary>
public sealed class ComputeDevice : IDisposable
{
    private readonly Device? _device;
    private readonly GpuBackend? _gpuBackend;

    private ComputeDevice(string kind, string name, IBackend backend, Device? device, GpuBackend? gpuBackend)
    {
        Kind = kind;
        Name = name;
        Backend = backend;
        _device = device;
        _gpuBackend = gpuBackend;
    }

    /// <summary>The names --device accepts.</summary>
    public static IReadOnlyList<string> Choices { get; } = ["auto", "cpu", "emu", "cuda"];

    /// <summary>"cpu", "emu" or "cuda".</summary>
    public string Kind { get; }

    /// <summary>What it is: "C# backend, 2 threads", "CUDA emulator", the GPU's name.</summary>
    public string Name { get; }

    /// <summary>The backend every tensor of the run lives on.</summary>
    public IBackend Backend { get; }

    /// <summary>"auto" resolved: "cuda" where <see cref="CudaDevice.Probe"/> finds a usable GPU, else "cpu"; other names unchanged.</summary>
    public static string Resolve(string kind) => kind == "auto" ? (CudaDevice.Probe().IsAvailable ? "cuda" : "cpu") : kind;

    /// <summary>
    /// Opens a device by its --device name. An unknown name is an <see cref="ArgumentException"/>; a device that
    /// is not there (no GPU, no emulator library) a <see cref="DeviceUnavailableException"/>.
    /// </summary>
    public static ComputeDevice Open(string kind)
    {
        switch (Resolve(kind))
        {
            case "cpu":
                return new ComputeDevice("cpu", $"C# backend, {Environment.ProcessorCount} threads", new CpuBackend(), null, null);
            case "emu":
            {
                var device = EmulatedDevice.Open();
                var backend = new GpuBackend(device);
                return new ComputeDevice("emu", "CUDA emulator (correctness only, slow)", backend, device, backend);
            }

            case "cuda":
            {
                var device = CudaDevice.Open();
                var backend = new GpuBackend(device);
                return new ComputeDevice("cuda", device.Name, backend, device, backend);
            }

            default:
                throw new ArgumentException($"unknown device '{kind}': use {string.Join(", ", Choices)}");
        }
    }

    /// <summary>"cpu: C# backend, 2 threads" — the summary's device field.</summary>
    public override string ToString() => $"{Kind}: {Name}";

    /// <summary>Frees the backend's scratch buffers and the device.</summary>
    public void Dispose()
    {
        _gpuBackend?.Dispose();
        _device?.Dispose();
    }
}
