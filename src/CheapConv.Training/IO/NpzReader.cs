using System.IO.Compression;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace CheapConv.IO;

/// <summary>The element types <see cref="NpzReader"/> accepts (NumPy descr strings in the comments).</summary>
internal enum NpyDataType
{
    /// <summary>'&lt;f4': little-endian IEEE single.</summary>
    Float32,

    /// <summary>'&lt;f8': little-endian IEEE double (kept as double; never narrowed silently).</summary>
    Float64,

    /// <summary>'&lt;i4': little-endian 32-bit signed integer.</summary>
    Int32,

    /// <summary>'&lt;i8': little-endian 64-bit signed integer.</summary>
    Int64,
}

/// <summary>
/// One array read from a .npy file or a .npz entry: its name, shape (C order) and data in its own element
/// type. The accessors widen losslessly (float32 → double, int32 → long) and refuse anything else with a
/// message naming the array, so a float64 reference can never be mistaken for float32 data.
/// </summary>
internal sealed class NpyArray
{
    internal NpyArray(string source, string name, NpyDataType dataType, int[] shape, Array data)
    {
        Source = source;
        Name = name;
        DataType = dataType;
        Shape = shape;
        Data = data;
    }

    /// <summary>The file (and entry) the array came from, for messages.</summary>
    public string Source { get; }

    /// <summary>The array's name: the .npz entry name without ".npy", or the .npy file name.</summary>
    public string Name { get; }

    /// <summary>The element type as stored.</summary>
    public NpyDataType DataType { get; }

    /// <summary>The dimensions, outermost first; empty for a 0-d (scalar) array.</summary>
    public IReadOnlyList<int> Shape { get; }

    /// <summary>The elements in C order: a float[], double[], int[] or long[] according to <see cref="DataType"/>.</summary>
    public Array Data { get; }

    /// <summary>The number of elements (1 for a 0-d array).</summary>
    public int Length => Data.Length;

    /// <summary>The elements of a float32 array (the array itself, not a copy).</summary>
    /// <exception cref="InvalidOperationException">The array is not float32.</exception>
    public float[] AsFloat32() => Data as float[]
        ?? throw new InvalidOperationException($"{Source}: '{Name}' is {DataType}, not Float32; a float64 array is not narrowed silently (use AsFloat64)");

    /// <summary>The elements of a float32 or float64 array as doubles (float32 widened exactly; a copy).</summary>
    /// <exception cref="InvalidOperationException">The array holds integers.</exception>
    public double[] AsFloat64() => Data switch
    {
        double[] doubles => (double[])doubles.Clone(),
        float[] floats => Array.ConvertAll(floats, v => (double)v),
        _ => throw new InvalidOperationException($"{Source}: '{Name}' is {DataType}, not a floating-point array"),
    };

    /// <summary>The elements of an int32 or int64 array as longs (a copy).</summary>
    /// <exception cref="InvalidOperationException">The array holds floating-point values.</exception>
    public long[] AsInt64() => Data switch
    {
        long[] longs => (long[])longs.Clone(),
        int[] ints => Array.ConvertAll(ints, v => (long)v),
        _ => throw new InvalidOperationException($"{Source}: '{Name}' is {DataType}, not an integer array"),
    };

    /// <summary>The value of a one-element floating-point array (a 0-d loss, for instance).</summary>
    /// <exception cref="InvalidOperationException">The array does not hold exactly one floating-point element.</exception>
    public double Scalar()
    {
        var values = AsFloat64();
        return values.Length == 1
            ? values[0]
            : throw new InvalidOperationException($"{Source}: '{Name}' has shape ({string.Join(", ", Shape)}), not a single element");
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {DataType} ({string.Join(", ", Shape)})";
}

/// <summary>The arrays of one .npz file by name, in the archive's order.</summary>
internal sealed class NpzFile
{
    private readonly Dictionary<string, NpyArray> arrays;

    internal NpzFile(string path, List<NpyArray> ordered)
    {
        Path = path;
        Arrays = ordered;
        arrays = ordered.ToDictionary(a => a.Name, StringComparer.Ordinal);
    }

    /// <summary>The file the arrays were read from.</summary>
    public string Path { get; }

    /// <summary>Every array, in the order the archive lists them.</summary>
    public IReadOnlyList<NpyArray> Arrays { get; }

    /// <summary>The array names, in archive order.</summary>
    public IEnumerable<string> Names => Arrays.Select(a => a.Name);

