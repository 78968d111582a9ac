using CheapConv.Devices;
using CheapConv.Verification;
using Xunit;

namespace CheapConv.Tests.Cuda;

/// <summary>
/// The same catalogue on a real GPU, at the real batch size. Skipped, with the reason, where there is no
/// usable NVIDIA GPU (always on development and CI machines).
/// </summary>
public class CudaConvTests
{
    [SkippableTheory]
    [MemberData(nameof(TestCatalogue.Sources), MemberType = typeof(TestCatalogue))]
    public void AllPasses_MatchReference(string source)
    {
        CudaRequirement.SkipOrFailWithoutGpu();
        using var device = CudaDevice.Open();
        var problem = TestCatalogue.Full(source);
        var inputs = ConvInputs.Random(problem, seed: 1);
        ConvAssert.Passed(ConvCheck.Compare(problem, inputs, ConvCheck.RunOnDevice(device, problem, inputs), device.Name));
    }
}
