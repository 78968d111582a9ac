using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CheapConv.Training;

/// <summary>
/// A checkpoint file that cannot be used: corrupt, truncated, of another architecture, or not ours. The message is one line
/// (control characters quoted from the file are escaped: <see cref="IO.UntrustedText"/>).
/// </summary>
public sealed class CheckpointException(string message) : Exception(IO.UntrustedText.OneLine(message));

/// <summary>One float32 tensor to write: its data is fetched when its turn comes (a device download), so a large model is never on the host twice.</summary>
/// <param name="Name">The tensor's name (PyTorch state-dict style).</param>
/// <param name="Shape">Its sizes, outermost first.</param>
/// <param name="Data">Produces the values, row-major; called once, while the file is written.</param>
internal sealed record SafetensorsTensor(string Name, IReadOnlyList<int> Shape, Func<float[]> Data);

/// <summary>What a safetensors file holds: its string metadata and its tensors by name, in file order.</summary>
internal sealed record SafetensorsContent(IReadOnlyDictionary<string, string> Metadata, IReadOnlyDictionary<string, (int[] Shape, float[] Data)> Tensors);

/// <summary>
/// The safetensors format (what PyTorch, JAX and friends load without code execution): an 8-byte little-endian
/// header length N, N bytes of UTF-8 JSON mapping each tensor name to {"dtype", "shape", "data_offsets": [begin,
/// end]} (offsets into the data that follows the header) plus an optional "__metadata__" object of strings, then
/// the raw little-endian data. Only F32 is written and read here. The header is padded with spaces to a multiple
/// of 8 bytes, as the reference implementation does, so the data is aligned. Files written here carry the SHA-256 of
/// their data section in the metadata (<see cref="ChecksumKey"/>).
/// </summary>
internal static class SafetensorsFile
{
    /// <summary>The key of the metadata object in the header.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>
    /// The metadata entry that <see cref="Write"/> adds: the SHA-256 (lower-case hex) of the whole data section, which
    /// <see cref="Read"/> verifies when present, so a bit flipped in a tensor is a refusal instead of a silently wrong weight.
    /// </summary>
    public const string ChecksumKey = "data_sha256";

    // A header is a few kilobytes per hundred tensors; anything near this is not a header (the reference
    // implementation's limit is the same 100 MB).
    private const long MaxHeaderBytes = 100_000_000;

    /// <summary>
    /// Writes the tensors, the metadata and the data's checksum to <paramref name="path"/> atomically: into a temporary file beside it,
    /// flushed to disk, then renamed over the target. If anything fails (a download, a full disk) the temporary
    /// file is removed and an existing file at <paramref name="path"/> is left as it was.
    /// </summary>
    public static void Write(string path, IReadOnlyList<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(metadata);
        var header = new JsonObject();
        if (metadata.Count > 0)
        {
            var meta = new JsonObject();
            foreach (var (key, value) in metadata)
            {
                meta[key] = value;
            }

            header[MetadataKey] = meta;
        }

        long offset = 0;
        var lengths = new long[tensors.Count];
        for (var i = 0; i < tensors.Count; i++)
        {
            var tensor = tensors[i];
            if (string.IsNullOrEmpty(tensor.Name) || tensor.Name == MetadataKey || header.ContainsKey(tensor.Name))
            {
                throw new ArgumentException($"tensor name '{tensor.Name}' is empty, reserved or used twice");
            }

            if (tensor.Shape.Any(size => size < 0))
            {
                throw new ArgumentException($"tensor {tensor.Name} has a negative size in [{string.Join(", ", tensor.Shape)}]");
            }

            lengths[i] = tensor.Shape.Aggregate(1L, (product, size) => checked(product * size));
            var end = checked(offset + (lengths[i] * sizeof(float)));
            header[tensor.Name] = new JsonObject
            {
                ["dtype"] = "F32",
                ["shape"] = new JsonArray([.. tensor.Shape.Select(size => (JsonNode)size)]),
                ["data_offsets"] = new JsonArray(offset, end),
            };
            offset = end;
        }

        // The data is fetched first (once per tensor, as it will be written) so that its SHA-256 can go into the header.
        var data = new float[tensors.Count][];
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            for (var i = 0; i < tensors.Count; i++)
            {
                data[i] = tensors[i].Data() ?? throw new InvalidOperationException($"tensor {tensors[i].Name} produced no data");
                if (data[i].LongLength != lengths[i])
                {
                    throw new ArgumentException($"tensor {tensors[i].Name} of shape [{string.Join(", ", tensors[i].Shape)}] needs {lengths[i]} values, got {data[i].LongLength}");
                }

                hash.AppendData(LittleEndianBytes(data[i]));
            }

            var meta = header[MetadataKey] as JsonObject ?? [];
            meta[ChecksumKey] = Convert.ToHexStringLower(hash.GetHashAndReset());
            header.Remove(MetadataKey);
            // The metadata first, as the reference writer puts it.
            var ordered = new JsonObject { [MetadataKey] = meta };
            foreach (var (key, value) in header.ToList())
            {
                header.Remove(key);
                ordered[key] = value;
            }

            header = ordered;
        }

        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = (json.Length + 7) / 8 * 8;
        var headerBytes = new byte[padded];
        json.CopyTo(headerBytes, 0);
        headerBytes.AsSpan(json.Length).Fill((byte)' ');