    /// <summary>Whether the file holds an array of that name.</summary>
    public bool Contains(string name) => arrays.ContainsKey(name);

    /// <summary>The array of that name.</summary>
    /// <exception cref="KeyNotFoundException">No such array; the message names the file and similar names.</exception>
    public NpyArray this[string name]
    {
        get
        {
            if (arrays.TryGetValue(name, out var array))
            {
                return array;
            }

            // Point at names sharing the part before the last dot, where typos in state-dict names usually are.
            var stem = name.Contains('.', StringComparison.Ordinal) ? name[..name.LastIndexOf('.')] : name;
            var similar = Arrays.Select(a => a.Name).Where(n => n.StartsWith(stem, StringComparison.Ordinal)).Take(8).ToList();
            throw new KeyNotFoundException(
                $"{Path} holds no array '{name}' ({Arrays.Count} arrays" +
                (similar.Count > 0 ? $"; similar: {string.Join(", ", similar)})" : ")"));
        }
    }

    /// <summary>The arrays whose names start with <paramref name="prefix"/>, keyed by the rest of the name
    /// (e.g. "student.grad." gives the student's gradients under their state-dict names).</summary>
    public IReadOnlyDictionary<string, NpyArray> WithPrefix(string prefix) =>
        Arrays.Where(a => a.Name.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(a => a.Name[prefix.Length..], StringComparer.Ordinal);
}

/// <summary>
/// Reads NumPy .npz archives (numpy.savez, stored, and numpy.savez_compressed, deflated) and single .npy
/// files: format versions 1.0–3.0, C order, dtypes '&lt;f4', '&lt;f8', '&lt;i4', '&lt;i8'. Anything else —
/// a bad magic string, another dtype or byte order, Fortran order, a header that is not NumPy's dict
/// literal, data shorter or longer than the shape says — is refused with an <see cref="InvalidDataException"/>
/// naming the file and the entry, because a fixture read wrongly would make every comparison meaningless.
/// </summary>
internal static class NpzReader
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads every array of a .npz file.</summary>
    /// <exception cref="InvalidDataException">The file is not a zip archive of supported .npy entries.</exception>
    public static NpzFile Read(string path)
    {
        using var stream = File.OpenRead(path);
        ZipArchive archive;
        try
        {
            archive = new ZipArchive(stream, ZipArchiveMode.Read);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path} is not a .npz (zip) archive: {e.Message}", e);
        }

        using (archive)
        {
            try
            {
                return ReadEntries(path, stream, archive);
            }
            catch (InvalidDataException e)
            {
                // The archive's own complaints (a central directory that disagrees with itself) do not name the file, and
                // any message may quote the file's bytes: one line that names it.
                throw new InvalidDataException(UntrustedText.OneLine(e.Message.StartsWith(path, StringComparison.Ordinal) ? e.Message : $"{path}: {e.Message}"), e);
            }
        }
    }

    private static NpzFile ReadEntries(string path, Stream stream, ZipArchive archive)
    {
        var arrays = new List<NpyArray>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in archive.Entries)
        {
            var source = $"{path}, entry '{entry.FullName}'";
            if (!entry.FullName.EndsWith(".npy", StringComparison.Ordinal) || entry.FullName.Length == ".npy".Length)
            {
                throw new InvalidDataException($"{source}: not a .npy entry (a .npz holds only NAME.npy entries)");
            }

            var name = entry.FullName[..^".npy".Length];
            if (!names.Add(name))
            {
                throw new InvalidDataException($"{source}: a second entry named '{name}'");
            }

            // The zip's sizes are claims: an entry can hold no more than the archive's bytes (stored) or
            // MaxDeflateRatio times them (deflated). Within that, ReadNpy still allocates only as the data arrives.
            var limit = entry.CompressedLength == entry.Length ? stream.Length : BoundedRead.MaxDecompressed(stream.Length);
            if (entry.Length > limit || entry.CompressedLength > stream.Length)
            {
                throw new InvalidDataException(
                    $"{source}: the archive claims {entry.Length} bytes ({entry.CompressedLength} compressed), more than a {stream.Length}-byte file can hold; the file is corrupt");
            }

            using var entryStream = OpenEntry(entry, source);
            arrays.Add(ReadNpy(entryStream, source, name, entry.Length));
        }

