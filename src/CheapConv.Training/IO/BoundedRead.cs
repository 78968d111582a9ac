namespace CheapConv.IO;

/// <summary>
/// Reading what an untrusted header claims without trusting it: the claimed size is checked against what the file can
/// hold, and where that is not known exactly (a compressed stream) memory is allocated as the data arrives, never the
/// claimed amount up front. So a 26-byte file that claims gigabytes costs kilobytes and a one-line refusal.
/// </summary>
internal static class BoundedRead
{
    /// <summary>
    /// DEFLATE's largest expansion: the best a stream can do is a 258-byte match coded in 2 bits (a 1-bit length code and a
    /// 1-bit distance code), so deflate and gzip data decompress to at most 1032 times their size.
    /// </summary>
    public const long MaxDeflateRatio = 1032;

    /// <summary>Allocation starts here and doubles as data arrives.</summary>
    private const int InitialChunk = 1 << 20;

    /// <summary>The most a deflate/gzip stream of <paramref name="compressedBytes"/> bytes can decompress to.</summary>
    public static long MaxDecompressed(long compressedBytes) => compressedBytes > long.MaxValue / MaxDeflateRatio ? long.MaxValue : compressedBytes * MaxDeflateRatio;

    /// <summary>
    /// Reads up to <paramref name="count"/> bytes from <paramref name="stream"/> (fewer when it ends first: the caller
    /// compares the length with what it expected), growing the buffer as data arrives so that at most about twice the
    /// bytes really present are ever allocated.
    /// </summary>
    public static byte[] ReadUpTo(Stream stream, long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "more than an array can hold");
        }

        var buffer = new byte[Math.Min(count, InitialChunk)];
        var filled = 0;
        while (filled < count)
        {
            if (filled == buffer.Length)
            {
                Array.Resize(ref buffer, (int)Math.Min(count, 2L * buffer.Length));
            }

            var read = stream.Read(buffer, filled, buffer.Length - filled);
            if (read == 0)
            {
                break;
            }

            filled += read;
        }

        if (filled < buffer.Length)
        {
            Array.Resize(ref buffer, filled);
        }

        return buffer;
    }
}

/// <summary>
/// Messages that quote an untrusted file (a header's text, a tensor or entry name, a JSON parser's complaint) stay one
/// printable line: control characters — newlines above all, which would split a refusal over several lines — are shown
/// as \n, \r, \t or \xHH. Found by fuzzing: readers echoed mutated headers verbatim.
/// </summary>
internal static class UntrustedText
{
    /// <summary><paramref name="text"/> with every control character escaped.</summary>
    internal static string OneLine(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!text.Any(char.IsControl))
        {
            return text;
        }

        var result = new System.Text.StringBuilder(text.Length + 16);
        foreach (var c in text)
        {
            _ = c switch
            {
                '\n' => result.Append("\\n"),
                '\r' => result.Append("\\r"),
                '\t' => result.Append("\\t"),
                _ when char.IsControl(c) => result.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\x{(int)c:X2}"),
                _ => result.Append(c),
            };
        }

        return result.ToString();
    }
}
