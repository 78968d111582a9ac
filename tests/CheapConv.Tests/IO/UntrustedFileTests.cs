using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using CheapConv.Data;
using CheapConv.IO;
using CheapConv.Tests.Data;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.IO;

/// <summary>
/// Files whose headers lie about their sizes: every reader checks a claimed size against what the file can hold before it
/// allocates (measured here: the bytes this thread allocates stay far below the claim), with checked arithmetic, and
/// refuses in one line naming the file and the fault.
/// </summary>
public sealed class UntrustedFileTests : IDisposable
{
    /// <summary>Far below every claim below (gigabytes) and far above what reading these small files needs.</summary>
    private const long AllocationBudget = 64L << 20;

    private readonly DataFiles _files = new();

    public void Dispose() => _files.Dispose();

    private static TException RefusedWithinBudget<TException>(Action read)
        where TException : Exception
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<TException>(read);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < AllocationBudget, $"reading allocated {allocated} bytes before refusing: {error.Message}");
        Assert.DoesNotContain('\n', error.Message);
        return error;
    }

    /// <summary>The issue's file: 16 header bytes claiming 2,700,144 images of 28×28, and 10 bytes of data.</summary>
    private static byte[] LyingIdx(int dataBytes = 10)
    {
        var bytes = new byte[16 + dataBytes];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, IdxReader.ImagesMagic);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), 2_700_144);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(8), 28);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(12), 28);
        Random.Shared.NextBytes(bytes.AsSpan(16));
        return bytes;
    }

    [Fact]
    public void Idx_26BytesClaiming2700144Images_IsRefusedWithoutAllocatingThem()
    {
        var path = _files.WriteBytes("train-images-idx3-ubyte", LyingIdx());
        Assert.Equal(26, new FileInfo(path).Length);
        var error = RefusedWithinBudget<DataException>(() => IdxReader.ReadImages(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("2700144×28×28 promises 2116912912 bytes, the file holds 26", error.Message.Replace("(", "").Replace(")", ""));
    }

    [Fact]
    public void IdxGz_26BytesClaiming2700144Images_IsRefusedBeforeReading()
    {
        var path = _files.WriteBytes("train-images-idx3-ubyte.gz", LyingIdx());
        var error = RefusedWithinBudget<DataException>(() => IdxReader.ReadImages(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("more than a", error.Message);
        Assert.Contains("gzip file can hold", error.Message);
    }

    [Fact]
    public void IdxGz_WhoseClaimFitsTheCompressedSizeButNotItsContent_AllocatesOnlyWhatArrives()
    {
        // 2.1 MB of incompressible data: a gzip that big could decompress to the claimed 2.1 GB, so only reading tells.
        var path = _files.WriteBytes("train-images-idx3-ubyte.gz", LyingIdx(2_100_000));
        Assert.True(new FileInfo(path).Length * BoundedRead.MaxDeflateRatio > 2_116_912_912L);
        var error = RefusedWithinBudget<DataException>(() => IdxReader.ReadImages(path));
        Assert.Contains("truncated", error.Message);
        Assert.Contains("the file holds 2100016", error.Message);
    }

    [Fact]
    public void IdxGz_WhoseTrailerLiesAboutTheDecompressedSize_IsNotTrusted()
    {
        // The gzip trailer's ISIZE (the last 4 bytes) claims 4 GB - 1; the reader never uses it, and the inflater's
        // check of it refuses the file.
        var path = _files.WriteBytes("train-images-idx3-ubyte.gz", LyingIdx());
        var bytes = File.ReadAllBytes(path);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4), uint.MaxValue);
        File.WriteAllBytes(path, bytes);
        var error = RefusedWithinBudget<DataException>(() => IdxReader.ReadImages(path));
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void Npz_WhoseZipSizeLies_IsRefusedNamingTheEntry()
    {
        // A stored entry whose sizes in the local header and the central directory both claim 1 GB.
        var npy = NpzReaderTests.Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (134217728,), }", NpzReaderTests.Floats(1, 2));
        var path = Path.Combine(_files.Root, "lying.npz");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            using var entry = zip.CreateEntry("x.npy", CompressionLevel.NoCompression).Open();
            entry.Write(npy);
        }

        var bytes = File.ReadAllBytes(path);
        PatchZipSizes(bytes, npy.Length, (1u << 30) + (uint)(npy.Length - 8));
        File.WriteAllBytes(path, bytes);
        var error = RefusedWithinBudget<InvalidDataException>(() => NpzReader.Read(path));
        Assert.Contains($"{path}, entry 'x.npy'", error.Message);
    }

    [Fact]
    public void Npy_WhoseShapeAndClaimedLengthAgreeButTheDataIsNotThere_AllocatesOnlyWhatArrives()
    {
        // The shape claims 1 GB of float64 and so does the length a zip entry would report; 16 bytes follow.
        var npy = NpzReaderTests.Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (134217728,), }", NpzReaderTests.Floats(1, 2, 3, 4));
        var headerEnd = npy.Length - 16;
        var error = RefusedWithinBudget<InvalidDataException>(() => NpzReader.ReadNpy(new MemoryStream(npy), "memory.npz, entry 'x.npy'", "x", headerEnd + (1L << 30)));
        Assert.Contains("truncated: shape (134217728) needs 1073741824 bytes of data but 16 follow", error.Message);
    }

    [Theory]
    [InlineData("[1073741824, 1073741824, 4]", "[0, 0]", "overflows 64 bits")] // 2^30·2^30·4·4 bytes = 2^64: wraps to 0
    [InlineData("[4611686018427387904]", "[0, 0]", "no valid shape")] // 2^62 elements · 4 bytes = 2^64
    [InlineData("[2]", "[0, 9223372036854775807]", "outside the 8 bytes")]
    [InlineData("[2]", "[8, 16]", "outside the 8 bytes")]
    [InlineData("[2]", "[-8, 0]", "outside the 8 bytes")]
    public void Safetensors_WithImpossibleShapesOrOffsets_IsRefused(string shape, string offsets, string expected)
    {
        var path = Path.Combine(_files.Root, "bad.safetensors");
        var header = Encoding.UTF8.GetBytes($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":{shape},\"data_offsets\":{offsets}}},\"pad\":{{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}}}");
        var bytes = new byte[8 + header.Length + 8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        var error = RefusedWithinBudget<CheckpointException>(() => SafetensorsFile.Read(path));
        Assert.Contains(path, error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Safetensors_WithAFlippedDataBit_IsRefusedByItsChecksum()
    {
        var path = Path.Combine(_files.Root, "flipped.safetensors");
        SafetensorsFile.Write(path, [new("w", [4], () => [1f, 2f, 3f, 4f])], new Dictionary<string, string>());
        var bytes = File.ReadAllBytes(path);
        bytes[^3] ^= 0x10;
        File.WriteAllBytes(path, bytes);
        var error = RefusedWithinBudget<CheckpointException>(() => SafetensorsFile.Read(path));
        Assert.Contains("does not match its SHA-256 checksum", error.Message);
    }

    [Theory]
    [InlineData(RunFiles.ConfigFile)]
    [InlineData(RunFiles.SummaryFile)]
    public void RunJson_FarLargerThanAnyRealOne_IsRefusedUnread(string file)
    {
        var directory = Path.Combine(_files.Root, "run");
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, file);
        using (var stream = File.Create(path))
        {
            stream.SetLength(RunFiles.MaxJsonBytes + 1); // sparse: no disk used
        }

        var error = RefusedWithinBudget<InvalidDataException>(() =>
        {
            if (file == RunFiles.ConfigFile)
            {
                TrainingConfig.Read(directory);
            }
            else
            {
                RunFiles.ReadSummary(directory);
            }
        });
        Assert.Contains(path, error.Message);
    }

    /// <summary>Rewrites the compressed and uncompressed sizes of the only entry in a zip's local header and central directory.</summary>
    private static void PatchZipSizes(byte[] zip, int actual, uint claimed)
    {
        var patched = 0;
        for (var i = 0; i + 4 <= zip.Length; i++)
        {
            var signature = BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(i));
            var sizes = signature switch
            {
                0x04034b50 => i + 18, // local file header: compressed size at 18, uncompressed at 22
                0x02014b50 => i + 20, // central directory entry: at 20 and 24
                _ => -1,
            };
            if (sizes < 0 || BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(sizes + 4)) != actual)
            {
                continue;
            }

            BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(sizes), claimed);
            BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(sizes + 4), claimed);
            patched++;
        }

        Assert.Equal(2, patched);
    }
}

