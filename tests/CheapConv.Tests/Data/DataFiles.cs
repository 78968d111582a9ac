using System.Buffers.Binary;
using System.IO.Compression;

namespace CheapConv.Tests.Data;

/// <summary>Writes small dataset files in the real formats (IDX, CIFAR binary) into a temporary folder the test owns.</summary>
public sealed class DataFiles : IDisposable
{
    public DataFiles() => Directory.CreateDirectory(Root);

    public string Root { get; } = Path.Combine(Path.GetTempPath(), $"cheapconv-data-{Guid.NewGuid():N}");

    public void Dispose() => Directory.Delete(Root, recursive: true);

    /// <summary>Deterministic pixel bytes: image i, byte j.</summary>
    public static byte PixelOf(int image, int offset) => (byte)((image * 37) + (offset * 11) + 3);

    /// <summary>An IDX file: big-endian magic and sizes, then the bytes; gzip-compressed when the name ends in .gz.</summary>
    public string WriteIdx(string name, uint magic, int[] dimensions, byte[] data, string? folder = null)
    {
        var bytes = new byte[4 + (4 * dimensions.Length) + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, magic);
        for (var d = 0; d < dimensions.Length; d++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4 + (4 * d)), (uint)dimensions[d]);
        }

        data.CopyTo(bytes, 4 + (4 * dimensions.Length));
        return WriteBytes(name, bytes, folder);
    }

    /// <summary>Writes <paramref name="bytes"/> as the file <paramref name="name"/>, gzip-compressed when the name ends in .gz.</summary>
    public string WriteBytes(string name, byte[] bytes, string? folder = null)
    {
        var directory = folder is null ? Root : Path.Combine(Root, folder);
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, name);
        if (name.EndsWith(".gz", StringComparison.Ordinal))
        {
            using var file = File.Create(path);
            using var gzip = new GZipStream(file, CompressionLevel.Fastest);
            gzip.Write(bytes);
        }
        else
        {
            File.WriteAllBytes(path, bytes);
        }

        return path;
    }

    public static byte[] IdxPixels(int count, int rows, int columns)
    {
        var pixels = new byte[count * rows * columns];
        for (var i = 0; i < count; i++)
        {
            for (var j = 0; j < rows * columns; j++)
            {
                pixels[(i * rows * columns) + j] = PixelOf(i, j);
            }
        }

        return pixels;
    }

    public static byte[] IdxLabels(int count) => [.. Enumerable.Range(0, count).Select(i => (byte)((i * 3) % 10))];

    /// <summary>A good IDX split pair ("train" or "t10k") with <paramref name="count"/> images of rows×columns.</summary>
    public void WriteIdxSplit(string prefix, int count, int rows, int columns, string suffix = "")
    {
        WriteIdx($"{prefix}-images-idx3-ubyte{suffix}", 0x803, [count, rows, columns], IdxPixels(count, rows, columns));
        WriteIdx($"{prefix}-labels-idx1-ubyte{suffix}", 0x801, [count], IdxLabels(count));
    }

    /// <summary>CIFAR records: label byte(s) then 3072 pixel bytes (R plane, G plane, B plane).</summary>
    public static byte[] CifarRecords(int records, int firstImage, params Func<int, byte>[] labelOf)
    {
        var recordBytes = labelOf.Length + 3072;
        var bytes = new byte[records * recordBytes];
        for (var r = 0; r < records; r++)
        {
            var record = bytes.AsSpan(r * recordBytes, recordBytes);
            for (var l = 0; l < labelOf.Length; l++)
            {
                record[l] = labelOf[l](firstImage + r);
            }

            for (var j = 0; j < 3072; j++)
            {
                record[labelOf.Length + j] = PixelOf(firstImage + r, j);
            }
        }

        return bytes;
    }

    public static byte Cifar10Label(int image) => (byte)((image * 7) % 10);

    public static byte CoarseLabel(int image) => (byte)(image % 20);

    public static byte FineLabel(int image) => (byte)((image * 13) % 100);
}
