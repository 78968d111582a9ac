namespace CheapConv.Devices;

/// <summary>A device call failed: the message names the call, the device and the driver's (or emulator's) status.</summary>
public class DeviceException(string message) : Exception(message);

/// <summary>
/// A kernel launch failed. Names the kernel, its launch geometry, the problem it was launched for and the
/// status the driver or emulator returned, so a failure in a long test run can be reproduced alone.
/// </summary>
public sealed class KernelLaunchException(
    string deviceName, string kernel, LaunchConfig config, string problem, string status, string detail)
    : DeviceException(Format(deviceName, kernel, config, problem, status, detail))
{
    public string Kernel { get; } = kernel;

    public string Status { get; } = status;

    public string Detail { get; } = detail;

    private static string Format(string device, string kernel, LaunchConfig config, string problem, string status, string detail) =>
        $"kernel {kernel} failed on {device} with {status} ({config}; problem: {problem})" +
        (string.IsNullOrWhiteSpace(detail) ? "" : $": {detail}");
}

/// <summary>A device that cannot be used on this machine (no GPU, no driver, emulator library missing).</summary>
public sealed class DeviceUnavailableException(string message) : DeviceException(message);
