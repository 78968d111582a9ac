using CheapConv.Data;
using Xunit;

namespace CheapConv.Tests.Data;

/// <summary>Dataset names, default locations, and the real Fashion-MNIST of the Debian package where it is installed.</summary>
public sealed class DatasetLoaderTests
{
    [Theory]
    [InlineData("fashion-mnist", DatasetKind.FashionMnist)]
    [InlineData("Fashion-MNIST", DatasetKind.FashionMnist)]
    [InlineData("mnist", DatasetKind.Mnist)]
    [InlineData("cifar10", DatasetKind.Cifar10)]
    [InlineData("cifar-10", DatasetKind.Cifar10)]
    [InlineData("cifar100", DatasetKind.Cifar100)]
    public void ParseKind_KnownName_ReturnsKind(string name, DatasetKind expected)
    {
        Assert.Equal(expected, DatasetLoader.ParseKind(name));
    }

    [Fact]
    public void ParseKind_UnknownName_ListsValidNames()
    {
        var error = Assert.Throws<DataException>(() => DatasetLoader.ParseKind("imagenet"));

        Assert.Equal("unknown dataset 'imagenet'; valid names: fashion-mnist, mnist, cifar10, cifar100", error.Message);
    }

    [Fact]
    public void Name_EveryKind_ParsesBack()
    {
        foreach (var kind in Enum.GetValues<DatasetKind>())
        {
            Assert.Equal(kind, DatasetLoader.ParseKind(DatasetLoader.Name(kind)));
        }
    }

    [Fact]
    public void DefaultDirectory_FashionMnistOnly_IsTheDebianPackageFolder()
    {
        Assert.Equal("/usr/share/datasets/fashion-mnist", DatasetLoader.DefaultDirectory(DatasetKind.FashionMnist));
        Assert.Null(DatasetLoader.DefaultDirectory(DatasetKind.Mnist));
        Assert.Null(DatasetLoader.DefaultDirectory(DatasetKind.Cifar10));
        Assert.Null(DatasetLoader.DefaultDirectory(DatasetKind.Cifar100));
    }

    /// <summary>
    /// The files of the dataset-fashion-mnist package at the default location: the published sizes, 6,000
    /// training and 1,000 test images per class, and the normalisation: the widely quoted mean 0.2860 and std
    /// 0.3530, and to float precision the values a separate float64 computation gave (Python over the
    /// decompressed bytes: mean 0.2860405969887955, population std 0.3530242445149226).
    /// </summary>
    [SkippableFact]
    public void Load_DebianFashionMnist_HasPublishedSizesAndStatistics()
    {
        Skip.IfNot(
            File.Exists(Path.Combine(DatasetLoader.FashionMnistDebianDirectory, "train-images-idx3-ubyte.gz")),
            $"Fashion-MNIST is not installed in {DatasetLoader.FashionMnistDebianDirectory} (apt-get install dataset-fashion-mnist)");

        var (train, test) = DatasetLoader.Load(DatasetKind.FashionMnist, null);

        Assert.Equal((60000, 1, 28, 28, 10), (train.Count, train.Channels, train.Height, train.Width, train.Classes));
        Assert.Equal((10000, 1, 28, 28, 10), (test.Count, test.Channels, test.Height, test.Width, test.Classes));
        Assert.All(Histogram(train), n => Assert.Equal(6000, n));
        Assert.All(Histogram(test), n => Assert.Equal(1000, n));

        // Published to 4 decimals: within half a unit of the last digit. Against the float64 values: within
        // one float ulp at 0.3 (2^-25 ≈ 3e-8), what rounding a correctly computed double to float allows.
        var normalization = Normalization.FromDataset(train);
        Assert.InRange(normalization.Mean[0], 0.2860 - 0.00005, 0.2860 + 0.00005);
        Assert.InRange(normalization.Std[0], 0.3530 - 0.00005, 0.3530 + 0.00005);
        Assert.InRange(normalization.Mean[0], 0.2860405969887955 - 3e-8, 0.2860405969887955 + 3e-8);
        Assert.InRange(normalization.Std[0], 0.3530242445149226 - 3e-8, 0.3530242445149226 + 3e-8);
    }

    private static int[] Histogram(ImageDataset data)
    {
        var counts = new int[data.Classes];
        foreach (var label in data.Labels.Span)
        {
            counts[label]++;
        }

        return counts;
    }
}
