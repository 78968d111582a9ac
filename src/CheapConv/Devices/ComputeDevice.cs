using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using CheapConv.Backends;
using CheapConv.Interop;

namespace CheapConv.Devices;

/// <summary>
/// Where to compute, as --device names it: "cpu" (the C# backend), "emu" (the CUDA kernels on the emulator, for
/// correctness only: slow), "cuda" or "cuda:N" (GPU N; plain "cuda" is GPU 0), or "auto" (cuda where a GPU is usable,
/// else cpu). The one parser of these names; <see cref="ComputeDevice.Open(DeviceRequest, KernelPrecision)"/> is the one place that opens them.
/// </summary>
public sealed record DeviceRequest
{
    private DeviceRequest(string kind, int ordinal)
    {
        Kind = kind;
        Ordinal = ordinal;
    }

    /// <summary>The kinds, as --device names them (cuda also as cuda:N).</summary>
    public static IReadOnlyList<string> Kinds { get; } = ["auto", "cpu", "emu", "cuda"];

    public static DeviceRequest Auto { get; } = new("auto", 0);

    public static DeviceRequest Cpu { get; } = new("cpu", 0);

    public static DeviceRequest Emulator { get; } = new("emu", 0);

    /// <summary>"auto", "cpu", "emu" or "cuda".</summary>
    public string Kind { get; }

    /// <summary>The GPU's number for cuda; 0 otherwise.</summary>
    public int Ordinal { get; }

    /// <summary>GPU <paramref name="ordinal"/>.</summary>
    public static DeviceRequest Cuda(int ordinal = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ordinal);
        return new DeviceRequest("cuda", ordinal);
    }

    /// <summary>Reads auto, cpu, emu, cuda or cuda:N (N a GPU number: 0, 1, …); false for anything else.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, [NotNullWhen(true)] out DeviceRequest? request)
    {
        request = text switch
        {
            "auto" => Auto,
            "cpu" => Cpu,
            "emu" => Emulator,
            "cuda" => Cuda(),
            _ when text is not null && text.StartsWith("cuda:", StringComparison.Ordinal)
                && int.TryParse(text.AsSpan("cuda:".Length), NumberStyles.None, CultureInfo.InvariantCulture, out var ordinal) => Cuda(ordinal),
            _ => null,
        };
        return request is not null;
    }

    /// <summary>Reads a device name; anything else is a <see cref="FormatException"/> that lists the names.</summary>
    public static DeviceRequest Parse(string text) =>
        TryParse(text, out var request) ? request : throw new FormatException($"unknown device '{text}': use auto, cpu, emu, cuda or cuda:N");

    /// <summary>"auto" decided: GPU 0 where <see cref="CudaDevice.Probe"/> finds a usable GPU, else cpu; any other request unchanged.</summary>
    public DeviceRequest Resolve() => Kind != "auto" ? this : CudaDevice.Probe().IsAvailable ? Cuda() : Cpu;

    /// <summary>The --device name: "cpu", "cuda", "cuda:1" (GPU 0 is plain "cuda").</summary>
    public override string ToString() => Ordinal == 0 ? Kind : string.Create(CultureInfo.InvariantCulture, $"{Kind}:{Ordinal}");
}

/// <summary>
/// A device opened for a <see cref="DeviceRequest"/>, with the backend every tensor on it lives on. Owns both: disposing
/// frees the backend's scratch buffers and closes the device.
/// </summary>
public sealed class ComputeDevice : IDisposable
{
    private readonly GpuBackend? _gpuBackend;

    private ComputeDevice(DeviceRequest request, string name, IBackend backend, Device? device, GpuBackend? gpuBackend)
    {
        Request = request;
        Name = name;
        Backend = backend;
        Device = device;
        _gpuBackend = gpuBackend;
    }

    /// <summary>What was opened: the request with "auto" resolved.</summary>
    public DeviceRequest Request { get; }

    /// <summary>"cpu", "emu" or "cuda".</summary>
    public string Kind => Request.Kind;

    /// <summary>What it is: "C# backend, 2 threads", "CUDA emulator (correctness only, slow)", the GPU's name.</summary>
    public string Name { get; }

    /// <summary>The backend every tensor of the run lives on.</summary>
    public IBackend Backend { get; }

    /// <summary>The emulator or the GPU; null on the cpu.</summary>
    public Device? Device { get; }

    /// <summary>
    /// Opens the device <paramref name="request"/> names ("auto" resolved by <see cref="DeviceRequest.Resolve"/>). A
    /// device that is not there (no GPU, no emulator library) is a <see cref="DeviceUnavailableException"/> that says why.
    /// A GPU backend's convolutions run in fp32 (<see cref="GpuBackend.ConvPrecision"/>).
    /// </summary>
    public static ComputeDevice Open(DeviceRequest request) => Open(request, KernelPrecision.Fp32);

    /// <summary>
    /// <see cref="Open(DeviceRequest)"/> with the precision a GPU backend's convolutions may use
    /// (<see cref="GpuBackend.ConvPrecision"/>); the cpu backend computes in fp32 whatever it says.
    /// </summary>
    public static ComputeDevice Open(DeviceRequest request, KernelPrecision convPrecision)
    {
        ArgumentNullException.ThrowIfNull(request);
        var resolved = request.Resolve();
        if (resolved.Kind == "cpu")
        {
            return new ComputeDevice(resolved, $"C# backend, {Environment.ProcessorCount} threads", new CpuBackend(), null, null);
        }

        Device device = resolved.Kind == "emu" ? EmulatedDevice.Open() : CudaDevice.Open(resolved.Ordinal);
        var backend = new GpuBackend(device) { ConvPrecision = convPrecision };
        return new ComputeDevice(resolved, device is EmulatedDevice ? "CUDA emulator (correctness only, slow)" : device.Name, backend, device, backend);
    }

    /// <summary>"cpu: C# backend, 2 threads" — the summary's device field.</summary>
    public override string ToString() => $"{Kind}: {Name}";

    /// <summary>Frees the backend's scratch buffers and the device.</summary>
    public void Dispose()
    {
        _gpuBackend?.Dispose();
        Device?.Dispose();
    }
}
