using System.Buffers.Binary;

namespace CheapConv.Tests.Training;

/// <summary>
/// A small Fashion-MNIST-shaped dataset written as raw IDX files in a temporary folder: grey images whose class
/// sets the brightness (40 + 18·k) and the orientation of a bright bar (horizontal for even k, vertical for odd),
/// plus seeded noise — learnable by a tiny WRN within a few epochs, and hard enough that the loss starts high.
/// </summary>
public sealed class SyntheticDataset : IDisposable
{
    public SyntheticDataset(int trainCount = 320, int testCount = 100, int side = 12, int seed = 1)
    {
        Directory = Path.Combine(Path.GetTempPath(), $"cheapconv-synthetic-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(Directory);
        Side = side;
        var random = new Random(seed);
        Write("train", trainCount, side, random);
        Write("t10k", testCount, side, random);
    }

    /// <summary>The folder holding the four IDX files (pass it as --data).</summary>
    public string Directory { get; }

    /// <summary>Image height and width.</summary>
    public int Side { get; }

    public void Dispose()
    {
        if (System.IO.Directory.Exists(Directory))
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }

    /// <summary>A fresh empty folder that the caller owns (deleted with this dataset when made inside it).</summary>
    public string NewFolder(string name)
    {
        var path = Path.Combine(Directory, name);
        System.IO.Directory.CreateDirectory(path);
        return path;
    }

    private void Write(string split, int count, int side, Random random)
    {
        var pixels = new byte[count * side * side];
        var labels = new byte[count];
        for (var i = 0; i < count; i++)
        {
            var label = i % 10;
            labels[i] = (byte)label;
            var image = pixels.AsSpan(i * side * side, side * side);
            for (var y = 0; y < side; y++)
            {
                for (var x = 0; x < side; x++)
                {
                    var bar = label % 2 == 0 ? Math.Abs(y - (side / 2)) <= 1 : Math.Abs(x - (side / 2)) <= 1;
                    var value = 40 + (18 * label) + (bar ? 60 : 0) + random.Next(-25, 26);
                    image[(y * side) + x] = (byte)Math.Clamp(value, 0, 255);
                }
            }
        }

        WriteIdx(Path.Combine(Directory, $"{split}-images-idx3-ubyte"), 0x0803, [count, side, side], pixels);
        WriteIdx(Path.Combine(Directory, $"{split}-labels-idx1-ubyte"), 0x0801, [count], labels);
    }

    private static void WriteIdx(string path, int magic, int[] dimensions, byte[] data)
    {
        using var stream = File.Create(path);
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, magic);
        stream.Write(word);
        foreach (var size in dimensions)
        {
            BinaryPrimitives.WriteInt32BigEndian(word, size);
            stream.Write(word);
        }

        stream.Write(data);
    }
}
