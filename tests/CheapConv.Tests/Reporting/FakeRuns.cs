using System.Text.Json;
using CheapConv.Models;
using CheapConv.Training;

namespace CheapConv.Tests.Reporting;

/// <summary>
/// Run directories written the way the trainer writes them (RunFiles' records and JSON options), under one
/// temporary folder that disposing removes.
/// </summary>
internal sealed class FakeRuns : IDisposable
{
    public FakeRuns() => Directory.CreateDirectory(Root);

    public string Root { get; } = Path.Combine(Path.GetTempPath(), $"cheapconv-report-{Guid.NewGuid():N}");

    /// <summary>
    /// A summary whose params/sd/MACs are the real counts of the model it names (so the report's cross-check is
    /// quiet), WRN-10-1 on 1×16×16 images by default: small enough to time in a test.
    /// </summary>
    public static RunSummary Summary(string block = "G(2)", string mode = "AT", double best = 0.91, int bestEpoch = 2, double last = 0.9,
        int epochs = 3, int planned = 3, string arch = "wrn-10-1", string device = "cpu", int image = 16, int seed = 5)
    {
        var (depth, width) = WrnConfig.ParseArch(arch);
        var config = WrnConfig.Student(depth, width, UnitSpec.Parse(block), inChannels: 1, classes: 10, imageSize: image);
        var model = ModelSummary.Of(config);
        return new RunSummary(arch, block, config.BlockType.ToString().ToLowerInvariant(), mode, model.Parameters, model.StateEntries, model.Macs,
            best, bestEpoch, last, epochs, planned, 123.4, device, "fashion-mnist", 1, image, 10, seed, mode == "none" ? null : "runs/teacher");
    }

    /// <summary>Metrics that agree with <paramref name="summary"/>: the test accuracy peaks at its best epoch and ends at its last.</summary>
    public static List<EpochMetrics> MetricsFor(RunSummary summary, bool kd = false, bool at = true)
    {
        var metrics = new List<EpochMetrics>();
        for (var epoch = 1; epoch <= summary.Epochs; epoch++)
        {
            var test = epoch == summary.BestEpoch ? summary.BestAccuracy
                : epoch == summary.Epochs ? summary.LastAccuracy
                : summary.LastAccuracy - 0.05 * (summary.Epochs - epoch + 1);
            var ce = 2.3 / epoch;
            metrics.Add(new EpochMetrics(epoch, 0.1, ce + 0.5, ce, kd ? 1.5 / epoch : null, at ? 0.002 / epoch : null,
                0.5 + 0.1 * epoch, 2.0 / epoch, test, 100, 12.5));
        }

        return metrics;
    }

    /// <summary>Writes a run directory named <paramref name="name"/> with the given files (null: not written).</summary>
    public string Write(string name, RunSummary? summary, IReadOnlyList<EpochMetrics>? metrics)
    {
        var directory = Path.Combine(Root, name);
        Directory.CreateDirectory(directory);
        if (summary is not null)
        {
            File.WriteAllText(Path.Combine(directory, RunFiles.SummaryFile), JsonSerializer.Serialize(summary, RunFiles.Json));
        }

        if (metrics is not null)
        {
            File.WriteAllLines(Path.Combine(directory, RunFiles.MetricsFile), metrics.Select(m => JsonSerializer.Serialize(m, RunFiles.Json)));
        }

        return directory;
    }

    /// <summary>A run whose summary and metrics agree.</summary>
    public string Write(string name, RunSummary summary) => Write(name, summary, MetricsFor(summary));

    public void Dispose()
    {
        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
    }
}

/// <summary>What a PNG file must look like: the signature, an IHDR chunk first, its size.</summary>
internal static class PngFile
{
    private static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Width and height from the IHDR chunk; fails the test when the file is not a PNG.</summary>
    public static (int Width, int Height) Size(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Xunit.Assert.True(bytes.Length > 33, $"{path}: {bytes.Length} bytes is too short for a PNG");
        Xunit.Assert.Equal(Signature, bytes[..8]);
        Xunit.Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
        return (System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }

    /// <summary>Pixels of exactly <paramref name="rgb"/> (0xRRGGBB) in the decoded image: a curve of that colour was drawn.</summary>
    public static int CountColour(string path, uint rgb)
    {
        using var bitmap = SkiaSharp.SKBitmap.Decode(path);
        var count = 0;
        foreach (var pixel in bitmap.Pixels)
        {
            if (pixel.Alpha == 255 && ((uint)pixel.Red << 16 | (uint)pixel.Green << 8 | pixel.Blue) == rgb)
            {
                count++;
            }
        }

        return count;
    }
}
