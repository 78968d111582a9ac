using CheapConv.Devices;
using CheapConv.Reporting;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>report RUN_DIR...</c>: the table over training runs (architecture, block, params, sd, MACs, measured
/// inference latency at batch 1 and 128, best and last test error, distillation mode, epochs, dataset) printed as
/// Markdown, and report.md, report.csv and pareto.png written into --out.
/// </summary>
internal static class ReportCommand
{
    public const string Usage = "report RUN_DIR... [--out DIR] [--device auto|cpu|emu|cuda[:N]] [--no-latency]";

    /// <summary>
    /// <paramref name="args"/> are the words after <c>report</c>: the run directories first, then the options.
    /// Progress lines and the table go to <paramref name="output"/>.
    /// </summary>
    public static int Run(IReadOnlyList<string> args, TextWriter output)
    {
        var runDirectories = args.TakeWhile(a => !a.StartsWith("--", StringComparison.Ordinal)).ToList();
        if (runDirectories.Count == 0)
        {
            throw new UsageException($"report needs at least one run directory, before the options: {Usage}");
        }

        Options options;
        try
        {
            options = new Options(args.Skip(runDirectories.Count));
        }
        catch (UsageException e) when (e.Message.StartsWith("unexpected argument", StringComparison.Ordinal))
        {
            throw new UsageException($"{e.Message}; run directories go before the options: {Usage}");
        }

        var outDirectory = options.String("out", ".");
        var device = options.Device(DeviceRequest.Auto, [.. DeviceRequest.Kinds]);
        var noLatency = options.Flag("no-latency");
        options.EnsureAllUsed();

        RunReport report;
        try
        {
            report = RunReport.Build(runDirectories, new ReportOptions
            {
                Device = device,
                MeasureLatency = !noLatency,
                Log = line => output.WriteLine(line),
            });
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            // No summary.json, a corrupt summary or metrics line: the message names the file.
            throw new UsageException(e.Message);
        }

        output.WriteLine();
        report.WriteMarkdown(output);

        IReadOnlyList<string> written;
        try
        {
            written = report.WriteFiles(outDirectory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"cannot write the report into {outDirectory}: {e.Message}");
        }

        output.WriteLine();
        output.WriteLine($"wrote {string.Join(", ", written.Select(Path.GetFileName))} to {Path.GetFullPath(outDirectory)}");
        return 0;
    }
}