        return new NpzFile(path, arrays);
    }

    /// <summary>Reads a single .npy file; the array is named after the file.</summary>
    /// <exception cref="InvalidDataException">The file is not a supported .npy array.</exception>
    public static NpyArray ReadNpy(string path)
    {
        using var stream = File.OpenRead(path);
        try
        {
            return ReadNpy(stream, path, System.IO.Path.GetFileNameWithoutExtension(path), stream.Length);
        }
        catch (InvalidDataException e)
        {
            // A message may quote the header (a dtype string, say): one line.
            throw new InvalidDataException(UntrustedText.OneLine(e.Message), e);
        }
    }

    /// <summary>Reads a float32 .npy file written by <see cref="NpyWriter.Write"/> (or NumPy); for tests and tools.</summary>
    /// <exception cref="InvalidDataException">The file is not a float32 .npy array.</exception>
    public static (float[] Data, int[] Shape) ReadFloat32Npy(string path)
    {
        var array = ReadNpy(path);
        return array.Data is float[] data
            ? (data, [.. array.Shape])
            : throw new InvalidDataException($"{path}: only float32 ('<f4') arrays are read here, this one is {array.DataType}");
    }

    /// <summary>
    /// Reads one .npy array from <paramref name="stream"/>, which must end where the array ends.
    /// <paramref name="source"/> names the file (and entry) in messages; <paramref name="length"/>, when known,
    /// is the stream's length, used to report truncation before allocating.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes are not a supported .npy array.</exception>
    public static NpyArray ReadNpy(Stream stream, string source, string name, long? length = null)
    {
        Span<byte> preamble = stackalloc byte[8];
        var got = stream.ReadAtLeast(preamble, preamble.Length, throwOnEndOfStream: false);
        if (got < Magic.Length || !preamble[..Magic.Length].SequenceEqual(Magic))
        {
            throw new InvalidDataException($"{source}: not a .npy array (it does not start with the magic string \\x93NUMPY)");
        }

        if (got < preamble.Length)
        {
            throw new InvalidDataException($"{source}: truncated: the file ends inside the format version");
        }

        var major = preamble[6];
        Encoding headerEncoding;
        int lengthFieldSize;
        switch (major)
        {
            case 1:
                lengthFieldSize = 2;
                headerEncoding = Encoding.Latin1;
                break;
            case 2:
            case 3:
                lengthFieldSize = 4;
                headerEncoding = major == 3 ? Encoding.UTF8 : Encoding.Latin1;
                break;
            default:
                throw new InvalidDataException($"{source}: .npy format version {major}.{preamble[7]} is not supported (1.0, 2.0, 3.0 are)");
        }

        // The version bytes were read with the magic; the header length field follows.
        Span<byte> lengthField = stackalloc byte[4];
        lengthField.Clear();
        ReadExactly(stream, lengthField[..lengthFieldSize], source, "the header length");
        var declaredHeaderLength = lengthFieldSize == 2
            ? BitConverter.ToUInt16(LittleEndian(lengthField[..2]))
            : BitConverter.ToUInt32(LittleEndian(lengthField));
        // NumPy itself refuses headers over 10,000 bytes by default; 1 MiB keeps a corrupt length from
        // allocating gigabytes while leaving room for any real header.
        if (declaredHeaderLength > (1 << 20) || (length is { } available && 8 + lengthFieldSize + declaredHeaderLength > available))
        {
            throw new InvalidDataException($"{source}: truncated or corrupt: the header length field says {declaredHeaderLength} bytes");
        }

        var headerLength = (int)declaredHeaderLength;

        var headerBytes = new byte[headerLength];
        ReadExactly(stream, headerBytes, source, $"the {headerLength}-byte header");
        var header = headerEncoding.GetString(headerBytes);
        var (dataType, fortranOrder, shape) = NpyHeader.Parse(header, source);
        if (fortranOrder)
        {
            throw new InvalidDataException($"{source}: Fortran-order arrays are not supported (write it with np.ascontiguousarray); header {header.Trim()}");
        }

        var count = 1L;
        foreach (var dimension in shape)
        {
            count *= dimension; // each factor < 2^31 and the running product <= Array.MaxLength: no overflow
            if (count > Array.MaxLength)
            {
                throw new InvalidDataException($"{source}: shape ({string.Join(", ", shape)}) holds more elements than an array can");
            }
        }

        var elementSize = dataType is NpyDataType.Float64 or NpyDataType.Int64 ? 8 : 4;
        var dataBytes = count * elementSize;
        var headerEnd = 8 + lengthFieldSize + headerLength;
        if (length is { } total && total != headerEnd + dataBytes)
        {
            throw new InvalidDataException(total < headerEnd + dataBytes
                ? $"{source}: truncated: shape ({string.Join(", ", shape)}) needs {dataBytes} bytes of data but {total - headerEnd} follow the header"
                : $"{source}: {total - headerEnd - dataBytes} bytes follow the {dataBytes} bytes of data that shape ({string.Join(", ", shape)}) needs");
        }

        Array data = dataType switch
        {
            NpyDataType.Float32 => ReadElements<float>(stream, (int)count, source, shape),
            NpyDataType.Float64 => ReadElements<double>(stream, (int)count, source, shape),
            NpyDataType.Int32 => ReadElements<int>(stream, (int)count, source, shape),
            _ => ReadElements<long>(stream, (int)count, source, shape),
        };

        if (length is null && stream.ReadByte() >= 0)
        {
            throw new InvalidDataException($"{source}: bytes follow the {dataBytes} bytes of data that shape ({string.Join(", ", shape)}) needs");
        }

        return new NpyArray(source, name, dataType, shape, data);
    }

    private static Stream OpenEntry(ZipArchiveEntry entry, string source)
    {
        try
        {
            return entry.Open();
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{source}: cannot be opened: {e.Message}", e);
        }
    }

    private static T[] ReadElements<T>(Stream stream, int count, string source, int[] shape)
        where T : unmanaged
    {
        // The length the shape claims (and the zip entry's size, another claim) is not allocated up front: the bytes are
        // read as they arrive, and only data that is really there becomes the array.
        var needed = (long)count * Unsafe.SizeOf<T>();
        byte[] raw;
        try
        {
            raw = BoundedRead.ReadUpTo(stream, needed);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{source}: the data cannot be read: {e.Message}", e);
        }

        if (raw.Length < needed)
        {
            throw new InvalidDataException($"{source}: truncated: shape ({string.Join(", ", shape)}) needs {needed} bytes of data but {raw.Length} follow the header");
        }

        var data = new T[count];
        raw.AsSpan().CopyTo(MemoryMarshal.AsBytes(data.AsSpan()));
        var bytes = MemoryMarshal.AsBytes(data.AsSpan());

        if (!BitConverter.IsLittleEndian)
        {
            // .npy data here is little-endian ('<' in the descr); swap each element in place.
            var size = bytes.Length / Math.Max(count, 1);
            for (var i = 0; i < bytes.Length; i += size)
            {
                bytes.Slice(i, size).Reverse();
            }
        }

        return data;
    }

    private static void ReadExactly(Stream stream, Span<byte> buffer, string source, string what)
    {
        var got = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        if (got < buffer.Length)
        {
            throw new InvalidDataException($"{source}: truncated: the file ends inside {what}");
        }
    }

    private static byte[] LittleEndian(ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        if (!BitConverter.IsLittleEndian)
        {
            Array.Reverse(copy);
        }

        return copy;
    }
}

