using System.Globalization;
using System.Text;
using CheapConv.Models;
using CheapConv.Problems;
using CheapConv.Training;

namespace CheapConv.Reporting;

/// <summary>
/// The table over runs that issue 4 asks for — architecture, block, block type, parameters, state-dict values,
/// MACs, measured inference latency at two batch sizes, best and last test error with their epochs,
/// distillation mode, epochs, dataset, seed — written as Markdown and CSV, and the Pareto plot of error against
/// parameters and against MACs. Shared by the <c>report</c> command and the demo.
/// </summary>
internal sealed class RunReport
{
    /// <summary>report.md.</summary>
    public const string MarkdownFile = "report.md";

    /// <summary>report.csv.</summary>
    public const string CsvFile = "report.csv";

    /// <summary>pareto.png.</summary>
    public const string ParetoFile = "pareto.png";

    /// <summary>The modes summary.json may name, in the spelling the table uses.</summary>
    public static IReadOnlyList<string> Modes { get; } = ["none", "KD", "AT", "KD+AT"];

    private static readonly string[] CsvHeader =
    [
        "run", "run_directory", "arch", "block", "block_type", "params", "state", "macs",
        "latency_device", "latency_batch_small", "latency_small_ms", "latency_small_runs",
        "latency_batch_large", "latency_large_ms", "latency_large_runs",
        "best_error_percent", "best_epoch", "last_error_percent", "last_epoch", "mode", "epochs", "planned_epochs",
        "dataset", "seed", "training_device", "teacher", "pareto_params", "pareto_macs", "note",
    ];

    private RunReport(IReadOnlyList<ReportRow> rows, ReportOptions options, IReadOnlyList<string> notes)
    {
        Rows = rows;
        Options = options;
        Notes = notes;
    }

    /// <summary>One row per run directory, in the order given.</summary>
    public IReadOnlyList<ReportRow> Rows { get; }

    /// <summary>The options it was built with.</summary>
    public ReportOptions Options { get; }

    /// <summary>What a reader must know about the numbers: disagreements between a run's files, devices substituted.</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>
    /// Reads every run directory's summary.json and metrics.jsonl (all of them before timing anything, so a bad
    /// directory fails fast), measures latency unless <see cref="ReportOptions.MeasureLatency"/> is off (once per
    /// distinct model and device), and marks the Pareto fronts. A directory that does not exist or has no
    /// summary.json is an <see cref="IOException"/>; a corrupt summary or metrics line an
    /// <see cref="InvalidDataException"/>; both name the file. An unavailable GPU asked for explicitly is a
    /// <see cref="Devices.DeviceUnavailableException"/>.
    /// </summary>
    public static RunReport Build(IReadOnlyList<string> runDirectories, ReportOptions options)
    {
        options.Validate();
        if (runDirectories.Count == 0)
        {
            throw new ArgumentException("a report needs at least one run directory");
        }

        var notes = new List<string>();
        var runs = runDirectories.Select(directory => ReadRun(directory, notes)).ToList();

        var latencies = new List<LatencyResult>();
        if (options.MeasureLatency)
        {
            using var timer = new InferenceLatency(options);
            var measured = new Dictionary<(WrnConfig, Devices.DeviceKind?), LatencyResult>();
            foreach (var run in runs)
            {
                var key = (run.Config, InferenceLatency.TrainingDeviceKind(run.Summary.Device));
                if (!measured.TryGetValue(key, out var latency))
                {
                    options.Log?.Invoke($"timing {run.Config.Name} (batch {options.SmallBatch} and {options.LargeBatch}) for {run.Name}");
                    latency = timer.Measure(run.Config, run.Summary.Device);
                    measured.Add(key, latency);
                }

                latencies.Add(latency);
            }
        }
        else
        {
            latencies.AddRange(runs.Select(_ => LatencyResult.NotMeasured("", "not measured (--no-latency)")));
        }

        var rows = runs.Select((run, i) => ToRow(run, latencies[i])).ToList();
        var error = rows.Select(r => ParetoErrorOf(r, options.ParetoError) ?? double.NaN).ToArray();
        var onParams = ParetoFront.Members([.. rows.Select((r, i) => ((double)r.Params, error[i]))]);
        var onMacs = ParetoFront.Members([.. rows.Select((r, i) => ((double)r.Macs, error[i]))]);
        rows = [.. rows.Select((r, i) => r with { OnParamsFront = onParams[i], OnMacsFront = onMacs[i] })];
        return new RunReport(rows, options, notes);
    }

    /// <summary>The error the Pareto fronts use for <paramref name="row"/>.</summary>
    public static double? ParetoErrorOf(ReportRow row, ParetoError which) => which == ParetoError.Best ? row.BestError : row.LastError;

