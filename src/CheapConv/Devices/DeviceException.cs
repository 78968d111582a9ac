namespace CheapConv.Devices;

/// <summary>A device call failed: the message names the call, the device and the driver's (or emulator's) status.</summary>
public class DeviceException(string message) : Exception(message);

/// <summary>
/// A kernel failed. Names the kernel (or the C ABI call that ran it), how it was launched, and the status the driver
/// or emulator returned, so a failure in a long test run can be reproduced alone.
/// </summary>
/// <param name="launch">The launch geometry and problem, e.g. "grid (1,1,1) block (64,1,1) dynamic shared 0 B; problem: ...";
/// empty when the call itself is all there is to say.</param>
public sealed class KernelLaunchException(string deviceName, string kernel, string launch, string status, string detail)
    : DeviceException(Format(deviceName, kernel, launch, status, detail))
{
    public string Kernel { get; } = kernel;

    public string Status { get; } = status;

    public string Detail { get; } = detail;

    private static string Format(string device, string kernel, string launch, string status, string detail) =>
        $"kernel {kernel} failed on {device} with {status}" + (launch.Length > 0 ? $" ({launch})" : "") +
        (string.IsNullOrWhiteSpace(detail) ? "" : $": {detail}");
}

/// <summary>A device that cannot be used on this machine (no GPU, no driver, emulator library missing).</summary>
public sealed class DeviceUnavailableException(string message) : DeviceException(message);
