using System.Globalization;

namespace CheapConv.Problems;

/// <summary>One line of a shape catalogue: a convolution problem and what uses it.</summary>
/// <param name="Source">"file:line", for messages.</param>
public sealed record CatalogueEntry(ConvProblem Problem, string UsedBy, string Source)
{
    public override string ToString() => $"{Problem} [{UsedBy}]";
}

/// <summary>
/// Reads the shape catalogues in shapes/ (one problem a line: <c>N C H W K R S stride pad groups | used by</c>,
/// <c>#</c> comments, an optional header line starting with "N C H"). Tests, the CLI and benchmarks read
/// the same files, so the problems checked are the problems measured.
/// </summary>
public static class ShapeCatalogue
{
    public static IReadOnlyList<CatalogueEntry> Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"shape catalogue {path} does not exist", path);
        }

        var entries = new List<CatalogueEntry>();
        var lineNumber = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#') || line.StartsWith("N C H", StringComparison.Ordinal))
            {
                continue;
            }

            var source = $"{Path.GetFileName(path)}:{lineNumber}";
            var bar = line.IndexOf('|');
            var fields = (bar < 0 ? line : line[..bar]).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var usedBy = bar < 0 ? "" : line[(bar + 1)..].Trim();
            if (fields.Length != 10)
            {
                throw new FormatException($"{source}: expected 10 numbers 'N C H W K R S stride pad groups', found {fields.Length}");
            }

            var v = new int[10];
            for (var i = 0; i < 10; i++)
            {
                if (!int.TryParse(fields[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out v[i]))
                {
                    throw new FormatException($"{source}: '{fields[i]}' is not an integer");
                }
            }

            try
            {
                entries.Add(new CatalogueEntry(ConvProblem.Create(v[0], v[1], v[2], v[3], v[4], v[5], v[6], stride: v[7], pad: v[8], groups: v[9]), usedBy, source));
            }
            catch (InvalidProblemException e)
            {
                throw new FormatException($"{source}: {e.Message}");
            }
        }

        return entries;
    }

    /// <summary>The same problem with another batch size (the emulator checks WRN shapes at a small batch).</summary>
    public static ConvProblem WithBatch(this ConvProblem problem, int n) =>
        ConvProblem.Create(n, problem.C, problem.H, problem.W, problem.K, problem.R, problem.S,
            problem.StrideH, problem.StrideW, problem.PadH, problem.PadW, problem.Groups);
}
