using CheapConv.Training;
using ScottPlot;

namespace CheapConv.Reporting;

/// <summary>
/// The per-run charts: <c>loss.png</c> (training loss and its CE/KD/AT parts, test loss) and <c>accuracy.png</c>
/// (training and test accuracy in %) against the epoch, drawn from a run directory's metrics.jsonl.
/// </summary>
internal static class TrainingCharts
{
    /// <summary>Chart width in pixels.</summary>
    public const int Width = 900;

    /// <summary>Chart height in pixels.</summary>
    public const int Height = 560;

    // Past this many epochs the markers hide the curves; lines alone read better.
    private const int MarkerEpochLimit = 40;

    /// <summary>
    /// Reads <c>metrics.jsonl</c> (and <c>summary.json</c> for the titles, when there is one) and writes
    /// <c>loss.png</c> and <c>accuracy.png</c> into <paramref name="runDirectory"/>, each through a temporary
    /// file and a rename. Returns false, writing nothing, while the run has no epoch yet. A corrupt metrics
    /// line or summary is an <see cref="InvalidDataException"/> naming the file.
    /// </summary>
    public static bool Write(string runDirectory)
    {
        var metrics = LatestPerEpoch(RunFiles.ReadMetrics(runDirectory));
        if (metrics.Count == 0)
        {
            return false;
        }

        var summary = File.Exists(Path.Combine(runDirectory, RunFiles.SummaryFile)) ? RunFiles.ReadSummary(runDirectory) : null;
        var title = Title(runDirectory, summary);
        WriteLossChart(Path.Combine(runDirectory, RunFiles.LossChartFile), metrics, title);
        WriteAccuracyChart(Path.Combine(runDirectory, RunFiles.AccuracyChartFile), metrics, title);
        return true;
    }

    /// <summary>
    /// One record per epoch in epoch order, the later line winning: a run resumed from a checkpoint older than
    /// its metrics file appends the epochs it repeats again, and those are the ones the run continued from.
    /// </summary>
    public static IReadOnlyList<EpochMetrics> LatestPerEpoch(IReadOnlyList<EpochMetrics> metrics) =>
        [.. metrics.GroupBy(m => m.Epoch).Select(g => g.Last()).OrderBy(m => m.Epoch)];

    /// <summary>"WRN-16-2 G(4) basic, AT, fashion-mnist" from the summary, else the directory's name.</summary>
    internal static string Title(string runDirectory, RunSummary? summary)
    {
        if (summary is null)
        {
            return Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(runDirectory)));
        }

        var mode = summary.Mode == "none" ? "no distillation" : summary.Mode;
        return $"{summary.Arch?.ToUpperInvariant()} {summary.Block} {summary.BlockType}, {mode}, {summary.Dataset}";
    }

    private static void WriteLossChart(string path, IReadOnlyList<EpochMetrics> metrics, string title)
    {
        var plot = NewEpochPlot(metrics, $"{title}: loss", "loss (nats per image, mean over the epoch)");
        var epochs = metrics.Select(m => (double)m.Epoch).ToArray();
        AddCurve(plot, epochs, metrics.Select(m => m.Loss), "training total (minimised)", Colors.Black, LinePattern.Solid, metrics.Count);
        AddCurve(plot, epochs, metrics.Select(m => m.Ce), "training CE", Colors.C0, LinePattern.Dashed, metrics.Count);
        if (metrics.Any(m => m.Kd is not null))
        {
            AddCurve(plot, epochs, metrics.Select(m => m.Kd ?? double.NaN), "training KD", Colors.C2, LinePattern.Dashed, metrics.Count);
        }

        AddCurve(plot, epochs, metrics.Select(m => m.TestLoss), "test CE", Colors.C3, LinePattern.Solid, metrics.Count);
        if (metrics.Any(m => m.At is not null))
        {
            // The unweighted AT sum is orders of magnitude below CE (β ≈ 10³ brings it to scale in the total), so
            // on the shared axis it would be a flat line at zero: it gets the right axis and its own label.
            var at = AddCurve(plot, epochs, metrics.Select(m => m.At ?? double.NaN), "training AT (right axis)", Colors.C1, LinePattern.Dotted, metrics.Count);
            at.Axes.YAxis = plot.Axes.Right;
            plot.Axes.Right.Label.Text = "AT loss, sum over the 3 groups (unweighted)";
        }

        plot.ShowLegend(Alignment.UpperRight);
        PlotFiles.SavePng(plot, path, Width, Height);
    }

    private static void WriteAccuracyChart(string path, IReadOnlyList<EpochMetrics> metrics, string title)
    {
        var plot = NewEpochPlot(metrics, $"{title}: accuracy", "accuracy (%)");
        var epochs = metrics.Select(m => (double)m.Epoch).ToArray();
        AddCurve(plot, epochs, metrics.Select(m => 100 * m.TrainAccuracy), "training (augmented batches, train mode)", Colors.C0, LinePattern.Dashed, metrics.Count);
        AddCurve(plot, epochs, metrics.Select(m => 100 * m.TestAccuracy), "test", Colors.C3, LinePattern.Solid, metrics.Count);
        var best = metrics.MaxBy(m => m.TestAccuracy)!;
        var marker = plot.Add.Marker(best.Epoch, 100 * best.TestAccuracy, MarkerShape.OpenCircle, 14, Colors.C3);
        marker.LegendText = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"best test {100 * best.TestAccuracy:0.00}% (epoch {best.Epoch})");
        plot.ShowLegend(Alignment.LowerRight);
        PlotFiles.SavePng(plot, path, Width, Height);
    }

    private static Plot NewEpochPlot(IReadOnlyList<EpochMetrics> metrics, string title, string yLabel)
    {
        var plot = new Plot();
        PlotFiles.Style(plot);
        plot.Title(title, size: 16);
        plot.XLabel("epoch");
        plot.YLabel(yLabel);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        var first = metrics.Min(m => m.Epoch);
        var last = metrics.Max(m => m.Epoch);
        // Half an epoch of margin: a single epoch still gets a visible axis around its point.
        plot.Axes.SetLimitsX(first - 0.5, last + 0.5);
        return plot;
    }

    private static ScottPlot.Plottables.Scatter AddCurve(Plot plot, double[] epochs, IEnumerable<double> values, string label, Color color, LinePattern pattern, int count)
    {
        var curve = plot.Add.Scatter(epochs, values.ToArray(), color);
        curve.LegendText = label;
        curve.LineWidth = 2;
        curve.LinePattern = pattern;
        curve.MarkerSize = count <= MarkerEpochLimit ? 6 : 0;
        return curve;
    }
}
