using ScottPlot;

namespace CheapConv.Reporting;

/// <summary>pareto.png: test error against parameters (left) and against MACs (right), log x axes.</summary>
internal static class ParetoPlot
{
    public const int Width = 1500;
    public const int Height = 640;

    private static readonly Dictionary<string, Color> ModeColours = new()
    {
        ["none"] = Colors.C7,
        ["KD"] = Colors.C0,
        ["AT"] = Colors.C3,
        ["KD+AT"] = Colors.C2,
    };

    public static void Write(RunReport report, string path)
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(2);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        var errorName = report.Options.ParetoError == ParetoError.Best ? "best" : "last-epoch";
        Draw(multiplot.GetPlot(0), report, r => r.Params, r => r.OnParamsFront, "parameters (trainable, log scale)", $"{errorName} test error vs parameters");
        Draw(multiplot.GetPlot(1), report, r => r.Macs, r => r.OnMacsFront, "MACs per image (log scale)", $"{errorName} test error vs MACs");
        PlotFiles.SavePng(multiplot, path, Width, Height);
    }

    private static void Draw(Plot plot, RunReport report, Func<ReportRow, long> cost, Func<ReportRow, bool> onFront, string xLabel, string title)
    {
        PlotFiles.Style(plot);
        plot.Title(title, size: 16);
        plot.XLabel(xLabel);
        plot.YLabel($"{(report.Options.ParetoError == ParetoError.Best ? "best" : "last-epoch")} test error (%)");

        var points = report.Rows
            .Select(r => (Row: r, X: Math.Log10(cost(r)), Y: RunReport.ParetoErrorOf(r, report.Options.ParetoError)))
            .Where(p => p.Y is not null)
            .Select(p => (p.Row, p.X, Y: p.Y!.Value))
            .ToList();
        if (points.Count == 0)
        {
            plot.Add.Annotation("no run has completed an epoch: nothing to plot");
            return;
        }

        var mixedArchs = report.Rows.Select(r => r.Arch).Distinct().Count() > 1;
        foreach (var group in points.GroupBy(p => p.Row.Mode))
        {
            var colour = ModeColours.GetValueOrDefault(group.Key, Colors.Black);
            var scatter = plot.Add.ScatterPoints(group.Select(p => p.X).ToArray(), group.Select(p => p.Y).ToArray(), colour);
            scatter.MarkerSize = 11;
            scatter.LegendText = group.Key == "none" ? "no distillation" : group.Key;
            foreach (var point in group)
            {
                var label = plot.Add.Text(point.Row.Label(mixedArchs), point.X, point.Y);
                label.LabelFontSize = 13;
                label.LabelFontColor = colour;
                label.LabelAlignment = Alignment.LowerLeft;
                label.OffsetX = 7;
                label.OffsetY = -3;
            }
        }

        var front = points.Where(p => onFront(p.Row)).OrderBy(p => p.X).ThenBy(p => p.Y).ToList();
        if (front.Count > 0)
        {
            var line = plot.Add.Scatter(front.Select(p => p.X).ToArray(), front.Select(p => p.Y).ToArray(), Colors.Black);
            line.ConnectStyle = ConnectStyle.StepHorizontal;
            line.LinePattern = LinePattern.Dashed;
            line.LineWidth = 1.5f;
            line.MarkerSize = 0;
            line.LegendText = "Pareto front (members circled)";

            // Runs of the same cost as a front member sit on the staircase without being on the front: the ring
            // says which are.
            var rings = plot.Add.ScatterPoints(front.Select(p => p.X).ToArray(), front.Select(p => p.Y).ToArray(), Colors.Black);
            rings.MarkerShape = MarkerShape.OpenCircle;
            rings.MarkerSize = 20;
            rings.MarkerLineWidth = 1.5f;
        }

        // A margin around the points (a lone point gets ±0.15 decades), and on the right room for the longest
        // label: about 7.5 px a character at 13 px against the ~650 px of a panel's data area. With w that fraction
        // of the axis, right − maxX = w·(right − left) gives right = (maxX − w·left)/(1 − w).
        double minX = points.Min(p => p.X), maxX = points.Max(p => p.X);
        var span = Math.Max(maxX - minX, 0.3);
        var left = minX - 0.08 * span;
        var labelFraction = Math.Min(0.45, (7.5 * points.Max(p => p.Row.Label(mixedArchs).Length) + 20) / 650);
        var right = Math.Max(maxX + 0.08 * span, (maxX - labelFraction * left) / (1 - labelFraction));
        plot.Axes.SetLimitsX(left, right);
        plot.Axes.Bottom.TickGenerator = PlotFiles.LogTicks(left, right);
        double minY = points.Min(p => p.Y), maxY = points.Max(p => p.Y);
        var ySpan = Math.Max(maxY - minY, 0.5);
        plot.Axes.SetLimitsY(Math.Max(0, minY - 0.1 * ySpan), maxY + 0.15 * ySpan);
        // Below the axes, not inside: dominated runs sit up and to the right, where an inside legend would go.
        plot.ShowLegend(Edge.Bottom);
    }
}
