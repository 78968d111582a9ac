namespace CheapConv.Data;

/// <summary>
/// Reads the binary version of CIFAR-10 and CIFAR-100: fixed-size records, each the label byte(s) followed by
/// 3072 pixel bytes — the 32×32 red plane, then green, then blue, rows top to bottom — which is already the
/// C×H×W layout of <see cref="ImageDataset"/>. CIFAR-10 records have one label (0..9); CIFAR-100 records have
/// the coarse label (0..19) and then the fine one (0..99), of which the fine label is kept.
/// </summary>
internal static class CifarReader
{
    public const int Side = 32;
    public const int Channels = 3;
    public const int ImageBytes = Channels * Side * Side;

    /// <summary>Appends the records of one file to the pixel and label lists.</summary>
    /// <param name="path">The .bin file.</param>
    /// <param name="labelBytes">1 for CIFAR-10; 2 (coarse, fine) for CIFAR-100.</param>
    /// <param name="labelLimits">The number of classes of each label byte.</param>
    public static void ReadInto(string path, int labelBytes, ReadOnlySpan<int> labelLimits, List<byte[]> pixelChunks, List<int> labels)
    {
        var recordBytes = labelBytes + ImageBytes;
        byte[] content;
        try
        {
            content = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataException($"{path}: cannot be read: {e.Message}");
        }

        if (content.Length == 0)
        {
            throw new DataException($"{path}: empty; a CIFAR binary file holds {recordBytes}-byte records");
        }

        if (content.Length % recordBytes != 0)
        {
            throw new DataException(
                $"{path}: {content.Length} bytes is not a whole number of {recordBytes}-byte records " +
                $"({content.Length / recordBytes} records and {content.Length % recordBytes} bytes over): truncated, or not this CIFAR format");
        }

        var records = content.Length / recordBytes;
        var pixels = new byte[records * ImageBytes];
        for (var r = 0; r < records; r++)
        {
            var record = content.AsSpan(r * recordBytes, recordBytes);
            for (var l = 0; l < labelBytes; l++)
            {
                if (record[l] >= labelLimits[l])
                {
                    var which = labelBytes == 1 ? "label" : l == 0 ? "coarse label" : "fine label";
                    throw new DataException($"{path}: record {r} has {which} {record[l]}, outside 0..{labelLimits[l] - 1}");
                }
            }

            labels.Add(record[labelBytes - 1]);
            record[labelBytes..].CopyTo(pixels.AsSpan(r * ImageBytes, ImageBytes));
        }

        pixelChunks.Add(pixels);
    }
}