    private sealed record Run(string Directory, string Name, RunSummary Summary, WrnConfig Config, UnitSpec Unit, string Mode);

    private static Run ReadRun(string directory, List<string> notes)
    {
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"{directory}: no such run directory");
        }

        var summary = RunFiles.ReadSummary(directory);
        var path = Path.Combine(directory, RunFiles.SummaryFile);
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)));
        string Bad(string what) => $"{path} is not a valid run summary: {what}";

        foreach (var (field, value) in new[] { ("arch", summary.Arch), ("block", summary.Block), ("block_type", summary.BlockType), ("mode", summary.Mode), ("device", summary.Device), ("dataset", summary.Dataset) })
        {
            if (string.IsNullOrWhiteSpace(value))
            {
                throw new InvalidDataException(Bad($"\"{field}\" is missing"));
            }
        }

        foreach (var (field, value) in new[] { ("params", summary.Params), ("state", summary.State), ("macs", summary.Macs), ("in_channels", summary.InChannels), ("image", summary.Image), ("classes", summary.Classes), ("planned_epochs", summary.PlannedEpochs) })
        {
            if (value <= 0)
            {
                throw new InvalidDataException(Bad($"\"{field}\" must be positive, got {value} (missing?)"));
            }
        }

        foreach (var (field, value) in new[] { ("best_accuracy", summary.BestAccuracy), ("last_accuracy", summary.LastAccuracy) })
        {
            if (!(value >= 0 && value <= 1))
            {
                throw new InvalidDataException(Bad($"\"{field}\" must be a fraction in [0, 1], got {value.ToString(CultureInfo.InvariantCulture)}"));
            }
        }

        if (summary.Epochs < 0 || summary.BestEpoch < 0 || summary.BestEpoch > summary.Epochs)
        {
            throw new InvalidDataException(Bad($"\"epochs\" {summary.Epochs} and \"best_epoch\" {summary.BestEpoch} need 0 ≤ best_epoch ≤ epochs"));
        }

        var mode = Modes.FirstOrDefault(m => string.Equals(m, summary.Mode, StringComparison.OrdinalIgnoreCase))
            ?? throw new InvalidDataException(Bad($"unknown mode '{summary.Mode}': expected {string.Join(", ", Modes)}"));

        WrnConfig config;
        UnitSpec unit;
        ModelSummary model;
        try
        {
            var (depth, width) = WrnConfig.ParseArch(summary.Arch);
            unit = UnitSpec.Parse(summary.Block);
            var blockType = summary.BlockType.ToLowerInvariant() switch
            {
                "basic" => BlockType.Basic,
                "bottle" => BlockType.Bottle,
                _ => throw new FormatException($"unknown block_type '{summary.BlockType}': expected basic or bottle"),
            };
            config = new WrnConfig(depth, width, unit, blockType, summary.InChannels, summary.Classes, summary.Image);
            config.Validate();
            model = ModelSummary.Of(config);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidProblemException)
        {
            throw new InvalidDataException(Bad(e.Message));
        }

        // Cross-checks: the table shows the summary's numbers, but a summary that disagrees with the model its
        // own configuration builds, or with its metrics file, must not pass silently.
        if (model.Parameters != summary.Params || model.StateEntries != summary.State || model.Macs != summary.Macs)
        {
            notes.Add(Invariant($"{name}: summary.json says {summary.Params:N0} params, {summary.State:N0} sd, {summary.Macs:N0} MACs, but {config.Name} has {model.Parameters:N0}, {model.StateEntries:N0}, {model.Macs:N0}; the table shows summary.json's"));
        }

        var metrics = TrainingCharts.LatestPerEpoch(RunFiles.ReadMetrics(directory));
        if (metrics.Count == 0)
        {
            if (summary.Epochs > 0)
            {
                notes.Add($"{name}: no {RunFiles.MetricsFile}, so the summary's errors cannot be checked against it");
            }
        }
        else
        {
            var last = metrics[^1];
            var best = metrics.Max(m => m.TestAccuracy);
            if (last.Epoch != summary.Epochs || last.TestAccuracy != summary.LastAccuracy || best != summary.BestAccuracy)
            {
                notes.Add(Invariant($"{name}: {RunFiles.MetricsFile} ends at epoch {last.Epoch} with test accuracy {last.TestAccuracy:0.####} (best {best:0.####}), but summary.json says epoch {summary.Epochs}, {summary.LastAccuracy:0.####} (best {summary.BestAccuracy:0.####}); the table shows summary.json's"));
            }
        }

        return new Run(directory, name, summary, config, unit, mode);
    }

    private static ReportRow ToRow(Run run, LatencyResult latency)
    {
        var s = run.Summary;
        var completed = s.Epochs > 0;
        return new ReportRow(
            run.Directory, run.Name, s.Arch.ToLowerInvariant(), run.Unit.ToString(), run.Config.BlockType.ToString().ToLowerInvariant(), run.Mode,
            s.Params, s.State, s.Macs,
            completed ? 100 * (1 - s.BestAccuracy) : null, s.BestEpoch, completed ? 100 * (1 - s.LastAccuracy) : null, s.Epochs, s.PlannedEpochs,
            s.Dataset, s.Seed, s.Device, s.Teacher, latency, false, false);
    }

    /// <summary>The Markdown table and its notes (what the console shows and report.md holds).</summary>
    public string ToMarkdown()
    {
        var devices = Rows.Where(r => r.Latency.SmallBatchMilliseconds is not null).Select(r => r.Latency.Device).Distinct().ToList();
        var oneDevice = devices.Count <= 1;
        var deviceSuffix = devices.Count == 1 ? ", " + devices[0] : "";
        var header = new List<string> { "run", "arch", "block", "type", "params", "sd", "MACs" };
        header.Add($"latency b{Options.SmallBatch} (ms{deviceSuffix})");
        header.Add($"latency b{Options.LargeBatch} (ms{deviceSuffix})");
        if (!oneDevice)
        {
            header.Add("timed on");
        }

        header.AddRange(["best err % (epoch)", "last err % (epoch)", "mode", "epochs", "dataset", "seed"]);
        var rightAligned = new HashSet<string> { "params", "sd", "MACs", "epochs", "seed" };

        var text = new StringBuilder();
        text.Append("| ").AppendJoin(" | ", header).Append(" |\n");
        text.Append('|').AppendJoin('|', header.Select(h => rightAligned.Contains(h) || h.StartsWith("latency", StringComparison.Ordinal) || h.Contains("err", StringComparison.Ordinal) ? "---:" : "---")).Append("|\n");
        foreach (var row in Rows)
        {
            var cells = new List<string>
            {
                row.Name, row.Arch.ToUpperInvariant(), row.Block, row.BlockType,
                Invariant($"{row.Params:N0}"), Invariant($"{row.State:N0}"), Invariant($"{row.Macs / 1e6:0.0}M"),
                FormatMilliseconds(row.Latency.SmallBatchMilliseconds), FormatMilliseconds(row.Latency.LargeBatchMilliseconds),
            };
            if (!oneDevice)
            {
                cells.Add(row.Latency.SmallBatchMilliseconds is null ? "—" : row.Latency.Device);
            }

            cells.AddRange(
            [
                row.BestError is { } best ? Invariant($"{best:0.00} ({row.BestEpoch})") : "—",
                row.LastError is { } last ? Invariant($"{last:0.00} ({row.Epochs})") : "—",
                row.Mode,
                row.Epochs == row.PlannedEpochs ? Invariant($"{row.Epochs}") : Invariant($"{row.Epochs}/{row.PlannedEpochs}"),
                row.Dataset,
                Invariant($"{row.Seed}"),
            ]);
            text.Append("| ").AppendJoin(" | ", cells.Select(c => c.Replace("|", "\\|", StringComparison.Ordinal))).Append(" |\n");
        }

        text.Append('\n');
        foreach (var note in ExplanatoryNotes().Concat(Notes))
        {
            text.Append("- ").Append(note).Append('\n');
        }

        return text.ToString();
    }

    private IEnumerable<string> ExplanatoryNotes()
    {
        yield return "err: test error = 100 − test accuracy (%); best is the best epoch's (chosen on the test set, so optimistic), last the last epoch's; " +
            "epochs a/b: a of b planned epochs completed.";
        yield return "params: trainable parameters; sd: state-dict values (parameters + BN running statistics); MACs: multiply-accumulates of the conv and linear layers per image (M = 10⁶).";
        var measured = Rows.Where(r => r.Latency.SmallBatchMilliseconds is not null).ToList();
        if (measured.Count > 0)
        {
            var runs = measured.SelectMany(r => new[] { r.Latency.SmallBatchRuns, r.Latency.LargeBatchRuns }).ToList();
            var range = runs.Min() == runs.Max() ? Invariant($"{runs.Min()}") : Invariant($"{runs.Min()}–{runs.Max()}");
            yield return $"latency: median wall time of {range} forward passes per cell after up to {Options.WarmupRuns} untimed ones" +
                (Options.SlowPassIsItsOwnWarmup ? Invariant($" (a pass over {3 * Options.TimeBudget.TotalSeconds:0.#} s is timed once, as its own warm-up)") : "") +
                "; random weights and images (the time does not depend on them), eval mode, no gradient recording, device synchronised before and after each pass.";
        }

        foreach (var group in Rows.Where(r => r.Latency.Note is not null).GroupBy(r => r.Latency.Note!))
        {
            yield return $"latency of {string.Join(", ", group.Select(r => r.Name))}: {group.Key}.";
        }

        var front = Options.ParetoError == ParetoError.Best ? "best" : "last";
        yield return $"Pareto front of {front} error vs params: {FrontList(r => r.OnParamsFront)}; vs MACs: {FrontList(r => r.OnMacsFront)}.";
    }

    private string FrontList(Func<ReportRow, bool> member)
    {
        var names = Rows.Where(member).Select(r => r.Name).ToList();
        return names.Count == 0 ? "none (no run has completed an epoch)" : string.Join(", ", names);
    }

    /// <summary>Writes <see cref="ToMarkdown"/> to <paramref name="output"/>.</summary>
    public void WriteMarkdown(TextWriter output) => output.Write(ToMarkdown());

    /// <summary>Writes <see cref="ToMarkdown"/> to the file <paramref name="path"/> (temporary file and rename).</summary>
    public void WriteMarkdown(string path) => RunFiles.WriteAtomically(path, ToMarkdown());

    /// <summary>
    /// The rows as CSV (RFC 4180 quoting, "\n" line ends, invariant numbers at full precision, empty cells for
    /// values not measured): one header line, one line per run.
    /// </summary>
    public string ToCsv()
    {
        var text = new StringBuilder();
        text.AppendJoin(',', CsvHeader).Append('\n');
        foreach (var row in Rows)
        {
            string[] cells =
            [
                row.Name, row.RunDirectory, row.Arch, row.Block, row.BlockType,
                Invariant($"{row.Params}"), Invariant($"{row.State}"), Invariant($"{row.Macs}"),
                row.Latency.SmallBatchMilliseconds is null ? "" : row.Latency.Device,
                Invariant($"{Options.SmallBatch}"), Number(row.Latency.SmallBatchMilliseconds), Invariant($"{row.Latency.SmallBatchRuns}"),
                Invariant($"{Options.LargeBatch}"), Number(row.Latency.LargeBatchMilliseconds), Invariant($"{row.Latency.LargeBatchRuns}"),
                Number(row.BestError), Invariant($"{row.BestEpoch}"), Number(row.LastError), Invariant($"{row.Epochs}"),
                row.Mode, Invariant($"{row.Epochs}"), Invariant($"{row.PlannedEpochs}"),
                row.Dataset, Invariant($"{row.Seed}"), row.TrainingDevice, row.Teacher ?? "",
                row.OnParamsFront ? "true" : "false", row.OnMacsFront ? "true" : "false", row.Latency.Note ?? "",
            ];
            text.AppendJoin(',', cells.Select(CsvField)).Append('\n');
        }

        return text.ToString();
    }

    /// <summary>Writes <see cref="ToCsv"/> to <paramref name="output"/>.</summary>
    public void WriteCsv(TextWriter output) => output.Write(ToCsv());

    /// <summary>Writes <see cref="ToCsv"/> to the file <paramref name="path"/> (temporary file and rename).</summary>
    public void WriteCsv(string path) => RunFiles.WriteAtomically(path, ToCsv());

    /// <summary>
    /// Writes the Pareto plot to <paramref name="path"/> (PNG, temporary file and rename): two panels, test error
    /// (<see cref="ReportOptions.ParetoError"/>) against parameters and against MACs on log axes, each point
    /// labelled with its block and mode and coloured by mode, the front drawn as the staircase that bounds the
    /// region the runs dominate.
    /// </summary>
    public void WriteParetoPlot(string path) => ParetoPlot.Write(this, path);

    /// <summary>Writes report.md, report.csv and pareto.png into <paramref name="directory"/> (created if needed); returns their paths.</summary>
    public IReadOnlyList<string> WriteFiles(string directory)
    {
        Directory.CreateDirectory(directory);
        var markdown = Path.Combine(directory, MarkdownFile);
        var csv = Path.Combine(directory, CsvFile);
        var pareto = Path.Combine(directory, ParetoFile);
        WriteMarkdown(markdown);
        WriteCsv(csv);
        WriteParetoPlot(pareto);
        return [markdown, csv, pareto];
    }

    /// <summary>0.123, 1.23, 12.3, 123: three significant figures are what a median of a few runs supports.</summary>
    internal static string FormatMilliseconds(double? milliseconds) => milliseconds switch
    {
        null => "—",
        < 1 => Invariant($"{milliseconds:0.000}"),
        < 10 => Invariant($"{milliseconds:0.00}"),
        < 100 => Invariant($"{milliseconds:0.0}"),
        _ => Invariant($"{milliseconds:0}"),
    };

    private static string Number(double? value) => value is { } v ? v.ToString("R", CultureInfo.InvariantCulture) : "";

    private static string CsvField(string value) =>
        value.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
