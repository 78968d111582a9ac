using CheapConv.Data;
using CheapConv.IO;
using CheapConv.Training;
using SharpFuzz;

namespace CheapConv.Fuzz;

/// <summary>
/// <c>CheapConv.Fuzz TARGET</c> runs one reader on the input afl-fuzz gives (SharpFuzz's out-of-process fork server; outside
/// afl, once on stdin); <c>CheapConv.Fuzz TARGET --replay FILE...</c> runs it on files (the corpus, a crash) and prints for
/// each "accepted", "refused: MESSAGE" or "CRASH ...", exiting 1 when any crashed. A reader may refuse an input only with its documented exception; anything else — an unexpected exception type,
/// an out-of-memory under the fuzz script's heap limit, a hang — is a crash for afl.
/// </summary>
public static class Program
{
    private static readonly Dictionary<string, (string FileName, Action<string> Read)> Targets = new(StringComparer.Ordinal)
    {
        ["idx"] = ("train-images-idx3-ubyte", path => IdxReader.ReadImages(path)),
        ["idx-gz"] = ("train-images-idx3-ubyte.gz", path => IdxReader.ReadImages(path)),
        ["idx-labels"] = ("train-labels-idx1-ubyte", path => IdxReader.ReadLabels(path, 10)),
        ["cifar100"] = ("train.bin", path => CifarReader.ReadInto(path, 2, [20, 100], [], [])),
        ["safetensors"] = ("checkpoint.safetensors", path => Checkpoint.Load(path)),
        ["npz"] = ("fixture.npz", path => NpzReader.Read(path)),
        ["npy"] = ("array.npy", path => NpzReader.ReadNpy(path)),
        ["config"] = (RunFiles.ConfigFile, ReadConfig),
        ["metrics"] = (RunFiles.MetricsFile, path => RunFiles.ReadMetrics(Path.GetDirectoryName(path)!)),
    };

    public static int Main(string[] args)
    {
        if (args.Length == 0 || !Targets.TryGetValue(args[0], out var target))
        {
            Console.Error.WriteLine($"usage: CheapConv.Fuzz TARGET [--replay FILE...]; targets: {string.Join(", ", Targets.Keys)}");
            return 2;
        }

        var directory = Path.Combine(Path.GetTempPath(), $"cheapconv-fuzz-{Environment.ProcessId}");
        Directory.CreateDirectory(directory);
        var input = Path.Combine(directory, target.FileName);
        try
        {
            if (args.Length > 1 && args[1] == "--replay")
            {
                return Replay(target.Read, input, args.Skip(2));
            }

            Fuzzer.OutOfProcess.Run(stream =>
            {
                using (var file = File.Create(input))
                {
                    stream.CopyTo(file);
                }

                _ = Run(target.Read, input);
            });
            return 0;
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>Reads <paramref name="path"/>: null when accepted, the message of a documented refusal; anything else propagates.</summary>
    private static string? Run(Action<string> read, string path)
    {
        try
        {
            read(path);
            return null;
        }
        catch (Exception e) when (e is DataException or CheckpointException or InvalidDataException)
        {
            // A refusal: one line naming the file, as the readers promise.
            if (!e.Message.Contains(path, StringComparison.Ordinal) || e.Message.Contains('\n', StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"a refusal that does not name the file in one line: {e.Message}", e);
            }

            return e.Message;
        }
    }

    /// <summary>config.json as a run reads it: parsed, then validated with its model.</summary>
    private static void ReadConfig(string path) => TrainingConfig.ReadValidated(Path.GetDirectoryName(path)!);

    private static int Replay(Action<string> read, string input, IEnumerable<string> files)
    {
        var failures = 0;
        foreach (var file in files)
        {
            File.Copy(file, input, overwrite: true);
            try
            {
                Console.WriteLine(Run(read, input) is { } refusal ? $"{file}: refused: {refusal}" : $"{file}: accepted");
            }
#pragma warning disable CA1031 // Every escape is reported: that is what a replay is for.
            catch (Exception e)
#pragma warning restore CA1031
            {
                failures++;
                Console.WriteLine($"{file}: CRASH {e.GetType().Name}: {e.Message}");
            }
        }

        return failures == 0 ? 0 : 1;
    }
}
