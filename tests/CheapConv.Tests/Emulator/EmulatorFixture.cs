using CheapConv.Devices;

namespace CheapConv.Tests.Emulator;

/// <summary>One emulator device shared by the tests of a class (opening it loads the native library).</summary>
public sealed class EmulatorFixture : IDisposable
{
    public EmulatedDevice Device { get; } = EmulatedDevice.Open();

    public void Dispose() => Device.Dispose();
}
