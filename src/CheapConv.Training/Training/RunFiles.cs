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
        // A non-finite number (which a diverged run stops before recording, but a metric can still be, e.g. a rate over
        // zero seconds) is written as the JSON string "NaN", "Infinity" or "-Infinity" and read back: never an exception.
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
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
                CrashPoints.Reach("writing:" + Path.GetFileName(path));
                // Flush to the disk before the rename: a rename that survives a power cut must not point at data that did not.
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
            // The rename is an entry of the directory: flush the directory too, or a power cut can forget the rename.
            SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            CrashPoints.Reach("saved:" + Path.GetFileName(path));
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>
    /// Flushes <paramref name="directory"/>'s entries to the disk (fsync of the directory, POSIX); on other systems a rename
    /// is made durable by the file system itself and this does nothing.
    /// </summary>
    internal static void SyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var descriptor = LibC.Open(directory, LibC.ReadOnly);
        if (descriptor < 0)
        {
            throw new IOException($"{directory}: cannot open the directory to flush it (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
        }

        try
        {
            if (LibC.Fsync(descriptor) != 0)
            {
                throw new IOException($"{directory}: fsync of the directory failed (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            _ = LibC.Close(descriptor);
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
            return JsonSerializer.Deserialize<RunSummary>(ReadBoundedText(path, MaxJsonBytes), Json)
                ?? throw new InvalidDataException($"{path} holds no summary");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not a valid run summary: {e.Message}");
        }
    }

    /// <summary>
    /// The records of metrics.jsonl, in order. A last line without its newline that does not parse is a record torn by a
    /// crash during its append: it is left out (the checkpoint's <c>last_metrics</c> restores it on resume). Any other line
    /// that is not a record is an <see cref="InvalidDataException"/> naming the file and the line.
    /// </summary>
    public static IReadOnlyList<EpochMetrics> ReadMetrics(string runDirectory)
    {
        var path = Path.Combine(runDirectory, MetricsFile);
        if (!File.Exists(path))
        {
            return [];
        }

        var text = ReadBoundedText(path, MaxMetricsBytes);
        var lines = text.Split('\n');
        var result = new List<EpochMetrics>();
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.Length == 0)
            {
                continue;
            }

            var last = i == lines.Length - 1; // no newline after it
            try
            {
                result.Add(JsonSerializer.Deserialize<EpochMetrics>(line, Json) ?? throw new JsonException("null record"));
            }
            catch (JsonException) when (last)
            {
                // Torn by a crash during the append: dropped.
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}:{i + 1}: not a metrics record: {e.Message}");
            }
        }

        return result;
    }

    /// <summary>The largest config.json or summary.json read (real ones are about a kilobyte).</summary>
    internal const long MaxJsonBytes = 1 << 20;

    /// <summary>The largest metrics.jsonl read (a line is about 300 bytes: 100,000 epochs).</summary>
    internal const long MaxMetricsBytes = 32 << 20;

    /// <summary>
    /// Reads a UTF-8 text file of at most <paramref name="limit"/> bytes; a larger one is an <see cref="InvalidDataException"/>
    /// naming it (a run's JSON files are small: a huge one is not ours, and reading it would only exhaust memory).
    /// </summary>
    internal static string ReadBoundedText(string path, long limit)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        if (stream.Length > limit)
        {
            throw new InvalidDataException($"{path}: {stream.Length} bytes, more than the {limit} a run file of this kind can need; it is not a CheapConv run file");
        }

        using var reader = new StreamReader(stream, System.Text.Encoding.UTF8);
        return reader.ReadToEnd();
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

/// <summary>The C library calls that .NET has no API for: fsync of a directory.</summary>
internal static partial class LibC
{
    /// <summary>O_RDONLY, which opens a directory as well as a file.</summary>
    public const int ReadOnly = 0;

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int descriptor);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int descriptor);
}
