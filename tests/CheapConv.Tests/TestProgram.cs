using CheapConv.Tests.Devices;

namespace CheapConv.Tests;

/// <summary>
/// The test assembly's entry point. The test host never calls it (it loads the assembly as a library); tests that need
/// a process of their own run <c>dotnet CheapConv.Tests.dll fake-driver SCENARIO</c>: a CUDA driver is loaded once
/// per process, and these must load the fake one (see <see cref="FakeDriverDeviceTests"/>).
/// </summary>
public static class TestProgram
{
    public static int Main(string[] args)
    {
        if (args is ["fake-driver", var scenario])
        {
            return FakeDriverScenarios.Run(scenario, Console.Out);
        }

        Console.Error.WriteLine("usage: CheapConv.Tests fake-driver SCENARIO (run the tests with dotnet test)");
        return 2;
    }
}
