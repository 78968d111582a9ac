using CheapConv.Devices;
using CheapConv.Reporting;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Reporting;

/// <summary>The report over run directories: values, notes, CSV, Markdown, Pareto fronts and plot, latency, bad input.</summary>
public sealed class RunReportTests : IDisposable
{
    private static readonly ReportOptions NoLatency = new() { MeasureLatency = false };

    private readonly FakeRuns _runs = new();

    public void Dispose() => _runs.Dispose();

    [Fact]
    public void Build_TwoRuns_RowsCarryTheSummaryValues()
    {
        var alone = FakeRuns.Summary(block: "G2", mode: "none", best: 0.875, bestEpoch: 3, last: 0.8125, epochs: 4, planned: 10, seed: 7);
        var distilled = FakeRuns.Summary(block: "B(2)", mode: "at", best: 0.9, bestEpoch: 2, last: 0.8875, epochs: 3);
        var report = RunReport.Build([_runs.Write("alone", alone), _runs.Write("distilled", distilled)], NoLatency);

        Assert.Equal(2, report.Rows.Count);
        var a = report.Rows[0];
        Assert.Equal(("alone", "wrn-10-1", "G(2)", "basic", "none"), (a.Name, a.Arch, a.Block, a.BlockType, a.Mode));
        Assert.Equal((alone.Params, alone.State, alone.Macs), (a.Params, a.State, a.Macs));
        // 100·(1 − 0.875) and 100·(1 − 0.8125): dyadic fractions, so the subtraction and the product are exact.
        Assert.Equal((12.5, 3, 18.75, 4, 10), (a.BestError!.Value, a.BestEpoch, a.LastError!.Value, a.Epochs, a.PlannedEpochs));
        Assert.Equal(("fashion-mnist", 7), (a.Dataset, a.Seed));
        var d = report.Rows[1];
        Assert.Equal(("B(2)", "bottle", "AT"), (d.Block, d.BlockType, d.Mode));
        Assert.Null(a.Latency.SmallBatchMilliseconds);
        Assert.Empty(report.Notes);
    }

    [Fact]
    public void Build_SummaryDisagreesWithItsModelAndMetrics_SaysSo()
    {
        var summary = FakeRuns.Summary();
        var directory = _runs.Write("inconsistent", summary with { Params = summary.Params + 1 }, FakeRuns.MetricsFor(summary with { Epochs = 2, BestEpoch = 1 }));

        var report = RunReport.Build([directory], NoLatency);

        Assert.Contains(report.Notes, n => n.StartsWith("inconsistent: summary.json says", StringComparison.Ordinal) && n.Contains("params"));
        Assert.Contains(report.Notes, n => n.Contains("metrics.jsonl ends at epoch 2") && n.Contains("summary.json says epoch 3"));
    }

    [Fact]
    public void Build_RunsOnDifferentCosts_MarksTheHandWorkedFronts()
    {
        // Last errors: cheap 12 %, mid 8 %, costly 9 %. By params (cheap < mid < costly): cheap and mid are on the
        // front, costly is dominated by mid. By MACs costly is cheapest (1M < 5M < 6M): it is on the front, cheap
        // (more MACs, worse error than costly) is not, mid (the best error) is.
        var cheap = FakeRuns.Summary(last: 0.88) with { Params = 1_000, Macs = 5_000_000 };
        var mid = FakeRuns.Summary(last: 0.92, best: 0.93) with { Params = 2_000, Macs = 6_000_000 };
        var costly = FakeRuns.Summary(last: 0.91, best: 0.95) with { Params = 3_000, Macs = 1_000_000 };
        string[] directories = [_runs.Write("cheap", cheap), _runs.Write("mid", mid), _runs.Write("costly", costly)];

        var byLast = RunReport.Build(directories, NoLatency);
        var byBest = RunReport.Build(directories, NoLatency with { ParetoError = ParetoError.Best });

        Assert.Equal([true, true, false], byLast.Rows.Select(r => r.OnParamsFront));
        Assert.Equal([false, true, true], byLast.Rows.Select(r => r.OnMacsFront));
        // Best errors 9, 7, 5 %: every extra parameter buys a better error, so all three are on the params front.
        Assert.Equal([true, true, true], byBest.Rows.Select(r => r.OnParamsFront));
        Assert.Equal([false, false, true], byBest.Rows.Select(r => r.OnMacsFront));
    }

    [Fact]
    public void Build_RunWithoutAnEpoch_HasNoErrorAndIsOffTheFront()
    {
        var fresh = FakeRuns.Summary(best: 0, bestEpoch: 0, last: 0, epochs: 0, planned: 200);
        var report = RunReport.Build([_runs.Write("fresh", fresh, null), _runs.Write("done", FakeRuns.Summary())], NoLatency);

        Assert.Null(report.Rows[0].BestError);
        Assert.Null(report.Rows[0].LastError);
        Assert.False(report.Rows[0].OnParamsFront);
        Assert.True(report.Rows[1].OnParamsFront);
        Assert.Contains("| fresh | WRN-10-1 | G(2) | basic |", report.ToMarkdown());
        Assert.Contains("| — | — | AT | 0/200 |", report.ToMarkdown());
    }

