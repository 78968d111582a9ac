using CheapConv.Reporting;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Reporting;

/// <summary>loss.png and accuracy.png from a run directory's metrics.</summary>
public sealed class TrainingChartsTests : IDisposable
{
    // ScottPlot's category-10 palette, which the charts use: C0 training CE / accuracy, C2 KD, C3 test.
    private const uint Blue = 0x1F77B4, Green = 0x2CA02C, Red = 0xD62728;

    private readonly FakeRuns _runs = new();

    public void Dispose() => _runs.Dispose();

    [Fact]
    public void Write_RunWithMetrics_WritesBothPngsAtTheirSize()
    {
        var summary = FakeRuns.Summary(epochs: 6, planned: 10, bestEpoch: 5);
        var directory = _runs.Write("student", summary, FakeRuns.MetricsFor(summary, kd: true, at: true));

        Assert.True(TrainingCharts.Write(directory));

        foreach (var file in new[] { RunFiles.LossChartFile, RunFiles.AccuracyChartFile })
        {
            var path = Path.Combine(directory, file);
            Assert.Equal((TrainingCharts.Width, TrainingCharts.Height), PngFile.Size(path));
            // The test curve is drawn (exact-colour pixels survive at the centre of a 2-pixel line).
            Assert.True(PngFile.CountColour(path, Red) > 100, $"{file}: no test curve");
            Assert.True(PngFile.CountColour(path, Blue) > 100, $"{file}: no training curve");
        }

        Assert.True(PngFile.CountColour(Path.Combine(directory, RunFiles.LossChartFile), Green) > 100, "KD curve missing");
        Assert.Empty(Directory.GetFiles(directory, "*.tmp"));
    }

    [Fact]
    public void Write_NoKdValues_DrawsNoKdCurve()
    {
        var summary = FakeRuns.Summary(mode: "AT");
        var directory = _runs.Write("at-only", summary, FakeRuns.MetricsFor(summary, kd: false, at: true));

        Assert.True(TrainingCharts.Write(directory));

        Assert.Equal(0, PngFile.CountColour(Path.Combine(directory, RunFiles.LossChartFile), Green));
    }

    [Fact]
    public void Write_SingleEpochWithoutSummary_StillDraws()
    {
        var summary = FakeRuns.Summary(epochs: 1, bestEpoch: 1, last: 0.91);
        var directory = _runs.Write("first-epoch", null, FakeRuns.MetricsFor(summary));

        Assert.True(TrainingCharts.Write(directory));

        Assert.Equal((TrainingCharts.Width, TrainingCharts.Height), PngFile.Size(Path.Combine(directory, RunFiles.AccuracyChartFile)));
    }

    [Fact]
    public void Write_NoMetricsYet_WritesNothing()
    {
        var directory = _runs.Write("fresh", FakeRuns.Summary(), null);

        Assert.False(TrainingCharts.Write(directory));

        Assert.False(File.Exists(Path.Combine(directory, RunFiles.LossChartFile)));
    }

    [Fact]
    public void Write_CorruptMetricsLine_ThrowsNamingFileAndLine()
    {
        var summary = FakeRuns.Summary();
        var directory = _runs.Write("corrupt", summary);
        File.AppendAllText(Path.Combine(directory, RunFiles.MetricsFile), "{\"epoch\": 4, \"loss\": \n");

        var e = Assert.Throws<InvalidDataException>(() => TrainingCharts.Write(directory));

        Assert.Contains($"{RunFiles.MetricsFile}:4", e.Message);
        Assert.False(File.Exists(Path.Combine(directory, RunFiles.LossChartFile)));
    }

    [Fact]
    public void Title_FromSummary_NamesModelModeAndDataset()
    {
        Assert.Equal("WRN-10-1 G(2) basic, AT, fashion-mnist", TrainingCharts.Title("x", FakeRuns.Summary()));
        Assert.Equal("WRN-10-1 S basic, no distillation, fashion-mnist", TrainingCharts.Title("x", FakeRuns.Summary(block: "S", mode: "none")));
    }

    [Fact]
    public void LatestPerEpoch_ResumedRunRepeatingEpochs_KeepsTheLaterRecordInEpochOrder()
    {
        var metrics = FakeRuns.MetricsFor(FakeRuns.Summary(epochs: 3));
        var repeated = metrics[1] with { TestAccuracy = 0.5 };
        var resumed = new List<EpochMetrics> { metrics[0], metrics[1], metrics[2], repeated, metrics[2] with { TestAccuracy = 0.6 } };

        var latest = TrainingCharts.LatestPerEpoch(resumed);

        Assert.Equal([1, 2, 3], latest.Select(m => m.Epoch));
        Assert.Equal([metrics[0].TestAccuracy, 0.5, 0.6], latest.Select(m => m.TestAccuracy));
    }
}
