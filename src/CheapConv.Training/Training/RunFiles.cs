using System.Text.Json;
using System.Text.Json.Serialization;

namespace CheapConv.Training;

/// <summary>
/// The files of a run directory — the contract between the trainer that writes them and the report that reads
/// them. A run directory holds:
/// <list type="bullet">
/// <item><c>config.json</c> — the exact configuration the run was started with (<see cref="ConfigFile"/>);</item>
/// <item><c>checkpoint.safetensors</c> — the last epoch's weights, BN statistics, optimiser state and training state;
/// <c>best.safetensors</c> — the weights of the best test accuracy so far;</item>
/// <item><c>metrics.jsonl</c> — one <see cref="EpochMetrics"/> JSON object per line, appended after every epoch;</item>
/// <item><c>loss.png</c>, <c>accuracy.png</c> — the curves, redrawn after every epoch;</item>
/// <item><c>summary.json</c> — a <see cref="RunSummary"/>, rewritten after every epoch.</item>
/// </list>
/// Every file is written to a temporary name and renamed, so a crash never leaves a truncated file.
/// </summary>
public static class RunFiles
{
    public const string ConfigFile = "config.json";
    public const string CheckpointFile = "checkpoint.safetensors";
    public const string BestCheckpointFile = "best.safetensors";
    public const string MetricsFile = "metrics.jsonl";
    public const string LossChartFile = "loss.png";
    public const string AccuracyChartFile = "accuracy.png";
    public const string SummaryFile = "summary.json";

    /// <summary>snake_case names, invariant numbers: what the files hold and what users' scripts parse.</summary>
    internal static JsonSerializerOptions Json { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = false,
    };

    /// <summary>Writes <paramref name="text"/> (UTF-8) to <paramref name="path"/> through a temporary file and a rename.</summary>
    internal static void WriteAtomically(string path, string text) =>
        WriteAtomically(path, stream => stream.Write(System.Text.Encoding.UTF8.GetBytes(text)));

    /// <summary>
    /// Lets <paramref name="write"/> fill a temporary file beside <paramref name="path"/> (<c>path.tmp</c>), flushes
    /// it to the disk, then renames it over <paramref name="path"/>: readers see the old file or the new one, never
    /// a part. When <paramref name="write"/> or the flush throws, the temporary file is deleted and the exception
    /// propagates; an existing file at <paramref name="path"/> is untouched.
    /// </summary>
    internal static void WriteAtomically(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        var temporary = path + ".tmp";
        try
        {
            using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                // Flush to the disk before the rename: a rename that survives a power cut must not point at data that did not.
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>Appends one record to metrics.jsonl (a line is small and written in one call, then flushed to disk).</summary>
    internal static void AppendMetrics(string runDirectory, EpochMetrics metrics)
    {
        var line = System.Text.Encoding.UTF8.GetBytes(JsonSerializer.Serialize(metrics, Json) + "\n");
        using var stream = new FileStream(Path.Combine(runDirectory, MetricsFile), FileMode.Append, FileAccess.Write, FileShare.Read);
        stream.Write(line);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>Rewrites metrics.jsonl with exactly <paramref name="metrics"/> (used when a resumed run drops epochs its checkpoint does not hold).</summary>
    internal static void WriteMetrics(string runDirectory, IEnumerable<EpochMetrics> metrics) =>
        WriteAtomically(Path.Combine(runDirectory, MetricsFile), string.Concat(metrics.Select(m => JsonSerializer.Serialize(m, Json) + "\n")));

    /// <summary>Rewrites summary.json.</summary>
    internal static void WriteSummary(string runDirectory, RunSummary summary) =>
        WriteAtomically(Path.Combine(runDirectory, SummaryFile), JsonSerializer.Serialize(summary, Json) + "\n");

    public static RunSummary ReadSummary(string runDirectory)
    {
        var path = Path.Combine(runDirectory, SummaryFile);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{runDirectory} is not a run directory: it has no {SummaryFile}", path);
        }

        try
        {
            return JsonSerializer.Deserialize<RunSummary>(File.ReadAllText(path), Json)
                ?? throw new InvalidDataException($"{path} holds no summary");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not a valid run summary: {e.Message}");
        }
    }

    public static IReadOnlyList<EpochMetrics> ReadMetrics(string runDirectory)
    {
        var path = Path.Combine(runDirectory, MetricsFile);
        if (!File.Exists(path))
        {
            return [];
        }

        var result = new List<EpochMetrics>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Length == 0)
            {
                continue;
            }

            try
            {
                result.Add(JsonSerializer.Deserialize<EpochMetrics>(line, Json) ?? throw new InvalidDataException($"{path}:{lineNumber}: empty record"));
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}:{lineNumber}: not a metrics record: {e.Message}");
            }
        }

        return result;
    }
}

/// <summary>
/// One epoch of a run (a line of metrics.jsonl). Losses are means over the epoch's training images (each batch's
/// mean weighted by its size, which is the mean over batches when all are full). <c>Epoch</c> counts from 1.
/// </summary>
/// <param name="Loss">The total training loss that was minimised.</param>
/// <param name="Ce">Cross-entropy part (unweighted).</param>
/// <param name="Kd">KD part (unweighted; null when KD is off).</param>
/// <param name="At">Sum of the AT parts (unweighted; null when AT is off).</param>
/// <param name="TestLoss">Cross-entropy on the test set.</param>
/// <param name="TestAccuracy">Fraction in [0, 1].</param>
public sealed record EpochMetrics(
    int Epoch, double LearningRate, double Loss, double Ce, double? Kd, double? At, double TrainAccuracy,
    double TestLoss, double TestAccuracy, double ImagesPerSecond, double Seconds);

/// <summary>summary.json: what the report needs about a run.</summary>
/// <param name="Mode">"none" (trained alone), "KD", "AT" or "KD+AT".</param>
/// <param name="Params">Trainable parameters.</param>
/// <param name="State">State-dict values (parameters + BN running statistics), the paper's "sd" count.</param>
/// <param name="Macs">Multiply-accumulates of conv and linear layers for one image.</param>
/// <param name="BestAccuracy">Best test accuracy over the epochs run, in [0, 1].</param>
/// <param name="LastAccuracy">Test accuracy after the last epoch run.</param>
/// <param name="Epochs">Epochs completed.</param>
/// <param name="ImagesPerSecond">Training throughput over the whole run.</param>
/// <param name="Device">The device it ran on, as --device names it (cpu, emu, cuda) plus its name.</param>
/// <param name="Teacher">The teacher checkpoint of a distillation run; null otherwise.</param>
/// <param name="TrainSubset">The --train-subset size, null when the whole training set was used.</param>
/// <param name="TeacherModel">The teacher's network ("WRN-40-2 S basic for 1×28×28 images, 10 classes"); null without a teacher.</param>
public sealed record RunSummary(
    string Arch, string Block, string BlockType, string Mode, long Params, long State, long Macs,
    double BestAccuracy, int BestEpoch, double LastAccuracy, int Epochs, int PlannedEpochs, double ImagesPerSecond,
    string Device, string Dataset, int InChannels, int Image, int Classes, int Seed, string? Teacher,
    int? TrainSubset = null, string? TeacherModel = null);