    [Fact]
    public void ToCsv_ParsedBack_GivesTheRowValues()
    {
        // BG(2,4) has a comma and the directory name a quote: both need RFC 4180 quoting to survive.
        var summary = FakeRuns.Summary(block: "BG(2,4)", mode: "KD+AT", best: 0.75, bestEpoch: 1, last: 0.625, epochs: 2, planned: 2) with { Teacher = "runs/t,1" };
        var report = RunReport.Build([_runs.Write("odd \"name\"", summary)], NoLatency);

        var lines = Csv.Parse(report.ToCsv());

        Assert.Equal(2, lines.Count);
        var row = lines[0].Zip(lines[1]).ToDictionary(p => p.First, p => p.Second);
        Assert.Equal("odd \"name\"", row["run"]);
        Assert.Equal("BG(2,4)", row["block"]);
        Assert.Equal("bottle", row["block_type"]);
        Assert.Equal(summary.Params.ToString(System.Globalization.CultureInfo.InvariantCulture), row["params"]);
        Assert.Equal(summary.Macs.ToString(System.Globalization.CultureInfo.InvariantCulture), row["macs"]);
        Assert.Equal(25.0, double.Parse(row["best_error_percent"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(37.5, double.Parse(row["last_error_percent"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(("1", "2", "KD+AT", "runs/t,1"), (row["best_epoch"], row["last_epoch"], row["mode"], row["teacher"]));
        Assert.Equal(("", "", "true"), (row["latency_small_ms"], row["latency_device"], row["pareto_params"]));
        Assert.Equal("not measured (--no-latency)", row["note"]);
    }

    [Fact]
    public void Build_TinyModelOnCpu_MeasuresPositiveLatencies()
    {
        var options = new ReportOptions { Device = DeviceRequest.Cpu, LargeBatch = 4, WarmupRuns = 1, MinTimedRuns = 3, MaxTimedRuns = 3, TimeBudget = TimeSpan.FromSeconds(30) };
        var report = RunReport.Build([_runs.Write("tiny", FakeRuns.Summary())], options);

        var latency = report.Rows[0].Latency;
        Assert.True(latency.SmallBatchMilliseconds > 0);
        Assert.True(latency.LargeBatchMilliseconds > 0);
        Assert.Equal((3, 3), (latency.SmallBatchRuns, latency.LargeBatchRuns));
        Assert.Equal(InferenceLatency.CpuLabel, latency.Device);
        Assert.Null(latency.Note);
        Assert.Contains($"latency b1 (ms, {InferenceLatency.CpuLabel})", report.ToMarkdown());
        Assert.Contains("latency b4 (ms,", report.ToMarkdown());
    }

    [Fact]
    public void Build_RunTrainedOnEmulator_IsTimedOnTheCpuWithANote()
    {
        var options = new ReportOptions { LargeBatch = 2, WarmupRuns = 0, MinTimedRuns = 1, MaxTimedRuns = 1 };
        var report = RunReport.Build([_runs.Write("emu-run", FakeRuns.Summary(device: "emu"))], options);

        var latency = report.Rows[0].Latency;
        Assert.Equal(InferenceLatency.CpuLabel, latency.Device);
        Assert.True(latency.SmallBatchMilliseconds > 0);
        Assert.Contains("emulated times mean nothing", latency.Note);
    }

    [Fact]
    public void Build_EmulatorAskedFor_RefusesToTime()
    {
        var report = RunReport.Build([_runs.Write("r", FakeRuns.Summary())], new ReportOptions { Device = DeviceRequest.Emulator });

        var latency = report.Rows[0].Latency;
        Assert.Null(latency.SmallBatchMilliseconds);
        Assert.Null(latency.LargeBatchMilliseconds);
        Assert.Contains("emulated times mean nothing", latency.Note);
        Assert.Contains("| — | — |", report.ToMarkdown());
    }

    [Fact]
    public void WriteFiles_WritesMarkdownCsvAndATwoPanelPareto()
    {
        string[] directories =
        [
            _runs.Write("a", FakeRuns.Summary(block: "G(2)", mode: "none", last: 0.85)),
            _runs.Write("b", FakeRuns.Summary(block: "G(2)", mode: "AT", last: 0.88)),
            _runs.Write("c", FakeRuns.Summary(block: "S", mode: "none", last: 0.9)),
        ];
        var report = RunReport.Build(directories, NoLatency);
        var output = Path.Combine(_runs.Root, "out");

        var written = report.WriteFiles(output);

        Assert.Equal([RunReport.MarkdownFile, RunReport.CsvFile, RunReport.ParetoFile], written.Select(Path.GetFileName));
        Assert.Equal(report.ToMarkdown(), File.ReadAllText(written[0]));
        Assert.Equal(report.ToCsv(), File.ReadAllText(written[1]));
        var (width, height) = PngFile.Size(written[2]);
        Assert.True(width >= 1000 && height >= 400, $"pareto.png is {width}x{height}");
        Assert.Empty(Directory.GetFiles(output, "*.tmp"));
    }

    [Fact]
    public void Build_MissingDirectory_ThrowsNamingIt()
    {
        var missing = Path.Combine(_runs.Root, "nope");
        var e = Assert.Throws<DirectoryNotFoundException>(() => RunReport.Build([missing], NoLatency));
        Assert.Contains(missing, e.Message);
    }

    [Fact]
    public void Build_DirectoryWithoutSummary_ThrowsNamingTheFile()
    {
        var directory = _runs.Write("empty", null, null);
        var e = Assert.Throws<FileNotFoundException>(() => RunReport.Build([directory], NoLatency));
        Assert.Contains(directory, e.Message);
        Assert.Contains(RunFiles.SummaryFile, e.Message);
    }

    [Theory]
    [InlineData("{\"arch\": \"wrn-10-1\", ", "is not a valid run summary")]
    [InlineData("{}", "\"arch\" is missing")]
    [InlineData("[1, 2]", "is not a valid run summary")]
    public void Build_CorruptSummary_ThrowsNamingTheFile(string json, string expected)
    {
        var directory = _runs.Write("corrupt", null, null);
        File.WriteAllText(Path.Combine(directory, RunFiles.SummaryFile), json);

        var e = Assert.Throws<InvalidDataException>(() => RunReport.Build([directory], NoLatency));

        Assert.Contains(Path.Combine(directory, RunFiles.SummaryFile), e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("mode", "distilled", "unknown mode 'distilled'")]
    [InlineData("block", "Q7", "unknown block 'Q7'")]
    [InlineData("arch", "resnet-18", "unknown architecture 'resnet-18'")]
    [InlineData("block_type", "wide", "unknown block_type 'wide'")]
    public void Build_SummaryWithAnImpossibleValue_ThrowsNamingFieldAndFile(string field, string value, string expected)
    {
        var summary = FakeRuns.Summary();
        summary = field switch
        {
            "mode" => summary with { Mode = value },
            "block" => summary with { Block = value },
            "arch" => summary with { Arch = value },
            _ => summary with { BlockType = value },
        };
        var directory = _runs.Write("bad-" + field, summary, null);

        var e = Assert.Throws<InvalidDataException>(() => RunReport.Build([directory], NoLatency));

        Assert.Contains(Path.Combine(directory, RunFiles.SummaryFile), e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Build_AccuracyOutOfRange_Throws()
    {
        var directory = _runs.Write("percent", FakeRuns.Summary() with { BestAccuracy = 91.0 }, null);
        var e = Assert.Throws<InvalidDataException>(() => RunReport.Build([directory], NoLatency));
        Assert.Contains("\"best_accuracy\" must be a fraction in [0, 1], got 91", e.Message);
    }

    [Fact]
    public void Build_CorruptMetricsLine_ThrowsNamingFileAndLine()
    {
        var directory = _runs.Write("bad-metrics", FakeRuns.Summary());
        var path = Path.Combine(directory, RunFiles.MetricsFile);
        var lines = File.ReadAllLines(path);
        lines[1] = lines[1][..20];
        File.WriteAllLines(path, lines);

        var e = Assert.Throws<InvalidDataException>(() => RunReport.Build([directory], NoLatency));

        Assert.Contains($"{path}:2", e.Message);
    }

    [Fact]
    public void Build_NoDirectories_Throws() => Assert.Throws<ArgumentException>(() => RunReport.Build([], NoLatency));

    [Theory]
    [InlineData(0.01234, "0.012")]
    [InlineData(3.14159, "3.14")]
    [InlineData(42.42, "42.4")]
    [InlineData(1234.5, "1235")]
    [InlineData(null, "—")]
    public void FormatMilliseconds_KeepsThreeSignificantFigures(double? value, string expected) =>
        Assert.Equal(expected, RunReport.FormatMilliseconds(value));
}

/// <summary>An independent RFC 4180 reader, so the CSV test does not check the writer against itself.</summary>
internal static class Csv
{
    public static List<List<string>> Parse(string text)
    {
        var rows = new List<List<string>>();
        var row = new List<string>();
        var field = new System.Text.StringBuilder();
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == ',')
            {
                row.Add(field.ToString());
                field.Clear();
            }
            else if (c == '\n')
            {
                row.Add(field.ToString());
                field.Clear();
                rows.Add(row);
                row = [];
            }
            else
            {
                field.Append(c);
            }
        }

        Xunit.Assert.False(quoted, "unterminated quoted field");
        Xunit.Assert.True(field.Length == 0 && row.Count == 0, "the last line has no line end");
        return rows;
    }
}
