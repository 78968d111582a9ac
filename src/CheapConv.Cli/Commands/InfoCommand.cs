using CheapConv.Devices;
using CheapConv.Kernels;

namespace CheapConv.Cli.Commands;

/// <summary><c>info</c>: what this machine can run — GPUs (or why none), the embedded PTX, the emulator.</summary>
public static class InfoCommand
{
    public static int Run(Options options, TextWriter output)
    {
        options.EnsureAllUsed();

        output.WriteLine(CudaDevice.Probe().ToString());

        output.WriteLine($"PTX: {PtxModules.All.Count} module(s) embedded");
        foreach (var module in PtxModules.All)
        {
            output.WriteLine($"  {module.Name}: PTX ISA {module.Version}, {module.Target}, kernels {string.Join(", ", module.Entries)}");
        }

        try
        {
            using var emulator = EmulatedDevice.Open();
            output.WriteLine($"emulator: available, version {emulator.Version}, {emulator.LibraryPath}");
            output.WriteLine($"  kernels: {string.Join(", ", emulator.KernelNames)}");
        }
        catch (DeviceUnavailableException e)
        {
            output.WriteLine($"emulator: unavailable: {e.Message}");
        }

        output.WriteLine("cpu: C# reference backend (always available)");
        return 0;
    }
}
