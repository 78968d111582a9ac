using CheapConv.Backends;
using CheapConv.Devices;

namespace CheapConv.Training;

/// <summary>
/// --threads N: the C# backend of a cpu device bounded to N threads at once (see <see cref="CpuBackend(int)"/>). Results do
/// not depend on it, so it is no part of a run's configuration and may differ on resume.
/// </summary>
/// <remarks>Here until <see cref="ComputeDevice.Open(DeviceRequest, Interop.KernelPrecision)"/>, which builds every other backend, takes the bound itself.</remarks>
internal static class CpuThreads
{
    /// <summary>
    /// The backend and summary name to run on: <paramref name="device"/>'s own when <paramref name="threads"/> is null, else
    /// a C# backend on at most that many threads. An <see cref="ArgumentException"/> for a bound below 1 or a device that
    /// is not the cpu.
    /// </summary>
    internal static (IBackend Backend, string Device) Apply(ComputeDevice device, int? threads)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (threads is not { } count)
        {
            return (device.Backend, device.ToString());
        }

        if (count < 1)
        {
            throw new ArgumentException($"option --threads must be at least 1, got {count}");
        }

        return device.Kind == "cpu"
            ? (new CpuBackend(count), $"cpu: C# backend, {count} thread{(count == 1 ? "" : "s")}")
            : throw new ArgumentException($"option --threads applies to the cpu device; this run is on {device.Kind}");
    }
}
