using System.Buffers.Binary;
using System.IO.Compression;
using CheapConv.IO;

namespace CheapConv.Data;

/// <summary>
/// Reads the IDX files of MNIST and Fashion-MNIST, raw or gzip-compressed (by the ".gz" name). An IDX file is a
/// big-endian header — magic 0x0000TTDD (TT = element type, 0x08 for unsigned bytes; DD = number of
/// dimensions), then DD 32-bit sizes — followed by exactly the product of the sizes in bytes. Every check names
/// the file: wrong magic, a zero size, a file shorter or longer than its header promises — and a header is never
/// trusted with memory: its claimed size is checked against what the file can hold before any allocation.
/// </summary>
internal static class IdxReader
{
    /// <summary>Unsigned-byte elements, 3 dimensions (count, rows, columns).</summary>
    public const uint ImagesMagic = 0x00000803;

    /// <summary>Unsigned-byte elements, 1 dimension (count).</summary>
    public const uint LabelsMagic = 0x00000801;

    /// <summary>Reads an images file: (count, rows, columns, pixels count×rows×columns).</summary>
    public static (int Count, int Rows, int Columns, byte[] Pixels) ReadImages(string path)
    {
        var (dimensions, data) = Read(path, ImagesMagic, "images (unsigned bytes, 3 dimensions)");
        return (dimensions[0], dimensions[1], dimensions[2], data);
    }

    /// <summary>Reads a labels file, checking each label is below <paramref name="classes"/>.</summary>
    public static int[] ReadLabels(string path, int classes)
    {
        var (_, data) = Read(path, LabelsMagic, "labels (unsigned bytes, 1 dimension)");
        var labels = new int[data.Length];
        for (var i = 0; i < data.Length; i++)
        {
            if (data[i] >= classes)
            {
                throw new DataException($"{path}: label {i} is {data[i]}, outside 0..{classes - 1}");
            }

            labels[i] = data[i];
        }

        return labels;
    }

    private static (int[] Dimensions, byte[] Data) Read(string path, uint expectedMagic, string what)
    {
        var compressed = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase);
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
            using Stream stream = compressed ? new GZipStream(file, CompressionMode.Decompress) : file;
            var bytesDescription = compressed ? "bytes decompressed" : "bytes";

            Span<byte> magicBytes = stackalloc byte[4];
            var magicRead = stream.ReadAtLeast(magicBytes, 4, throwOnEndOfStream: false);
            if (magicRead < 4)
            {
                throw new DataException($"{path}: holds {magicRead} {bytesDescription}, too short for an IDX header");
            }

            var magic = BinaryPrimitives.ReadUInt32BigEndian(magicBytes);
            if (magic != expectedMagic)
            {
                var hint = !compressed && magicBytes[0] == 0x1F && magicBytes[1] == 0x8B
                    ? "; the file is gzip-compressed: give it a .gz name"
                    : $"; expected 0x{expectedMagic:X8}, the IDX magic of {what}";
                throw new DataException($"{path}: wrong magic number 0x{magic:X8}{hint}");
            }

            var rank = (int)(magic & 0xFF);
            var header = new byte[4 * rank];
            var headerRead = stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
            if (headerRead < header.Length)
            {
                throw new DataException($"{path}: truncated header: {4 + headerRead} {bytesDescription}, the {rank} dimensions need {4 + header.Length}");
            }

            var dimensions = new int[rank];
            long elements = 1;
            for (var d = 0; d < rank; d++)
            {
                var size = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4 * d));
                if (size == 0 || size > int.MaxValue)
                {
                    throw new DataException($"{path}: dimension {d} of the header is {size}; IDX data here needs sizes in 1..{int.MaxValue}");
                }

                dimensions[d] = (int)size;
                elements *= size;
                if (elements > Array.MaxLength)
                {
                    throw new DataException($"{path}: the header's dimensions {string.Join('×', dimensions.Take(d + 1))} exceed the largest array .NET can hold");
                }
            }

            var headerBytes = 4 + header.Length;
            // What the file can hold, checked before anything of the claimed size is allocated: a raw file holds exactly
            // its length; a gzip file at most MaxDeflateRatio times its length (and the read below allocates only as the
            // decompressed data arrives, so a gzip that lies within that bound costs no more than its real content).
            var available = compressed ? BoundedRead.MaxDecompressed(file.Length) : file.Length - headerBytes;
            if (elements > available)
            {
                throw new DataException(compressed
                    ? $"{path}: the header ({string.Join('×', dimensions)}) promises {headerBytes + elements} bytes decompressed, more than a {file.Length}-byte gzip file can hold; the file is corrupt or not this dataset"
                    : $"{path}: truncated: the header ({string.Join('×', dimensions)}) promises {headerBytes + elements} bytes, the file holds {file.Length}");
            }

            var data = BoundedRead.ReadUpTo(stream, elements);
            if (data.Length < elements)
            {
                throw new DataException(
                    $"{path}: truncated: the header ({string.Join('×', dimensions)}) promises {headerBytes + elements} {bytesDescription}, the file holds {headerBytes + data.Length}");
            }

            var extra = CountRemaining(stream);
            if (extra > 0)
            {
                throw new DataException(
                    $"{path}: the header ({string.Join('×', dimensions)}) promises {headerBytes + elements} {bytesDescription}, the file holds {headerBytes + elements + extra} ({extra} extra)");
            }

            return (dimensions, data);
        }
        catch (InvalidDataException e)
        {
            throw new DataException($"{path}: not a valid gzip file ({e.Message})");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataException($"{path}: cannot be read: {e.Message}");
        }
    }

    private static long CountRemaining(Stream stream)
    {
        var buffer = new byte[1 << 16];
        long total = 0;
        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            total += read;
        }

        return total;
    }
}
