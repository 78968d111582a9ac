using CheapConv.Backends;
using CheapConv.Tests.Emulator;
using Xunit;

namespace CheapConv.Tests.Kernels;

/// <summary>
/// The Norm-family kernels on the emulator, launched by <see cref="GpuBackend"/> as on a GPU, against the
/// float64 reference (see <see cref="NormDeviceChecks"/> for the bounds) over the catalogue's activation shapes
/// at batch 2 and odd shapes.
/// </summary>
public class NormEmulatedTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    private GpuBackend Gpu => new(emulator.Device);

    [Theory]
    [MemberData(nameof(NormTestData.Training), MemberType = typeof(NormTestData))]
    public void BatchNormTrainForward_MatchesReference(string shape)
    {
        NormDeviceChecks.BatchNormTrainForward(Gpu, NormShape.Parse(shape), relu: false);
        NormDeviceChecks.BatchNormTrainForward(Gpu, NormShape.Parse(shape), relu: true);
        Assert.Empty(emulator.Device.TakeWarnings());
    }

    [Theory]
    [InlineData("2x16x8x8", 1000.0)]
    [InlineData("3x5x17x19", -300.0)]
    public void BatchNormTrainForward_LargeMean_MatchesReference(string shape, double offset) =>
        // Values offset ± 1: a one-pass E[x²] − E[x]² would lose the variance entirely in float.
        NormDeviceChecks.BatchNormTrainForward(Gpu, NormShape.Parse(shape), relu: false, offset);

    [Theory]
    [MemberData(nameof(NormTestData.All), MemberType = typeof(NormTestData))]
    public void BatchNormEvalForward_MatchesReference(string shape)
    {
        NormDeviceChecks.BatchNormEvalForward(Gpu, NormShape.Parse(shape), relu: false);
        NormDeviceChecks.BatchNormEvalForward(Gpu, NormShape.Parse(shape), relu: true);
    }

    [Theory]
    [MemberData(nameof(NormTestData.Training), MemberType = typeof(NormTestData))]
    public void BatchNormBackward_MatchesReference(string shape)
    {
        NormDeviceChecks.BatchNormBackward(Gpu, NormShape.Parse(shape), relu: false);
        NormDeviceChecks.BatchNormBackward(Gpu, NormShape.Parse(shape), relu: true);
        Assert.Empty(emulator.Device.TakeWarnings());
    }

    [Theory]
    [MemberData(nameof(NormTestData.All), MemberType = typeof(NormTestData))]
    public void GlobalAvgPool_MatchesReference(string shape)
    {
        NormDeviceChecks.GlobalAvgPool(Gpu, NormShape.Parse(shape));
        Assert.Empty(emulator.Device.TakeWarnings());
    }

    [Theory]
    [InlineData("2x16x32x32", 4, 4, 4, 4)]
    [InlineData("1x3x5x7", 1, 2, 0, 3)]
    [InlineData("2x5x1x1", 0, 0, 0, 0)]
    [InlineData("1x1x1x1", 2, 0, 0, 1)]
    public void ZeroPad_MatchesReference(string shape, int top, int bottom, int left, int right) =>
        NormDeviceChecks.ZeroPad(Gpu, NormShape.Parse(shape), top, bottom, left, right);

    [Theory]
    [MemberData(nameof(NormTestData.Lengths), MemberType = typeof(NormTestData))]
    public void ReluAndAdd_MatchReference(int length) => NormDeviceChecks.ReluAndAdd(Gpu, length);

    [Theory]
    [MemberData(nameof(NormTestData.Lengths), MemberType = typeof(NormTestData))]
    public void FillScaleAxpy_MatchReference(int length) => NormDeviceChecks.FillScaleAxpy(Gpu, length);

    [Theory]
    [MemberData(nameof(NormTestData.Lengths), MemberType = typeof(NormTestData))]
    public void Sum_MatchesReferenceAndRepeats(int length)
    {
        NormDeviceChecks.Sum(Gpu, length);
        Assert.Empty(emulator.Device.TakeWarnings());
    }

    [Fact]
    public void Check_CatchesAnUnwrittenElement()
    {
        // The poison must be able to fail a check: a NaN left in a result is reported, not averaged away.
        IBackend backend = Gpu;
        using var x = backend.Upload([1f, -2f, 3f]);
        using var y = NormDeviceChecks.Poisoned(backend, 3);
        backend.ReluForward(2, x, y);
        var result = NormDeviceChecks.Download(backend, y);
        Assert.True(float.IsNaN(result[2]));
        Assert.ThrowsAny<Exception>(() => NormAssert.Close("tampered", result, [1, 0, 3], [1, 2, 3], 1e-6));
    }

    [Fact]
    public void Training_RefusesOneValuePerChannel()
    {
        IBackend backend = Gpu;
        using var one = backend.Allocate(2);
        var error = Assert.Throws<ArgumentException>(() =>
            backend.BatchNormTrainForward(1, 2, 1, 1, one, one, one, one, one, 0.1f, 1e-5f, one, one, one));
        Assert.Contains("more than one value per channel", error.Message);
    }

    [Fact]
    public void Ops_RefuseWrongLengths()
    {
        IBackend backend = Gpu;
        using var four = backend.Allocate(4);
        using var eight = backend.Allocate(8);
        using var one = backend.Allocate(1);
        Assert.Throws<ArgumentException>(() => backend.ReluForward(8, eight, four));
        Assert.Throws<ArgumentException>(() => backend.GlobalAvgPoolForward(1, 2, 2, 2, eight, four));
        Assert.Throws<ArgumentException>(() => backend.Sum(eight, four));
        Assert.Throws<ArgumentException>(() => backend.Axpy(1f, eight, four));
        Assert.Throws<ArgumentException>(() => backend.ZeroPadBackward(1, 1, 2, 2, 0, 0, 0, -1, four, four));
        Assert.Throws<ArgumentException>(() => backend.BatchNormEvalForward(1, 2, 2, 2, eight, four, four, four, four, 1e-5f, eight));
        Assert.Throws<ArgumentException>(() => backend.BatchNormBackward(1, 2, 2, 2, eight, eight, one, one, one, eight, one, one));
    }
}
