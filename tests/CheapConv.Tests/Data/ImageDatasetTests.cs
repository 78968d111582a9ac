using CheapConv.Data;
using Xunit;

namespace CheapConv.Tests.Data;

/// <summary>ImageDataset construction checks, the seeded --train-subset and the --test-subset's first images.</summary>
public sealed class ImageDatasetTests
{
    /// <summary>N 1×2×2 images whose first pixel is the image number; label = number mod classes.</summary>
    internal static ImageDataset Numbered(int count, int classes = 10, int channels = 1, int height = 2, int width = 2)
    {
        var size = channels * height * width;
        var pixels = new byte[count * size];
        for (var i = 0; i < count; i++)
        {
            for (var j = 0; j < size; j++)
            {
                pixels[(i * size) + j] = (byte)(i + j);
            }
        }

        return new ImageDataset("numbered", channels, height, width, classes, pixels, [.. Enumerable.Range(0, count).Select(i => i % classes)]);
    }

    [Fact]
    public void Constructor_CopiesInputs_SoLaterChangesDoNotLeakIn()
    {
        byte[] pixels = [1, 2, 3, 4];
        int[] labels = [1];
        var data = new ImageDataset("x", 1, 2, 2, 2, pixels, labels);

        pixels[0] = 99;
        labels[0] = 0;

        Assert.Equal(1, data.Pixels.Span[0]);
        Assert.Equal(1, data.Labels.Span[0]);
    }

    [Fact]
    public void Constructor_PixelCountDisagrees_Throws()
    {
        var error = Assert.Throws<DataException>(() => new ImageDataset("x", 1, 2, 2, 10, new byte[7], [0, 1]));

        Assert.Equal("x: 7 pixel bytes for 2 labels of 1×2×2 images; expected 8", error.Message);
    }

    [Fact]
    public void Constructor_LabelOutOfRange_Throws()
    {
        var error = Assert.Throws<DataException>(() => new ImageDataset("x", 1, 1, 1, 3, new byte[2], [2, 3]));

        Assert.Equal("x: image 1 has label 3, outside 0..2", error.Message);
    }

    [Fact]
    public void Subset_SameSeed_SameImagesInSameOrder()
    {
        var data = Numbered(200);

        var first = data.Subset(50, seed: 7);
        var again = data.Subset(50, seed: 7);
        var other = data.Subset(50, seed: 8);

        Assert.Equal(first.Pixels.ToArray(), again.Pixels.ToArray());
        Assert.Equal(first.Labels.ToArray(), again.Labels.ToArray());
        Assert.NotEqual(first.Labels.ToArray(), other.Labels.ToArray());
        Assert.Equal(50, first.Count);
        Assert.Equal("numbered (subset of 50, seed 7)", first.Name);
    }

    [Fact]
    public void Subset_ImagesKeepTheirLabelsAndAreDistinct()
    {
        var data = Numbered(200);

        var subset = data.Subset(120, seed: 3);

        var numbers = Enumerable.Range(0, subset.Count).Select(i => (int)subset.Image(i)[0]).ToArray();
        Assert.Equal(numbers.Length, numbers.Distinct().Count());
        for (var i = 0; i < subset.Count; i++)
        {
            Assert.Equal(numbers[i] % 10, subset.Labels.Span[i]);
            Assert.Equal(data.Image(numbers[i]).ToArray(), subset.Image(i).ToArray());
        }

        // A shuffle, not the first 120 in order.
        Assert.NotEqual(Enumerable.Range(0, 120), numbers);
    }

    [Fact]
    public void Subset_WholeDataset_IsAPermutation()
    {
        var data = Numbered(100);

        var all = data.Subset(100, seed: 1);

        Assert.Equal(Enumerable.Range(0, 100), Enumerable.Range(0, 100).Select(i => (int)all.Image(i)[0]).Order());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(101)]
    public void Subset_CountOutsideDataset_Throws(int count)
    {
        var data = Numbered(100);

        var error = Assert.Throws<DataException>(() => data.Subset(count, seed: 1));

        Assert.Equal($"numbered: a subset of {count} images was asked for, but it holds 100; choose 1..100", error.Message);
    }

    [Fact]
    public void First_IsTheFirstImagesInOrder()
    {
        var data = Numbered(30);

        var first = data.First(12);

        Assert.Equal(12, first.Count);
        Assert.Equal(data.Pixels[..(12 * 4)].ToArray(), first.Pixels.ToArray());
        Assert.Equal(data.Labels[..12].ToArray(), first.Labels.ToArray());
        Assert.Equal("numbered (first 12)", first.Name);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(31)]
    public void First_OutsideOneToCount_Throws(int count)
    {
        var error = Assert.Throws<DataException>(() => Numbered(30).First(count));

        Assert.Contains("choose 1..30", error.Message, StringComparison.Ordinal);
    }
}
