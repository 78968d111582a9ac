using System.Globalization;
using CheapConv.Training;
using Spectre.Console;

namespace CheapConv.Cli.Commands;

/// <summary>
/// How a training run looks: on a terminal, a Spectre.Console progress bar per epoch whose caption carries the
/// loss parts, learning rate, images/s and the run's ETA; when the output is redirected (a log, CI, a test), plain
/// lines — one per tenth of an epoch and one per finished epoch. A summary table at the end in both cases.
/// </summary>
internal static class ProgressRenderer
{
    /// <summary>Whether <paramref name="output"/> is the console's stdout on an interactive ANSI terminal.</summary>
    public static bool IsInteractive(TextWriter output) =>
        ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected
        && AnsiConsole.Profile.Capabilities.Interactive && AnsiConsole.Profile.Capabilities.Ansi;

    /// <summary>Runs <paramref name="work"/> with an observer that renders its progress to <paramref name="output"/>.</summary>
    public static T Run<T>(TextWriter output, Func<ITrainingObserver, T> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (!IsInteractive(output))
        {
            return work(new PlainObserver(output));
        }

        var result = default(T)!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context => result = work(new LiveObserver(context)));
        return result;
    }

    /// <summary>The end-of-run table: model, mode, sizes, accuracies, throughput, device and where the files are.</summary>
    public static void WriteSummary(TextWriter output, RunSummary summary, string runDirectory, bool completed)
    {
        ArgumentNullException.ThrowIfNull(summary);
        var table = new Table().Border(TableBorder.Rounded).AddColumn("run").AddColumn(completed ? "finished" : "interrupted");
        table.AddRow("model", Markup.Escape($"{summary.Arch.ToUpperInvariant()} {summary.Block} {summary.BlockType}"));
        table.AddRow("mode", Markup.Escape(summary.Mode + (summary.Teacher is null ? "" : $" from {summary.TeacherModel} ({summary.Teacher})")));
        table.AddRow("params / sd / MACs", Invariant($"{summary.Params:N0} / {summary.State:N0} / {summary.Macs / 1e6:0.0}M"));
        table.AddRow("data", Markup.Escape(Invariant($"{summary.Dataset}, {summary.InChannels}×{summary.Image}×{summary.Image}, {summary.Classes} classes") +
            (summary.TrainSubset is { } subset ? Invariant($", {subset:N0} training images") : "")));
        table.AddRow("epochs", Invariant($"{summary.Epochs} of {summary.PlannedEpochs}, seed {summary.Seed}"));
        table.AddRow("best test accuracy", Invariant($"{summary.BestAccuracy * 100:0.00}% (epoch {summary.BestEpoch}), error {(1 - summary.BestAccuracy) * 100:0.00}%"));
        table.AddRow("last test accuracy", Invariant($"{summary.LastAccuracy * 100:0.00}%, error {(1 - summary.LastAccuracy) * 100:0.00}%"));
        table.AddRow("training throughput", Invariant($"{summary.ImagesPerSecond:0.0} images/s"));
        table.AddRow("device", Markup.Escape(summary.Device));
        table.AddRow("run directory", Markup.Escape(runDirectory));
        ConsoleFor(output).Write(table);
    }

    /// <summary>The Spectre console for <paramref name="output"/>: the real one on a terminal, a plain-text one otherwise.</summary>
    internal static IAnsiConsole ConsoleFor(TextWriter output)
    {
        if (IsInteractive(output))
        {
            return AnsiConsole.Console;
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(output),
        });
        console.Profile.Width = 120;
        return console;
    }

    internal static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>"CE 0.412 KD 0.108 AT 0.00213": the parts that are on.</summary>
    internal static string Parts(double ce, double? kd, double? at) =>
        Invariant($"CE {ce:0.0000}") + (kd is { } k ? Invariant($" KD {k:0.0000}") : "") + (at is { } a ? Invariant($" AT {a:0.00000}") : "");

    internal static string Duration(TimeSpan span) =>
        double.IsFinite(span.TotalSeconds) && span >= TimeSpan.Zero
            ? (span.TotalHours >= 1 ? Invariant($"{(int)span.TotalHours}:{span.Minutes:00}:{span.Seconds:00}") : Invariant($"{span.Minutes}:{span.Seconds:00}"))
            : "?";

    internal static string Header(TrainingStart start)
    {
        var c = start.Config;
        return Invariant($"{(start.FirstEpoch > 1 ? "resuming" : "training")} {c.Model.Describe()}, mode {c.Mode}") +
            (c.Distillation is { } d ? Invariant($" (teacher {d.TeacherModel.Describe()}, α {d.Alpha}, T {d.Temperature}, β {d.Beta})") : "") +
            Invariant($"; {start.Parameters:N0} params, {start.Macs / 1e6:0.0}M MACs; {c.Dataset} {start.TrainImages:N0} train / {start.TestImages:N0} test images; ") +
            Invariant($"epochs {start.FirstEpoch}..{c.Epochs}, {start.BatchesPerEpoch} batches of {c.BatchSize}, lr {c.LearningRate} {c.Schedule}, seed {c.Seed}; on {start.Device}{(c.Graph == true ? ", the step as a graph" : "")}; files in {start.RunDirectory}");
    }

    internal static string EpochLine(EpochMetrics m, int epochs, bool isBest, TimeSpan remaining) =>
        Invariant($"epoch {m.Epoch}/{epochs}: loss {m.Loss:0.0000} ({Parts(m.Ce, m.Kd, m.At)}), train acc {m.TrainAccuracy * 100:0.00}%, ") +
        Invariant($"test loss {m.TestLoss:0.0000} acc {m.TestAccuracy * 100:0.00}%{(isBest ? " (best)" : "")}, lr {m.LearningRate:0.#####}, ") +
        Invariant($"{m.ImagesPerSecond:0.0} img/s, {m.Seconds:0.0} s, ETA {Duration(remaining)}");

    /// <summary>Log lines for redirected output.</summary>
    private sealed class PlainObserver(TextWriter output) : ITrainingObserver
    {
        private int _epochs;
        private int _nextReport;

        public void RunStarting(TrainingStart start)
        {
            _epochs = start.Config.Epochs;
            output.WriteLine(Header(start));
        }

        public void EpochStarting(int epoch, int batches, double learningRate) => _nextReport = Math.Max(1, batches / 10);

        public void BatchCompleted(BatchProgress p)
        {
            // A line per tenth of the epoch (never the last batch: the epoch line follows it).
            if (p.Batch < _nextReport || p.Batch == p.Batches)
            {
                return;
            }

            _nextReport += Math.Max(1, p.Batches / 10);
            output.WriteLine(Invariant($"epoch {p.Epoch}/{_epochs} batch {p.Batch}/{p.Batches}: loss {p.Loss:0.0000} ({Parts(p.Ce, p.Kd, p.At)}), lr {p.LearningRate:0.#####}, ") +
                Invariant($"{p.ImagesPerSecond:0.0} img/s, epoch ETA {Duration(p.EpochRemaining)}, run ETA {Duration(p.RunRemaining)}"));
        }

        public void EpochCompleted(EpochMetrics metrics, bool isBest, TimeSpan runRemaining) =>
            output.WriteLine(EpochLine(metrics, _epochs, isBest, runRemaining));

        public void Warning(string message) => output.WriteLine($"warning: {message}");
    }

    /// <summary>A Spectre progress task per epoch.</summary>
    private sealed class LiveObserver(ProgressContext context) : ITrainingObserver
    {
        private ProgressTask? _task;
        private int _epochs;

        public void RunStarting(TrainingStart start)
        {
            _epochs = start.Config.Epochs;
            AnsiConsole.MarkupLine(Markup.Escape(Header(start)));
        }

        public void EpochStarting(int epoch, int batches, double learningRate) =>
            _task = context.AddTask(Markup.Escape(Invariant($"epoch {epoch}/{_epochs}")), maxValue: batches);

        public void BatchCompleted(BatchProgress p)
        {
            if (_task is null)
            {
                return;
            }

            _task.Value = p.Batch;
            _task.Description = Markup.Escape(Invariant($"epoch {p.Epoch}/{_epochs}  loss {p.Loss:0.0000} ({Parts(p.Ce, p.Kd, p.At)})  lr {p.LearningRate:0.#####}  {p.ImagesPerSecond:0.0} img/s  run ETA {Duration(p.RunRemaining)}"));
        }

        public void EpochCompleted(EpochMetrics m, bool isBest, TimeSpan runRemaining)
        {
            if (_task is null)
            {
                return;
            }

            _task.Description = Markup.Escape(Invariant($"epoch {m.Epoch}/{_epochs}  loss {m.Loss:0.0000} ({Parts(m.Ce, m.Kd, m.At)})  test {m.TestAccuracy * 100:0.00}%{(isBest ? " best" : "")}  {m.ImagesPerSecond:0.0} img/s  run ETA {Duration(runRemaining)}"));
            _task.Value = _task.MaxValue;
            _task.StopTask();
        }

        public void Warning(string message) => AnsiConsole.MarkupLine("[yellow]warning:[/] " + Markup.Escape(message));
    }
}
