using CheapConv.Data;
using Xunit;

namespace CheapConv.Tests.Data;

/// <summary>
/// DatasetLoader on IDX files the tests write (Fashion-MNIST/MNIST layout): good files raw and gzip, and each
/// kind of damage, which must be refused with a DataException naming the file and what is wrong.
/// </summary>
public sealed class IdxLoaderTests : IDisposable
{
    private readonly DataFiles files = new();

    public void Dispose() => files.Dispose();

    [Theory]
    [InlineData("", DatasetKind.FashionMnist)]
    [InlineData(".gz", DatasetKind.FashionMnist)]
    [InlineData(".gz", DatasetKind.Mnist)]
    public void Load_GoodIdxFiles_ReturnsPixelsAndLabelsAsWritten(string suffix, DatasetKind kind)
    {
        files.WriteIdxSplit("train", 7, 5, 4, suffix);
        files.WriteIdxSplit("t10k", 3, 5, 4, suffix);

        var (train, test) = DatasetLoader.Load(kind, files.Root);

        var name = DatasetLoader.Name(kind);
        Assert.Equal($"{name}/train", train.Name);
        Assert.Equal($"{name}/test", test.Name);
        Assert.Equal((7, 1, 5, 4, 10), (train.Count, train.Channels, train.Height, train.Width, train.Classes));
        Assert.Equal((3, 1, 5, 4, 10), (test.Count, test.Channels, test.Height, test.Width, test.Classes));
        Assert.Equal(DataFiles.IdxPixels(7, 5, 4), train.Pixels.ToArray());
        Assert.Equal(DataFiles.IdxLabels(7).Select(b => (int)b), train.Labels.ToArray());
        Assert.Equal(DataFiles.IdxPixels(3, 5, 4), test.Pixels.ToArray());
        Assert.Equal(DataFiles.IdxLabels(3).Select(b => (int)b), test.Labels.ToArray());
    }

    [Fact]
    public void Load_RawAndGzipBothPresent_ReadsTheRawFile()
    {
        files.WriteIdxSplit("train", 2, 3, 3);
        files.WriteIdxSplit("t10k", 2, 3, 3);
        files.WriteBytes("train-images-idx3-ubyte.gz", [1, 2, 3]); // would be refused if read

        var (train, _) = DatasetLoader.Load(DatasetKind.Mnist, files.Root);

        Assert.Equal(2, train.Count);
    }

