using System.Text;

namespace CheapConv.IO;

/// <summary>
/// Writes float32 arrays in NumPy's .npy format (version 1.0, little-endian, C order), so any framework can
/// load what a check computed (NpzReader in CheapConv.Training reads them back). Files are written to a temporary name and renamed, so a crash never leaves
/// a half-written array behind.
/// </summary>
internal static class NpyWriter
{
    public static void Write(string path, ReadOnlySpan<float> data, IReadOnlyList<int> shape)
    {
        long count = 1;
        foreach (var dimension in shape)
        {
            count *= dimension;
        }

        if (count != data.Length)
        {
            throw new ArgumentException($"shape ({string.Join(", ", shape)}) holds {count} elements but {data.Length} were given");
        }

        var shapeText = shape.Count == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape)})";
        var header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {shapeText}, }}";
        // Magic (6) + version (2) + header length (2) + header + '\n' must be a multiple of 64 bytes.
        var padded = header.PadRight(((10 + header.Length + 1 + 63) / 64 * 64) - 10 - 1) + "\n";

        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        using (var writer = new BinaryWriter(stream))
        {
            writer.Write((byte)0x93);
            writer.Write("NUMPY"u8);
            writer.Write((byte)1);
            writer.Write((byte)0);
            writer.Write((ushort)padded.Length);
            writer.Write(Encoding.ASCII.GetBytes(padded));
            foreach (var value in data)
            {
                writer.Write(value); // BinaryWriter is little-endian on every platform.
            }
        }

        File.Move(temporary, path, overwrite: true);
    }
}