        RunFiles.WriteAtomically(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
            stream.Write(length);
            stream.Write(headerBytes);
            foreach (var values in data)
            {
                stream.Write(LittleEndianBytes(values));
            }
        });
    }

    /// <summary>
    /// Reads a whole file. Every way a file can be unusable is a <see cref="CheckpointException"/> naming the file
    /// and the defect: shorter than its header, a header length beyond the file, a header that is not JSON or not
    /// an object of tensors, a dtype other than F32, a shape that does not match its byte range, offsets outside
    /// the data, overlapping tensors, or bytes left over (a file cut short or padded with garbage).
    /// </summary>
    public static SafetensorsContent Read(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException($"{path}: cannot be read: {e.Message}");
        }

        if (bytes.Length < 8)
        {
            throw new CheckpointException($"{path}: {bytes.Length} bytes, too short for a safetensors file (an 8-byte header length comes first); the file is truncated or not a checkpoint");
        }

        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > (ulong)(bytes.Length - 8) || headerLength > MaxHeaderBytes)
        {
            throw new CheckpointException($"{path}: the header length {headerLength} runs past the end of the file ({bytes.Length} bytes); the file is truncated or not a safetensors checkpoint");
        }

        var dataStart = 8 + (int)headerLength;
        // JsonNode decodes strings lazily and would throw InvalidOperationException on invalid UTF-8 later, while the
        // header is walked (found by fuzzing): the whole header is checked first.
        if (!System.Text.Unicode.Utf8.IsValid(bytes.AsSpan(8, (int)headerLength)))
        {
            throw new CheckpointException($"{path}: the header is not valid UTF-8; the file is corrupt or not a safetensors checkpoint");
        }

        JsonObject header;
        try
        {
            header = JsonNode.Parse(bytes.AsSpan(8, (int)headerLength)) as JsonObject
                ?? throw new CheckpointException($"{path}: the header is not a JSON object");
        }
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException)
        {
            throw new CheckpointException($"{path}: the header is not valid JSON ({e.Message}); the file is corrupt or not a safetensors checkpoint");
        }

        var dataLength = bytes.LongLength - dataStart;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<(string Name, int[] Shape, long Begin, long End)>();
        try
        {
            foreach (var (name, node) in header)
            {
                if (name == MetadataKey)
                {
                    if (node is not JsonObject meta)
                    {
                        throw new CheckpointException($"{path}: {MetadataKey} is not an object of strings");
                    }

                    foreach (var (key, value) in meta)
                    {
                        metadata[key] = value is JsonValue v && v.TryGetValue<string>(out var text)
                            ? text
                            : throw new CheckpointException($"{path}: metadata entry '{key}' is not a string");
                    }

                    continue;
                }

                entries.Add(ParseEntry(path, name, node, dataLength));
            }
        }
        catch (ArgumentException e)
        {
            // JsonObject builds its dictionary lazily, while it is walked: a key given twice (in the header, the metadata or
            // an entry) surfaces here (found by fuzzing).
            throw new CheckpointException($"{path}: the header names a key twice ({e.Message}); the file is corrupt");
        }

        // Tensors must not share bytes; sorted by start, each must begin at or after the previous end.
        var ordered = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        for (var i = 1; i < ordered.Count; i++)
        {
            if (ordered[i].Begin < ordered[i - 1].End)
            {
                throw new CheckpointException($"{path}: tensors {ordered[i - 1].Name} and {ordered[i].Name} overlap in the data section; the file is corrupt");
            }
        }

        var used = ordered.Count == 0 ? 0 : ordered[^1].End;
        if (used != dataLength)
        {
            throw new CheckpointException($"{path}: the tensors cover {used} bytes of data but the file holds {dataLength} after the header; the file is corrupt");
        }

        if (metadata.TryGetValue(ChecksumKey, out var expected))
        {
            var actual = Convert.ToHexStringLower(SHA256.HashData(bytes.AsSpan(dataStart)));
            if (!string.Equals(actual, expected, StringComparison.Ordinal))
            {
                throw new CheckpointException($"{path}: the tensor data does not match its SHA-256 checksum ({ChecksumKey} {expected}, the data hashes to {actual}); the file is corrupt");
            }
        }

        var tensors = new Dictionary<string, (int[] Shape, float[] Data)>(StringComparer.Ordinal);
        foreach (var (name, shape, begin, end) in entries)
        {
            var values = new float[(end - begin) / sizeof(float)];
            var source = bytes.AsSpan(dataStart + (int)begin, (int)(end - begin));
            if (BitConverter.IsLittleEndian)
            {
                source.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
            }
            else
            {
                for (var j = 0; j < values.Length; j++)
                {
                    values[j] = BinaryPrimitives.ReadSingleLittleEndian(source[(j * 4)..]);
                }
            }

            tensors[name] = (shape, values);
        }

        return new SafetensorsContent(metadata, tensors);
    }

    private static (string Name, int[] Shape, long Begin, long End) ParseEntry(string path, string name, JsonNode? node, long dataLength)
    {
        if (node is not JsonObject entry)
        {
            throw new CheckpointException($"{path}: header entry '{name}' is not a tensor description");
        }

        var dtype = entry["dtype"] is JsonValue d && d.TryGetValue<string>(out var text) ? text : null;
        if (dtype != "F32")
        {
            throw new CheckpointException($"{path}: tensor {name} has dtype {dtype ?? "(none)"}; only F32 checkpoints are supported");
        }

        var shape = ReadIntegers(entry["shape"]);
        var offsets = ReadIntegers(entry["data_offsets"]);
        if (shape is null || shape.Any(s => s is < 0 or > int.MaxValue))
        {
            throw new CheckpointException($"{path}: tensor {name} has no valid shape");
        }

        if (offsets is not { Length: 2 } || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength)
        {
            throw new CheckpointException(
                $"{path}: tensor {name} has data_offsets {(offsets is null ? "(none)" : "[" + string.Join(", ", offsets) + "]")} outside the {dataLength} bytes of data; the file is truncated or corrupt");
        }

        // Checked arithmetic: a shape such as [2^30, 2^30, 4] must not wrap around to a byte count that matches the offsets.
        long bytes;
        try
        {
            bytes = shape.Aggregate((long)sizeof(float), (product, size) => checked(product * size));
        }
        catch (OverflowException)
        {
            throw new CheckpointException($"{path}: tensor {name} has an impossible shape [{string.Join(", ", shape)}]: its size overflows 64 bits");
        }

        if (bytes != offsets[1] - offsets[0])
        {
            throw new CheckpointException($"{path}: tensor {name} of shape [{string.Join(", ", shape)}] needs {bytes} bytes, its offsets span {offsets[1] - offsets[0]}");
        }

        return (name, [.. shape.Select(s => (int)s)], offsets[0], offsets[1]);
    }

    private static long[]? ReadIntegers(JsonNode? node)
    {
        if (node is not JsonArray array)
        {
            return null;
        }

        var values = new long[array.Count];
        for (var i = 0; i < values.Length; i++)
        {
            if (array[i] is not JsonValue value || !value.TryGetValue<long>(out values[i]))
            {
                return null;
            }
        }

        return values;
    }

    private static ReadOnlySpan<byte> LittleEndianBytes(float[] data)
    {
        if (BitConverter.IsLittleEndian)
        {
            return MemoryMarshal.AsBytes(data.AsSpan());
        }

        var buffer = new byte[data.Length * sizeof(float)];
        for (var i = 0; i < data.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(i * 4), data[i]);
        }

        return buffer;
    }
}
