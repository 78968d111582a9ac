using CheapConv.Data;
using Xunit;

namespace CheapConv.Tests.Data;

public sealed class NormalizationTests
{
    [Fact]
    public void FromDataset_TinyDataset_MatchesHandComputedMeanAndPopulationStd()
    {
        // Two 2-channel 1×2 images. Channel 0 bytes {0, 255, 255, 0}: mean 1/2, std 1/2.
        // Channel 1 bytes {51, 51, 102, 204} = 255·{0.2, 0.2, 0.4, 0.8}: mean 0.4, variance (0.04+0.04+0+0.16)/4 = 0.06.
        var data = new ImageDataset("tiny", 2, 1, 2, 2, [0, 255, 51, 51, 255, 0, 102, 204], [0, 1]);

        var normalization = Normalization.FromDataset(data);

        // Each result is the float nearest the exact value (the integer sums are exact; one double rounding).
        Assert.Equal([0.5f, 0.4f], normalization.Mean);
        Assert.Equal([0.5f, (float)Math.Sqrt(0.06)], normalization.Std);
    }

    [Fact]
    public void FromDataset_ConstantChannel_Throws()
    {
        var data = new ImageDataset("flat", 2, 1, 2, 2, [7, 7, 1, 2, 7, 7, 3, 4], [0, 1]);

        var error = Assert.Throws<DataException>(() => Normalization.FromDataset(data));

        Assert.Equal("flat: channel 0 has the same value in every pixel; its standard deviation is 0 and cannot normalise", error.Message);
    }

    [Fact]
    public void Cifar10_HasReferenceValues()
    {
        var cifar = Normalization.Cifar10;

        Assert.Equal([0.4914f, 0.4822f, 0.4465f], cifar.Mean);
        Assert.Equal([0.2023f, 0.1994f, 0.2010f], cifar.Std);
        Assert.Equal("mean 0.4914/0.4822/0.4465, std 0.2023/0.1994/0.201", cifar.ToString());
    }

    [Fact]
    public void Cifar10_EachCallIsAFreshCopy_SoNoCallerCanChangeAnother()
    {
        Normalization.Cifar10.Mean[0] = 0;

        Assert.Equal(0.4914f, Normalization.Cifar10.Mean[0]);
        Assert.Equal(Normalization.Cifar10, Normalization.Cifar10);
    }

    [Theory]
    [InlineData(new[] { 0.5f }, new[] { 0.5f, 0.5f }, "normalisation: 1 means and 2 standard deviations; give one of each per channel")]
    [InlineData(new[] { 0.5f }, new[] { 0f }, "normalisation: channel 0 has mean 0.5 and std 0; both must be finite and the std positive")]
    [InlineData(new[] { float.NaN }, new[] { 1f }, "normalisation: channel 0 has mean NaN and std 1; both must be finite and the std positive")]
    public void Constructor_BadValues_Throws(float[] mean, float[] std, string expected)
    {
        var error = Assert.Throws<DataException>(() => new Normalization(mean, std));

        Assert.Equal(expected, error.Message);
    }

    [Fact]
    public void Normalize_IsTorchvisionOrder_DivideThenSubtractThenDivide()
    {
        var normalization = new Normalization([0.4914f], [0.2023f]);
        var table = normalization.LookupTable(0);

        for (var p = 0; p < 256; p++)
        {
            Assert.Equal(((p / 255f) - 0.4914f) / 0.2023f, table[p]);
        }
    }
}