/// <summary>
/// Parses the .npy header, a Python dict literal such as
/// <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (2, 3), }</c>, strictly: exactly those three keys,
/// string / boolean / tuple-of-integers values, nothing but padding after the closing brace.
/// </summary>
internal static class NpyHeader
{
    private static readonly Dictionary<string, NpyDataType> Supported = new(StringComparer.Ordinal)
    {
        ["<f4"] = NpyDataType.Float32,
        ["<f8"] = NpyDataType.Float64,
        ["<i4"] = NpyDataType.Int32,
        ["<i8"] = NpyDataType.Int64,
    };

    public static (NpyDataType DataType, bool FortranOrder, int[] Shape) Parse(string header, string source)
    {
        var reader = new Cursor(header, source);
        var values = new Dictionary<string, object>(StringComparer.Ordinal);
        reader.Expect('{');
        while (!reader.TryConsume('}'))
        {
            var key = reader.ReadString();
            reader.Expect(':');
            if (!values.TryAdd(key, reader.ReadValue()))
            {
                throw reader.Error($"the key '{key}' appears twice");
            }

            if (!reader.TryConsume(','))
            {
                reader.Expect('}');
                break;
            }
        }

        reader.ExpectPaddingOnly();

        var expected = new[] { "descr", "fortran_order", "shape" };
        var missing = expected.Where(k => !values.ContainsKey(k)).ToList();
        var unknown = values.Keys.Where(k => !expected.Contains(k)).ToList();
        if (missing.Count > 0 || unknown.Count > 0)
        {
            throw reader.Error($"the header must have exactly the keys descr, fortran_order, shape" +
                (missing.Count > 0 ? $"; missing {string.Join(", ", missing)}" : "") +
                (unknown.Count > 0 ? $"; unexpected {string.Join(", ", unknown)}" : ""));
        }

        if (values["descr"] is not string descr)
        {
            throw reader.Error("descr is not a plain dtype string (structured arrays are not supported)");
        }

        if (!Supported.TryGetValue(descr, out var dataType))
        {
            throw new InvalidDataException(
                $"{source}: unsupported dtype '{descr}' (supported: {string.Join(", ", Supported.Keys.Select(k => $"'{k}'"))}; big-endian and other types are refused)");
        }

        if (values["fortran_order"] is not bool fortranOrder)
        {
            throw reader.Error("fortran_order is not True or False");
        }

        if (values["shape"] is not int[] shape)
        {
            throw reader.Error("shape is not a tuple of integers");
        }

        return (dataType, fortranOrder, shape);
    }

