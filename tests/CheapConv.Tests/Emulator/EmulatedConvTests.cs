using CheapConv.Verification;
using Xunit;

namespace CheapConv.Tests.Emulator;

/// <summary>
/// The CUDA conv kernels, run by the emulator through the C ABI's launcher (cc_conv_*), against the float64 reference over
/// the whole shape catalogue; outputs are poisoned with NaN before each run.
/// </summary>
public class EmulatedConvTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    [Theory]
    [MemberData(nameof(TestCatalogue.Sources), MemberType = typeof(TestCatalogue))]
    public void AllPasses_MatchReference(string source)
    {
        var problem = TestCatalogue.Scaled(source);
        var inputs = ConvInputs.Random(problem, seed: 1);
        var outputs = ConvCheck.RunOnDevice(emulator.Device, problem, inputs);
        ConvAssert.Passed(ConvCheck.Compare(problem, inputs, outputs, emulator.Device.Name));
        Assert.Empty(emulator.Device.TakeWarnings());
    }

    [Fact]
    public void Comparison_CatchesAnUnwrittenElement()
    {
        // The poison must be able to fail a check: drop one element of a correct result.
        var problem = TestCatalogue.Scaled(TestCatalogue.Rigorous[0].Source);
        var inputs = ConvInputs.Random(problem, 1);
        var outputs = ConvCheck.RunOnDevice(emulator.Device, problem, inputs);
        outputs.Dw[^1] = float.NaN;
        outputs.Y[0] += 1e-3f;
        var result = ConvCheck.Compare(problem, inputs, outputs, "tampered");
        Assert.False(result.Passed);
        Assert.Equal(1, result.Passes[0].Failures);
        Assert.True(result.Passes[1].Passed);
        Assert.Equal(1, result.Passes[2].Failures);
    }
}
