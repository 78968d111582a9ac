using CheapConv.Devices;

namespace CheapConv.Cli;

/// <summary>Maps the CLI's --device names to devices.</summary>
public static class DeviceChoice
{
    /// <summary>Opens "emu" or "cuda"; a device that is not there is a <see cref="DeviceUnavailableException"/>.</summary>
    public static Device Open(string name) => name switch
    {
        "emu" => EmulatedDevice.Open(),
        "cuda" => CudaDevice.Open(),
        _ => throw new UsageException($"unknown device '{name}': use cpu, emu or cuda"),
    };
}
