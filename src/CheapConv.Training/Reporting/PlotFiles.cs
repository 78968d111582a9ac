using System.Globalization;
using ScottPlot;
using SkiaSharp;

namespace CheapConv.Reporting;

/// <summary>What every chart of the project shares: a sans-serif font, log-scale ticks, and atomic PNG files.</summary>
internal static class PlotFiles
{
    // ScottPlot's own detection picks "DejaVu Serif" on Debian (its sans-serif probe matches the first DejaVu
    // family); name the sans faces explicitly and keep ScottPlot's choice only when none of them is installed.
    private static readonly string[] SansFonts = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica"];

    private static readonly Lazy<string?> InstalledSans = new(() =>
    {
        var families = SKFontManager.Default.FontFamilies.ToHashSet(StringComparer.OrdinalIgnoreCase);
        return SansFonts.FirstOrDefault(families.Contains);
    });

    /// <summary>Sets the sans-serif font on every part of <paramref name="plot"/> that draws text.</summary>
    public static void Style(Plot plot)
    {
        if (InstalledSans.Value is { } font)
        {
            plot.Font.Set(font);
        }
    }

    /// <summary>Renders <paramref name="plot"/> to <paramref name="path"/> through a temporary file and a rename.</summary>
    public static void SavePng(Plot plot, string path, int width, int height) =>
        WriteAtomically(path, plot.GetImageBytes(width, height, ImageFormat.Png));

    /// <summary>Renders <paramref name="multiplot"/> to <paramref name="path"/> through a temporary file and a rename.</summary>
    public static void SavePng(Multiplot multiplot, string path, int width, int height)
    {
        using var image = multiplot.Render(width, height);
        WriteAtomically(path, image.GetImageBytes(ImageFormat.Png));
    }

    private static void WriteAtomically(string path, byte[] bytes)
    {
        var temporary = path + ".tmp";
        try
        {
            File.WriteAllBytes(temporary, bytes);
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>
    /// Ticks for an axis that plots log10 of positive values (ScottPlot 5 has no log axis): labelled majors at
    /// 1, 2 and 5 × 10^k (at every integer × 10^k when the axis spans under 1.2 decades, which would otherwise
    /// show one or two labels), unlabelled minors at the other integers, over
    /// [<paramref name="log10Min"/>, <paramref name="log10Max"/>].
    /// </summary>
    public static ScottPlot.TickGenerators.NumericManual LogTicks(double log10Min, double log10Max)
    {
        var labelEvery = log10Max - log10Min < 1.2;
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (var decade = (int)Math.Floor(log10Min); decade <= (int)Math.Ceiling(log10Max); decade++)
        {
            for (var mantissa = 1; mantissa <= 9; mantissa++)
            {
                var value = mantissa * Math.Pow(10, decade);
                var position = Math.Log10(value);
                if (position < log10Min || position > log10Max)
                {
                    continue;
                }

                if (labelEvery || mantissa is 1 or 2 or 5)
                {
                    ticks.AddMajor(position, SiLabel(value));
                }
                else
                {
                    ticks.AddMinor(position);
                }
            }
        }

        return ticks;
    }

    /// <summary>20k, 1.5M, 3G: counts with an SI suffix, as the axis labels show them.</summary>
    public static string SiLabel(double value)
    {
        var (scaled, suffix) = Math.Abs(value) switch
        {
            >= 1e9 => (value / 1e9, "G"),
            >= 1e6 => (value / 1e6, "M"),
            >= 1e3 => (value / 1e3, "k"),
            _ => (value, ""),
        };
        return scaled.ToString("0.##", CultureInfo.InvariantCulture) + suffix;
    }
}
