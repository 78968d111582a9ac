using CheapConv.Problems;
using Xunit;

namespace CheapConv.Tests;

/// <summary>Where the repository's files are, seen from the test assembly.</summary>
public static class TestPaths
{
    /// <summary>The repository root: the first folder above the test binaries that holds CheapConv.sln.</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    public static string Native(params string[] parts) => Path.Combine([RepositoryRoot, "native", .. parts]);

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "CheapConv.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"no CheapConv.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>
/// The shared shape catalogue as xunit data: the real WRN-40-2 / Moonshine problems (batch scaled down for
/// the emulator, which runs every CUDA thread as a fiber on 2 cores) and the rigorous odd sizes.
/// </summary>
public static class TestCatalogue
{
    /// <summary>Batch size the WRN problems are checked at on the emulator and the CPU.</summary>
    public const int EmulatorBatch = 2;

    public static IReadOnlyList<CatalogueEntry> Real { get; } = Load("wrn40-2-moonshine.txt");

    public static IReadOnlyList<CatalogueEntry> Rigorous { get; } = Load("rigorous.txt");

    /// <summary>
    /// Every catalogue problem by its source line ("file:line", which xunit shows); <see cref="Scaled"/> and
    /// <see cref="Full"/> turn it into the problem at the emulator's batch or at its own.
    /// </summary>
    public static TheoryData<string> Sources() => SourcesWhere(_ => true);

    /// <summary>The source lines of the catalogue's problems (real and rigorous) that <paramref name="keep"/> selects.</summary>
    public static TheoryData<string> SourcesWhere(Func<ConvProblem, bool> keep)
    {
        var data = new TheoryData<string>();
        foreach (var entry in Real.Concat(Rigorous).Where(e => keep(e.Problem)))
        {
            data.Add(entry.Source);
        }

        return data;
    }

    public static ConvProblem Scaled(string source)
    {
        var entry = Find(source);
        return Real.Contains(entry) ? entry.Problem.WithBatch(EmulatorBatch) : entry.Problem;
    }

    public static ConvProblem Full(string source) => Find(source).Problem;

    private static CatalogueEntry Find(string source) => Real.Concat(Rigorous).Single(e => e.Source == source);

    private static IReadOnlyList<CatalogueEntry> Load(string file) =>
        ShapeCatalogue.Load(Path.Combine(TestPaths.RepositoryRoot, "shapes", file));
}