/// <summary>Every input afl found crashing a reader (tests/fuzz/regressions/TARGET/), now refused as the reader documents.</summary>
public sealed class FuzzRegressionTests
{
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var directory in Directory.GetDirectories(Path.Combine(TestPaths.RepositoryRoot, "tests", "fuzz", "regressions")))
        {
            foreach (var file in Directory.GetFiles(directory).Order())
            {
                data.Add(Path.GetFileName(directory), Path.GetFileName(file));
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void CrashFoundByFuzzing_IsNowARefusal(string target, string regression)
    {
        var input = File.ReadAllBytes(Path.Combine(TestPaths.RepositoryRoot, "tests", "fuzz", "regressions", target, regression));
        var directory = Path.Combine(Path.GetTempPath(), $"cheapconv-regression-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        try
        {
            var (name, read) = target switch
            {
                "safetensors" => ("checkpoint.safetensors", (Action<string>)(path => Checkpoint.Load(path))),
                "npz" => ("fixture.npz", path => NpzReader.Read(path)),
                "npy" => ("array.npy", path => NpzReader.ReadNpy(path)),
                "config" => (RunFiles.ConfigFile, path => TrainingConfig.ReadValidated(Path.GetDirectoryName(path)!)),
                _ => throw new InvalidOperationException($"no reader for regression target {target}: add it here"),
            };
            var file = Path.Combine(directory, name);
            File.WriteAllBytes(file, input);
            var error = Assert.ThrowsAny<Exception>(() => read(file));
            Assert.True(error is CheckpointException or InvalidDataException, $"{error.GetType().Name}: {error.Message}");
            Assert.Contains(file, error.Message);
            Assert.DoesNotContain('\n', error.Message);
            Assert.DoesNotContain('\r', error.Message);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
