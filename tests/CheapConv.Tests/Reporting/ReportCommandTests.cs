using CheapConv.Cli;
using CheapConv.Cli.Commands;
using CheapConv.Reporting;
using Xunit;

namespace CheapConv.Tests.Reporting;

/// <summary>The report command as a user meets it: the table on the console, the files, one-line errors.</summary>
public sealed class ReportCommandTests : IDisposable
{
    private readonly FakeRuns _runs = new();

    public void Dispose() => _runs.Dispose();

    private static (int Code, string Output) Run(params string[] args)
    {
        using var output = new StringWriter();
        var code = ReportCommand.Run(args, output);
        return (code, output.ToString());
    }

    [Fact]
    public void Report_TwoRunsNoLatency_PrintsTheTableAndWritesTheFiles()
    {
        var out_ = Path.Combine(_runs.Root, "report");
        var (code, output) = Run(
            _runs.Write("student-alone", FakeRuns.Summary(mode: "none")), _runs.Write("student-at", FakeRuns.Summary(mode: "AT")),
            "--out", out_, "--no-latency");

        Assert.Equal(0, code);
        Assert.Contains("| student-alone | WRN-10-1 | G(2) | basic |", output);
        Assert.Contains("| student-at | WRN-10-1 | G(2) | basic |", output);
        Assert.Contains($"wrote report.md, report.csv, pareto.png to {Path.GetFullPath(out_)}", output);
        foreach (var file in new[] { RunReport.MarkdownFile, RunReport.CsvFile, RunReport.ParetoFile })
        {
            Assert.True(File.Exists(Path.Combine(out_, file)), file);
        }
    }

    [Fact]
    public void Report_OnCpu_PrintsMeasuredLatencyWithTheDevice()
    {
        var (code, output) = Run(_runs.Write("tiny", FakeRuns.Summary()), "--out", Path.Combine(_runs.Root, "o"), "--device", "cpu");

        Assert.Equal(0, code);
        Assert.Contains($"latency b1 (ms, {InferenceLatency.CpuLabel})", output);
        Assert.Contains("timing WRN-10-1 G(2) basic", output);
    }

    [Fact]
    public void Report_NotARunDirectory_IsAUsageErrorNamingIt()
    {
        var directory = _runs.Write("not-a-run", null, null);

        var e = Assert.Throws<UsageException>(() => Run(directory, "--no-latency", "--out", _runs.Root));

        Assert.Contains(directory, e.Message);
        Assert.Contains("summary.json", e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Fact]
    public void Report_CorruptSummary_IsAUsageErrorNamingTheFile()
    {
        var directory = _runs.Write("corrupt", null, null);
        File.WriteAllText(Path.Combine(directory, "summary.json"), "{not json");

        var e = Assert.Throws<UsageException>(() => Run(directory, "--no-latency", "--out", _runs.Root));

        Assert.Contains(Path.Combine(directory, "summary.json"), e.Message);
    }

    [Theory]
    [InlineData(new string[0], "at least one run directory")]
    [InlineData(new[] { "--no-latency" }, "at least one run directory")]
    [InlineData(new[] { "r", "--device", "tpu" }, "--device must be one of auto, cpu, emu, cuda")]
    [InlineData(new[] { "r", "--latency" }, "unknown option --latency")]
    [InlineData(new[] { "a", "--out", "o", "b" }, "unexpected argument 'b': options look like --name value; run directories go before the options")]
    public void Report_BadArguments_AreUsageErrors(string[] args, string expected)
    {
        var e = Assert.Throws<UsageException>(() => Run(args));
        Assert.Contains(expected, e.Message);
    }
}
