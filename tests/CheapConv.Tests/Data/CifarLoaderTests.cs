using CheapConv.Data;
using Xunit;

namespace CheapConv.Tests.Data;

/// <summary>DatasetLoader on CIFAR-10/100 binary files the tests write (a few records each; the real files cannot be downloaded here).</summary>
public sealed class CifarLoaderTests : IDisposable
{
    private readonly DataFiles files = new();

    public void Dispose() => files.Dispose();

    private static readonly Func<int, byte>[] Cifar10Labels = [DataFiles.Cifar10Label];
    private static readonly Func<int, byte>[] Cifar100Labels = [DataFiles.CoarseLabel, DataFiles.FineLabel];

    /// <summary>data_batch_i holds i records (images numbered across files), test_batch 2.</summary>
    private void WriteCifar10(string? folder = null)
    {
        var image = 0;
        for (var i = 1; i <= 5; i++)
        {
            files.WriteBytes($"data_batch_{i}.bin", DataFiles.CifarRecords(i, image, Cifar10Labels), folder);
            image += i;
        }

        files.WriteBytes("test_batch.bin", DataFiles.CifarRecords(2, 1000, Cifar10Labels), folder);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("cifar-10-batches-bin")]
    public void Load_Cifar10_ConcatenatesBatchesInOrderWithPlanesAsStored(string? folder)
    {
        WriteCifar10(folder);

        var (train, test) = DatasetLoader.Load(DatasetKind.Cifar10, files.Root);

        Assert.Equal(("cifar10/train", 15, 3, 32, 32, 10), (train.Name, train.Count, train.Channels, train.Height, train.Width, train.Classes));
        Assert.Equal(("cifar10/test", 2), (test.Name, test.Count));
        for (var i = 0; i < 15; i++)
        {
            Assert.Equal(DataFiles.Cifar10Label(i), train.Labels.Span[i]);
            var image = train.Image(i);
            // Channel-major as in the file: red plane at 0, green at 1024, blue at 2048.
            foreach (var offset in new[] { 0, 31, 1024 + 33, 2048 + 1023, 3071 })
            {
                Assert.Equal(DataFiles.PixelOf(i, offset), image[offset]);
            }
        }

        Assert.Equal(DataFiles.Cifar10Label(1001), test.Labels.Span[1]);
        Assert.Equal(DataFiles.PixelOf(1001, 2000), test.Image(1)[2000]);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("cifar-100-binary")]
    public void Load_Cifar100_KeepsFineLabels(string? folder)
    {
        files.WriteBytes("train.bin", DataFiles.CifarRecords(6, 0, Cifar100Labels), folder);
        files.WriteBytes("test.bin", DataFiles.CifarRecords(3, 50, Cifar100Labels), folder);

        var (train, test) = DatasetLoader.Load(DatasetKind.Cifar100, files.Root);

        Assert.Equal(("cifar100/train", 6, 100), (train.Name, train.Count, train.Classes));
        Assert.Equal(Enumerable.Range(0, 6).Select(i => (int)DataFiles.FineLabel(i)), train.Labels.ToArray());
        Assert.Equal(Enumerable.Range(50, 3).Select(i => (int)DataFiles.FineLabel(i)), test.Labels.ToArray());
        Assert.Equal(DataFiles.PixelOf(52, 3071), test.Image(2)[3071]);
        Assert.Equal(DataFiles.PixelOf(0, 0), train.Image(0)[0]);
    }

    [Fact]
    public void Load_Cifar10TruncatedRecord_NamesFileAndRecordArithmetic()
    {
        WriteCifar10();
        var path = files.WriteBytes("data_batch_3.bin", DataFiles.CifarRecords(3, 0, Cifar10Labels)[..^100]);

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.Cifar10, files.Root));

        // 3 × 3073 − 100 = 9119 = 2 records + 2973 bytes.
        Assert.Equal(
            $"{path}: 9119 bytes is not a whole number of 3073-byte records (2 records and 2973 bytes over): truncated, or not this CIFAR format",
            error.Message);
    }

    [Fact]
    public void Load_Cifar100FileReadAsCifar10Size_IsRefusedBySize()
    {
        files.WriteBytes("train.bin", DataFiles.CifarRecords(4, 0, Cifar10Labels));
        files.WriteBytes("test.bin", DataFiles.CifarRecords(1, 0, Cifar100Labels));

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.Cifar100, files.Root));

        Assert.Contains("train.bin: 12292 bytes is not a whole number of 3074-byte records", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_Cifar10LabelOutOfRange_NamesFileRecordAndLabel()
    {
        WriteCifar10();
        var path = files.WriteBytes("test_batch.bin", DataFiles.CifarRecords(3, 0, i => i == 2 ? (byte)10 : (byte)0));

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.Cifar10, files.Root));

        Assert.Equal($"{path}: record 2 has label 10, outside 0..9", error.Message);
    }

    [Theory]
    [InlineData(20, 5, "coarse label 20, outside 0..19")]
    [InlineData(3, 100, "fine label 100, outside 0..99")]
    public void Load_Cifar100LabelOutOfRange_NamesWhichLabel(int coarse, int fine, string expected)
    {
        files.WriteBytes("train.bin", DataFiles.CifarRecords(2, 0, i => i == 1 ? (byte)coarse : (byte)0, i => i == 1 ? (byte)fine : (byte)0));
        files.WriteBytes("test.bin", DataFiles.CifarRecords(1, 0, Cifar100Labels));

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.Cifar100, files.Root));

        Assert.Equal($"{Path.Combine(files.Root, "train.bin")}: record 1 has {expected}", error.Message);
    }

    [Fact]
    public void Load_EmptyCifarFile_IsRefused()
    {
        WriteCifar10();
        var path = files.WriteBytes("data_batch_5.bin", []);

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.Cifar10, files.Root));

        Assert.Equal($"{path}: empty; a CIFAR binary file holds 3073-byte records", error.Message);
    }

    [Fact]
    public void Load_Cifar10FilesMissing_ListsThemAndWhereToGetThem()
    {
        files.WriteBytes("data_batch_1.bin", DataFiles.CifarRecords(1, 0, Cifar10Labels));
        files.WriteBytes("data_batch_2.bin", DataFiles.CifarRecords(1, 0, Cifar10Labels));

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.Cifar10, files.Root));

        Assert.StartsWith(
            $"cifar10: missing data_batch_3.bin, data_batch_4.bin, data_batch_5.bin, test_batch.bin in {files.Root} (or {Path.Combine(files.Root, "cifar-10-batches-bin")}); download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            error.Message,
            StringComparison.Ordinal);
    }

    [Fact]
    public void Load_CifarWithoutFolder_SaysThereIsNoDefault()
    {
        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.Cifar100, null));

        Assert.StartsWith("cifar100 has no default location; download it (https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz)", error.Message, StringComparison.Ordinal);
    }
}
