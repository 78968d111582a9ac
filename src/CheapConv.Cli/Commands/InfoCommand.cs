using CheapConv.Devices;
using CheapConv.Interop;
using CheapConv.Kernels;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>info</c>: what this machine can run — the GPUs (or why none) and, for each, which binary its kernels run (SASS
/// from the fatbin or JIT-compiled PTX, in libcheapconv.so's words), the C ABI libraries, the embedded PTX, the
/// emulator.
/// </summary>
internal static class InfoCommand
{
    public static int Run(Options options, TextWriter output)
    {
        options.EnsureAllUsed();

        var probe = CudaDevice.Probe();
        output.WriteLine(probe.Summary);
        foreach (var device in probe.Devices)
        {
            output.WriteLine($"  {device}");
            output.WriteLine($"    kernels: {KernelBinary(device.Ordinal)}");
        }

        output.WriteLine($"C ABI (CUDA): {Library(CheapConvBackend.Cuda)}");
        output.WriteLine($"PTX: {PtxModules.All.Count} module(s) embedded");
        foreach (var module in PtxModules.All)
        {
            output.WriteLine($"  {module.Name}: PTX ISA {module.Version}, {module.Target}, kernels {string.Join(", ", module.Entries)}");
        }

        try
        {
            using var emulator = EmulatedDevice.Open();
            output.WriteLine($"emulator: available: C ABI {emulator.Native.VersionText}, emulator API {emulator.Version}, {emulator.LibraryPath}");
            output.WriteLine($"  {emulator.DescribeKernels()}");
            output.WriteLine($"  kernels: {string.Join(", ", emulator.KernelNames)}");
        }
        catch (DeviceException e)
        {
            output.WriteLine($"emulator: unavailable: {e.Message}");
        }

        output.WriteLine("cpu: C# reference backend (always available)");
        return 0;
    }

    /// <summary>cc_describe of a handle on the device, e.g. "cuda: NVIDIA H100 ... kernels: SASS sm_90 from the fatbin".</summary>
    private static string KernelBinary(int ordinal)
    {
        try
        {
            using var device = CudaDevice.Open(ordinal);
            return device.KernelBinary;
        }
        catch (DeviceException e)
        {
            return $"unavailable: {e.Message.ReplaceLineEndings(" ")}";
        }
    }

    private static string Library(CheapConvBackend backend)
    {
        try
        {
            var native = CheapConvNative.Load(backend);
            return $"{native.FileName} {native.VersionText}, {native.LibraryPath}";
        }
        catch (DeviceException e)
        {
            return $"unavailable: {e.Message.ReplaceLineEndings(" ")}";
        }
    }
}
