using System.IO.Compression;
using System.Text;
using CheapConv.IO;
using Xunit;

namespace CheapConv.Tests.IO;

/// <summary>
/// NpzReader against files NumPy wrote (tests/fixtures/npz_reader_sample*.npz, from make_fixtures.py), against
/// NpyWriter, and against hand-made malformed archives, each of which must be refused with a message naming
/// the file, the entry and what is wrong.
/// </summary>
public sealed class NpzReaderTests : IDisposable
{
    private readonly string directory = Path.Combine(Path.GetTempPath(), $"cheapconv-npz-{Guid.NewGuid():N}");

    public NpzReaderTests() => Directory.CreateDirectory(directory);

    public void Dispose() => Directory.Delete(directory, recursive: true);

    [Theory]
    [InlineData("npz_reader_sample.npz")]
    [InlineData("npz_reader_sample_deflated.npz")]
    public void Read_NumpyWrittenSample_ReturnsEveryDtypeShapeAndValue(string file)
    {
        var npz = NpzReader.Read(FixtureLayout.PathOf(file));

        Assert.Equal(["f4", "f8", "i8", "i4", "scalar", "empty", "cube", "dotted.name.weight"], npz.Names);

        var f4 = npz["f4"];
        Assert.Equal(NpyDataType.Float32, f4.DataType);
        Assert.Equal([2, 3], f4.Shape);
        Assert.Equal([-1f, -0.5f, 0f, 0.5f, 1f, 1.5f], f4.AsFloat32());

        var f8 = npz["f8"];
        Assert.Equal(NpyDataType.Float64, f8.DataType);
        Assert.Equal([3], f8.Shape);
        Assert.Equal([1.0 / 3.0, -2.5e-300, 1e300], f8.AsFloat64());

        var i8 = npz["i8"];
        Assert.Equal(NpyDataType.Int64, i8.DataType);
        Assert.Equal([2, 2], i8.Shape);
        Assert.Equal([-3L, 1L << 40, 7L, -(1L << 62)], i8.AsInt64());

        var i4 = npz["i4"];
        Assert.Equal(NpyDataType.Int32, i4.DataType);
        Assert.Equal([int.MinValue, 0, int.MaxValue], (int[])i4.Data);
        Assert.Equal([(long)int.MinValue, 0L, int.MaxValue], i4.AsInt64());

        var scalar = npz["scalar"];
        Assert.Empty(scalar.Shape);
        Assert.Equal(42.5, scalar.Scalar());

        var empty = npz["empty"];
        Assert.Equal([0, 4], empty.Shape);
        Assert.Equal(0, empty.Length);

        var cube = npz["cube"];
        Assert.Equal([2, 3, 4], cube.Shape);
        Assert.Equal(Enumerable.Range(0, 24).Select(v => (float)v), cube.AsFloat32());

        Assert.Equal([1f, -1f], npz["dotted.name.weight"].AsFloat32());
    }