    /// <summary>A position in the header text with the few token readers the dict literal needs.</summary>
    private sealed class Cursor(string text, string source)
    {
        private int position;

        public InvalidDataException Error(string message) =>
            new(UntrustedText.OneLine($"{source}: malformed .npy header ({message}): {text.TrimEnd()}"));

        public void Expect(char c)
        {
            if (!TryConsume(c))
            {
                throw Error(position < text.Length ? $"expected '{c}' at column {position} but found '{text[position]}'" : $"expected '{c}' but the header ends");
            }
        }

        public bool TryConsume(char c)
        {
            SkipSpace();
            if (position < text.Length && text[position] == c)
            {
                position++;
                return true;
            }

            return false;
        }

        public void ExpectPaddingOnly()
        {
            SkipSpace();
            if (position != text.Length)
            {
                throw Error($"unexpected text after the closing brace at column {position}");
            }
        }

        public string ReadString()
        {
            SkipSpace();
            if (position >= text.Length || (text[position] != '\'' && text[position] != '"'))
            {
                throw Error($"expected a quoted string at column {position}");
            }

            var quote = text[position];
            var end = text.IndexOf(quote, position + 1);
            if (end < 0)
            {
                throw Error($"unterminated string at column {position}");
            }

            var value = text[(position + 1)..end];
            position = end + 1;
            return value;
        }

        public object ReadValue()
        {
            SkipSpace();
            if (position >= text.Length)
            {
                throw Error("a value is missing");
            }

            switch (text[position])
            {
                case '\'' or '"':
                    return ReadString();
                case '(':
                    return ReadShape();
                case '[' or '{':
                    // A structured dtype's descr is a list; report it as an unsupported dtype.
                    var depth = 0;
                    var start = position;
                    do
                    {
                        depth += text[position] is '[' or '{' or '(' ? 1 : text[position] is ']' or '}' or ')' ? -1 : 0;
                        position++;
                    }
                    while (depth > 0 && position < text.Length);

                    return new StructuredValue(text[start..position]);
            }

            foreach (var (word, value) in new[] { ("True", true), ("False", false) })
            {
                if (string.CompareOrdinal(text, position, word, 0, word.Length) == 0)
                {
                    position += word.Length;
                    return value;
                }
            }

            throw Error($"unexpected value at column {position}");
        }

        private int[] ReadShape()
        {
            Expect('(');
            var dimensions = new List<int>();
            while (!TryConsume(')'))
            {
                SkipSpace();
                var start = position;
                while (position < text.Length && char.IsAsciiDigit(text[position]))
                {
                    position++;
                }

                if (start == position)
                {
                    throw Error($"expected a non-negative integer dimension at column {position}");
                }

                if (!int.TryParse(text.AsSpan(start, position - start), out var dimension))
                {
                    throw Error($"dimension {text[start..position]} is too large");
                }

                // Python 2 wrote long integers with an L suffix.
                if (position < text.Length && text[position] == 'L')
                {
                    position++;
                }

                dimensions.Add(dimension);
                if (!TryConsume(','))
                {
                    Expect(')');
                    break;
                }
            }

            return [.. dimensions];
        }

        private void SkipSpace()
        {
            while (position < text.Length && char.IsWhiteSpace(text[position]))
            {
                position++;
            }
        }
    }

    private sealed record StructuredValue(string Text);
}
