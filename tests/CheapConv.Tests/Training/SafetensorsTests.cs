using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Training;

/// <summary>The safetensors writer and reader: layout, round trip, atomic writes and every refusal.</summary>
public sealed class SafetensorsTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"cheapconv-safetensors-{Guid.NewGuid():N}");

    public SafetensorsTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static readonly float[] First = [1.5f, -2.25f, float.Epsilon, -0f, 3.4e38f, 1e-20f];
    private static readonly float[] Second = [0.1f, 0.2f, 0.3f];

    private string WriteSample(string name = "sample.safetensors")
    {
        var path = Path.Combine(_directory, name);
        SafetensorsFile.Write(path,
            [new("conv1.weight", [2, 3], () => First), new("bn1.running_mean", [3], () => Second), new("empty", [0, 4], () => [])],
            new Dictionary<string, string> { ["format"] = "test", ["note"] = "ünïcode" });
        return path;
    }

    [Fact]
    public void Write_Read_RoundTripsBitsShapesAndMetadata()
    {
        var content = SafetensorsFile.Read(WriteSample());
        Assert.Equal(["conv1.weight", "bn1.running_mean", "empty"], content.Tensors.Keys);
        Assert.Equal([2, 3], content.Tensors["conv1.weight"].Shape);
        Assert.Equal(First.Select(BitConverter.SingleToInt32Bits), content.Tensors["conv1.weight"].Data.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(Second, content.Tensors["bn1.running_mean"].Data);
        Assert.Empty(content.Tensors["empty"].Data);
        Assert.Equal("ünïcode", content.Metadata["note"]);
    }

    [Fact]
    public void Write_FollowsTheSafetensorsLayout()
    {
        var bytes = File.ReadAllBytes(WriteSample());
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, headerLength % 8);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, headerLength).TrimEnd(' '))!.AsObject();
        Assert.Equal("F32", (string)header["conv1.weight"]!["dtype"]!);
        Assert.Equal("[0,24]", header["conv1.weight"]!["data_offsets"]!.ToJsonString());
        Assert.Equal("[24,36]", header["bn1.running_mean"]!["data_offsets"]!.ToJsonString());
        Assert.Equal("test", (string)header["__metadata__"]!["format"]!);
        Assert.Equal(8 + headerLength + 36, bytes.Length);
        Assert.Equal(-2.25f, BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(8 + headerLength + 4)));
    }

    [Fact]
    public void Write_LeavesNoTemporaryFile()
    {
        WriteSample();
        Assert.Single(Directory.GetFiles(_directory));
    }

    [Fact]
    public void Write_FailingMidway_KeepsTheExistingFileAndRemovesTheTemporary()
    {
        var path = WriteSample();
        var before = File.ReadAllBytes(path);
        var error = Assert.Throws<InvalidOperationException>(() => SafetensorsFile.Write(path,
            [new("a", [1000], () => new float[1000]), new("b", [2], () => throw new InvalidOperationException("device lost"))],
            new Dictionary<string, string>()));
        Assert.Equal("device lost", error.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(_directory));
    }

    private void AssertRefused(byte[] bytes, string expected)
    {
        var path = Path.Combine(_directory, "bad.safetensors");
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<CheckpointException>(() => SafetensorsFile.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    private static byte[] WithHeader(string json, int dataBytes)
    {
        var header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        return bytes;
    }

    [Fact]
    public void Read_TooShortForTheLength_IsRefused() => AssertRefused([1, 2, 3], "too short");

    [Fact]
    public void Read_HeaderLengthBeyondTheFile_IsRefused()
    {
        var bytes = File.ReadAllBytes(WriteSample());
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)bytes.Length);
        AssertRefused(bytes, "runs past the end of the file");
    }

    [Fact]
    public void Read_HeaderNotJson_IsRefused() => AssertRefused(WithHeader("{\"a\": [1, 2", 0), "not valid JSON");

    [Fact]
    public void Read_TruncatedData_IsRefused()
    {
        var bytes = File.ReadAllBytes(WriteSample());
        AssertRefused(bytes[..^5], "outside the");
    }

    [Fact]
    public void Read_TrailingBytes_AreRefused()
    {
        var bytes = File.ReadAllBytes(WriteSample());
        AssertRefused([.. bytes, 0, 0, 0, 0], "the file holds 40");
    }

    [Fact]
    public void Read_OffsetsOutOfRange_AreRefused() =>
        AssertRefused(WithHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8000]}}", 8), "outside the 8 bytes");

    [Fact]
    public void Read_ShapeNotMatchingOffsets_IsRefused() =>
        AssertRefused(WithHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "needs 12 bytes");

    [Fact]
    public void Read_WrongDtype_IsRefused() =>
        AssertRefused(WithHeader("{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8), "dtype F16");

    [Fact]
    public void Read_OverlappingTensors_AreRefused() =>
        AssertRefused(WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "overlap");
}