    [Theory]
    [InlineData(CompressionLevel.NoCompression)]
    [InlineData(CompressionLevel.Optimal)]
    public void Read_NpyWriterOutputInAnArchive_RoundTrips(CompressionLevel compression)
    {
        float[] values = [1.5f, -0f, float.Epsilon, float.MaxValue, -3.25f, 7f, float.NegativeInfinity, 0.1f, 2f, 3f, 4f, 5f];
        var npyPath = Path.Combine(directory, "a.npy");
        NpyWriter.Write(npyPath, values, [2, 3, 2]);

        var single = NpzReader.ReadNpy(npyPath);
        Assert.Equal("a", single.Name);
        Assert.Equal([2, 3, 2], single.Shape);
        Assert.Equal(values, single.AsFloat32());
        Assert.Equal(values, NpzReader.ReadFloat32Npy(npyPath).Data);

        var npzPath = WriteNpz(compression, ("model.a.npy", File.ReadAllBytes(npyPath)), ("b.npy", File.ReadAllBytes(npyPath)));
        var npz = NpzReader.Read(npzPath);
        Assert.Equal(["model.a", "b"], npz.Names);
        Assert.Equal(values, npz["model.a"].AsFloat32());
        Assert.Equal(["a"], npz.WithPrefix("model.").Keys);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void ReadNpy_Version2And3Headers_AreRead(byte major)
    {
        var bytes = Npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", Longs(5, -6), major);
        var array = NpzReader.ReadNpy(new MemoryStream(bytes), "memory", "v");
        Assert.Equal([5L, -6L], array.AsInt64());
    }

    [Fact]
    public void ReadNpy_HeaderVariants_AreAccepted()
    {
        // Double quotes, no trailing comma, keys in another order, Python 2's long suffix: all valid dicts.
        var bytes = Npy("{\"shape\": (1L, 2), \"fortran_order\": False, \"descr\": \"<f4\"}", Floats(1, 2));
        Assert.Equal([1, 2], NpzReader.ReadNpy(new MemoryStream(bytes), "memory", "v").Shape);
    }

    public static TheoryData<string> MalformedCases() => [.. Malformed.Keys];

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Read_MalformedEntry_IsRefusedNamingFileEntryAndFault(string fault)
    {
        var (entry, bytes, message) = Malformed[fault];
        var path = WriteNpz(CompressionLevel.NoCompression, ("fine.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", Floats(1))), (entry, bytes));

        var error = Assert.Throws<InvalidDataException>(() => NpzReader.Read(path));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains($"entry '{entry}'", error.Message, StringComparison.Ordinal);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    /// <summary>Fault → (entry name, entry bytes, a fragment the message must contain).</summary>
    private static readonly Dictionary<string, (string Entry, byte[] Bytes, string Message)> Malformed = new()
    {
        ["bad magic"] = ("x.npy", [(byte)'N', .. Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", Floats(1))[1..]], "magic string"),
        ["empty entry"] = ("x.npy", [], "magic string"),
        ["big-endian"] = ("x.npy", Npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", Floats(1)), "unsupported dtype '>f4'"),
        ["half"] = ("x.npy", Npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", Floats(1)), "unsupported dtype '<f2'"),
        ["bool"] = ("x.npy", Npy("{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }", Floats(1)), "unsupported dtype '|b1'"),
        ["unsigned"] = ("x.npy", Npy("{'descr': '<u4', 'fortran_order': False, 'shape': (1,), }", Floats(1)), "unsupported dtype '<u4'"),
        ["structured"] = ("x.npy", Npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", Floats(1)), "structured arrays are not supported"),
        ["fortran order"] = ("x.npy", Npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", Floats(1, 2, 3, 4, 5, 6)), "Fortran-order"),
        ["truncated data"] = ("x.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", Floats(1, 2, 3, 4, 5)), "truncated: shape (2, 3) needs 24 bytes of data but 20 follow"),
        ["trailing data"] = ("x.npy", Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", [.. Doubles(1), 0, 0]), "2 bytes follow the 8 bytes of data"),
        ["truncated header"] = ("x.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", [])[..20], "header length field says"),
        ["huge header length"] = ("x.npy", [0x93, .. "NUMPY"u8.ToArray(), 2, 0, 0xFF, 0xFF, 0xFF, 0xFF], "header length field says 4294967295 bytes"),
        ["version 4"] = ("x.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", Floats(1), 4), "format version 4.0 is not supported"),
        ["missing shape"] = ("x.npy", Npy("{'descr': '<f4', 'fortran_order': False, }", Floats(1)), "missing shape"),
        ["extra key"] = ("x.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1, }", Floats(1)), "unexpected value"),
        ["unknown key"] = ("x.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'order': 'C', }", Floats(1)), "unexpected order"),
        ["repeated key"] = ("x.npy", Npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", Floats(1)), "appears twice"),
        ["negative dimension"] = ("x.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", Floats(1)), "non-negative integer dimension"),
        ["huge shape"] = ("x.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2000000000, 2000000000), }", Floats(1)), "more elements than an array can"),
        ["text after the dict"] = ("x.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", Floats(1)), "unexpected text after the closing brace"),
        ["no dict"] = ("x.npy", Npy("descr: <f4", Floats(1)), "expected '{'"),
        ["shape not a tuple"] = ("x.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': 'two', }", Floats(1)), "shape is not a tuple of integers"),
        ["not a .npy entry"] = ("readme.txt", Encoding.ASCII.GetBytes("hello"), "not a .npy entry"),
        ["duplicate name"] = ("fine.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", Floats(1)), "a second entry named 'fine'"),
    };

    [Fact]
    public void Read_FileThatIsNotAZipArchive_IsRefusedNamingTheFile()
    {
        var path = Path.Combine(directory, "plain.npy");
        NpyWriter.Write(path, [1f], [1]);

        var error = Assert.Throws<InvalidDataException>(() => NpzReader.Read(path));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("is not a .npz (zip) archive", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadNpy_TrailingBytesOnAStreamOfUnknownLength_AreRefused()
    {
        byte[] bytes = [.. Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", Floats(1)), 9];
        var error = Assert.Throws<InvalidDataException>(() => NpzReader.ReadNpy(new MemoryStream(bytes), "memory.npy", "m"));
        Assert.Contains("memory.npy: bytes follow the 4 bytes of data", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadNpy_TruncatedStreamOfUnknownLength_IsRefused()
    {
        var bytes = Npy("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", Floats(1, 2));
        var error = Assert.Throws<InvalidDataException>(() => NpzReader.ReadNpy(new MemoryStream(bytes), "memory.npy", "m"));
        Assert.Contains("memory.npy: truncated: shape (3) needs 12 bytes of data but 8 follow", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Indexer_MissingName_NamesTheFileAndSimilarNames()
    {
        var npz = NpzReader.Read(FixtureLayout.PathOf("npz_reader_sample.npz"));

        var error = Assert.Throws<KeyNotFoundException>(() => npz["dotted.name.bias"]);

        Assert.Contains("npz_reader_sample.npz holds no array 'dotted.name.bias'", error.Message, StringComparison.Ordinal);
        Assert.Contains("similar: dotted.name.weight", error.Message, StringComparison.Ordinal);
        Assert.False(npz.Contains("dotted.name.bias"));
        Assert.True(npz.Contains("dotted.name.weight"));
    }

    [Fact]
    public void Accessors_WrongElementType_AreRefusedNamingTheArray()
    {
        var npz = NpzReader.Read(FixtureLayout.PathOf("npz_reader_sample.npz"));

        Assert.Contains("'f8' is Float64, not Float32", Assert.Throws<InvalidOperationException>(() => npz["f8"].AsFloat32()).Message, StringComparison.Ordinal);
        Assert.Contains("'f4' is Float32, not an integer array", Assert.Throws<InvalidOperationException>(() => npz["f4"].AsInt64()).Message, StringComparison.Ordinal);
        Assert.Contains("'i8' is Int64, not a floating-point array", Assert.Throws<InvalidOperationException>(() => npz["i8"].AsFloat64()).Message, StringComparison.Ordinal);
        Assert.Contains("not a single element", Assert.Throws<InvalidOperationException>(() => npz["f4"].Scalar()).Message, StringComparison.Ordinal);
        // float32 widens to double exactly.
        Assert.Equal([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5], npz["f4"].AsFloat64());
    }

    [Fact]
    public void ReadFloat32Npy_Float64File_IsRefusedWithTheType()
    {
        var path = Path.Combine(directory, "d.npy");
        File.WriteAllBytes(path, Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", Doubles(1)));

        var error = Assert.Throws<InvalidDataException>(() => NpzReader.ReadFloat32Npy(path));

        Assert.Contains($"{path}: only float32", error.Message, StringComparison.Ordinal);
        Assert.Contains("Float64", error.Message, StringComparison.Ordinal);
    }

    private string WriteNpz(CompressionLevel compression, params (string Entry, byte[] Bytes)[] entries)
    {
        var path = Path.Combine(directory, $"test-{Guid.NewGuid():N}.npz");
        using (var archive = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            foreach (var (entry, bytes) in entries)
            {
                using var stream = archive.CreateEntry(entry, compression).Open();
                stream.Write(bytes);
            }
        }

        return path;
    }

    /// <summary>A .npy file with the given header text (padded with spaces and a newline like NumPy does).</summary>
    internal static byte[] Npy(string header, byte[] data, byte major = 1)
    {
        var lengthSize = major == 1 ? 2 : 4;
        var padded = header.PadRight((((8 + lengthSize + header.Length + 1 + 63) / 64) * 64) - 8 - lengthSize - 1) + "\n";
        var bytes = new List<byte> { 0x93 };
        bytes.AddRange("NUMPY"u8.ToArray());
        bytes.Add(major);
        bytes.Add(0);
        bytes.AddRange(major == 1 ? BitConverter.GetBytes((ushort)padded.Length) : BitConverter.GetBytes((uint)padded.Length));
        bytes.AddRange(Encoding.ASCII.GetBytes(padded));
        bytes.AddRange(data);
        return [.. bytes];
    }

    internal static byte[] Floats(params float[] values) => [.. values.SelectMany(BitConverter.GetBytes)];

    private static byte[] Doubles(params double[] values) => [.. values.SelectMany(BitConverter.GetBytes)];

    private static byte[] Longs(params long[] values) => [.. values.SelectMany(BitConverter.GetBytes)];
}