    [Theory]
    [InlineData("")]
    [InlineData(".gz")]
    public void Load_TruncatedImages_NamesFileExpectedAndActualBytes(string suffix)
    {
        files.WriteIdxSplit("t10k", 2, 4, 4, suffix);
        var pixels = DataFiles.IdxPixels(3, 4, 4);
        var path = files.WriteIdx("train-images-idx3-ubyte" + suffix, 0x803, [3, 4, 4], pixels[..^5]);
        files.WriteIdx("train-labels-idx1-ubyte" + suffix, 0x801, [3], DataFiles.IdxLabels(3));

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.FashionMnist, files.Root));

        // Header 16 bytes + 3×4×4 = 64 promised; 5 missing.
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
        Assert.Contains("promises 64", error.Message, StringComparison.Ordinal);
        Assert.Contains("holds 59", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ExtraBytesAfterData_NamesFileAndExtraCount()
    {
        files.WriteIdxSplit("t10k", 2, 4, 4);
        files.WriteIdxSplit("train", 2, 4, 4);
        var path = files.WriteIdx("train-labels-idx1-ubyte", 0x801, [2], [1, 2, 3, 4]);

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.FashionMnist, files.Root));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("promises 10 bytes, the file holds 12 (2 extra)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_HeaderCutShort_NamesFile()
    {
        files.WriteIdxSplit("t10k", 2, 4, 4);
        files.WriteIdxSplit("train", 2, 4, 4);
        var path = files.WriteBytes("train-images-idx3-ubyte", [0, 0, 8, 3, 0, 0, 0, 2, 0, 0]);

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.FashionMnist, files.Root));

        Assert.Equal($"{path}: truncated header: 10 bytes, the 3 dimensions need 16", error.Message);
    }

    [Fact]
    public void Load_LabelsFileWhereImagesExpected_ReportsWrongMagic()
    {
        files.WriteIdxSplit("t10k", 2, 4, 4);
        files.WriteIdxSplit("train", 2, 4, 4);
        var path = files.WriteIdx("train-images-idx3-ubyte", 0x801, [2], [1, 2]);

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.FashionMnist, files.Root));

        Assert.Equal($"{path}: wrong magic number 0x00000801; expected 0x00000803, the IDX magic of images (unsigned bytes, 3 dimensions)", error.Message);
    }

    [Fact]
    public void Load_GzipFileWithoutGzName_SaysToRenameIt()
    {
        files.WriteIdxSplit("t10k", 2, 4, 4);
        files.WriteIdxSplit("train", 2, 4, 4, ".gz");
        File.Move(Path.Combine(files.Root, "train-images-idx3-ubyte.gz"), Path.Combine(files.Root, "train-images-idx3-ubyte"));

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.FashionMnist, files.Root));

        Assert.Contains("train-images-idx3-ubyte: wrong magic number 0x1F8B", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("the file is gzip-compressed: give it a .gz name", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_CorruptGzip_NamesFile()
    {
        files.WriteIdxSplit("t10k", 2, 4, 4);
        files.WriteIdxSplit("train", 2, 4, 4);
        File.Delete(Path.Combine(files.Root, "train-labels-idx1-ubyte"));
        // A gzip header followed by a deflate block of the reserved type 3.
        var gz = Path.Combine(files.Root, "train-labels-idx1-ubyte.gz");
        File.WriteAllBytes(gz, [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.FashionMnist, files.Root));

        Assert.StartsWith(gz + ": ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_GzipFileCutShort_NamesFile()
    {
        files.WriteIdxSplit("t10k", 2, 4, 4);
        files.WriteIdxSplit("train", 50, 10, 10, ".gz");
        var path = Path.Combine(files.Root, "train-images-idx3-ubyte.gz");
        var whole = File.ReadAllBytes(path);
        File.WriteAllBytes(path, whole[..(whole.Length / 2)]);

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.FashionMnist, files.Root));

        // Depending on where the cut falls, the runtime reports a damaged stream or the data simply ends early.
        Assert.StartsWith(path + ": ", error.Message, StringComparison.Ordinal);
        Assert.True(error.Message.Contains("truncated", StringComparison.Ordinal) || error.Message.Contains("not a valid gzip file", StringComparison.Ordinal), error.Message);
    }

    [Fact]
    public void Load_LabelOutOfRange_NamesFileIndexAndValue()
    {
        files.WriteIdxSplit("train", 3, 2, 2);
        files.WriteIdx("t10k-images-idx3-ubyte", 0x803, [3, 2, 2], DataFiles.IdxPixels(3, 2, 2));
        var path = files.WriteIdx("t10k-labels-idx1-ubyte", 0x801, [3], [0, 9, 10]);

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.FashionMnist, files.Root));

        Assert.Equal($"{path}: label 2 is 10, outside 0..9", error.Message);
    }

    [Fact]
    public void Load_ImageAndLabelCountsDiffer_NamesBothFiles()
    {
        files.WriteIdxSplit("t10k", 2, 4, 4);
        var images = files.WriteIdx("train-images-idx3-ubyte", 0x803, [3, 4, 4], DataFiles.IdxPixels(3, 4, 4));
        var labels = files.WriteIdx("train-labels-idx1-ubyte", 0x801, [4], DataFiles.IdxLabels(4));

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.FashionMnist, files.Root));

        Assert.Equal($"{images} holds 3 images but {labels} holds 4 labels; the two files must come from the same split", error.Message);
    }

    [Fact]
    public void Load_ZeroDimension_IsRefused()
    {
        files.WriteIdxSplit("t10k", 2, 4, 4);
        files.WriteIdxSplit("train", 2, 4, 4);
        var path = files.WriteIdx("train-images-idx3-ubyte", 0x803, [2, 0, 4], []);

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.FashionMnist, files.Root));

        Assert.StartsWith($"{path}: dimension 1 of the header is 0", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_FilesMissing_ListsThemAndSaysWhatToInstall()
    {
        files.WriteIdxSplit("train", 2, 4, 4, ".gz");

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.FashionMnist, files.Root));

        Assert.StartsWith($"fashion-mnist: missing t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] in {files.Root}; ", error.Message, StringComparison.Ordinal);
        Assert.Contains("apt-get install dataset-fashion-mnist", error.Message, StringComparison.Ordinal);
        Assert.Contains("/usr/share/datasets/fashion-mnist", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Load_MnistFilesMissing_SaysWhereToPutThem()
    {
        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.Mnist, files.Root));

        Assert.StartsWith($"mnist: missing train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] in {files.Root}; ", error.Message, StringComparison.Ordinal);
        Assert.Contains($"put them (raw or .gz) in {files.Root}", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("apt-get", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_FolderDoesNotExist_SaysSo()
    {
        var missing = Path.Combine(files.Root, "nowhere");

        var error = Assert.Throws<DataException>(() => DatasetLoader.Load(DatasetKind.FashionMnist, missing));

        Assert.StartsWith($"fashion-mnist: the folder {missing} does not exist; ", error.Message, StringComparison.Ordinal);
        Assert.Contains("apt-get install dataset-fashion-mnist", error.Message, StringComparison.Ordinal);
    }
}
