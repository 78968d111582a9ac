using System.Globalization;
using CheapConv.Devices;
using CheapConv.Models;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>demo</c>: the main job in one command, short but real. On Fashion-MNIST it distills several WRN-16-2 students
/// (by default G(4), G(N) and B(2)) from the shipped WRN-16-2 teacher (models/wrn-16-2-fashion-mnist, 93.26% test
/// accuracy) with attention transfer, trains the same students without distillation, and ends with the report table
/// (params, MACs, latency, error) over the teacher and every student. Every step is an ordinary <c>distill</c> /
/// <c>train</c> / <c>report</c> run, so each run directory can be inspected, resumed or reported again. Sized to finish
/// in 10–15 minutes on 2 CPU cores; a GPU (--device auto picks it) makes it much faster.
/// </summary>
internal static class DemoCommand
{
    public const string Usage =
        "demo [--out DIR] [--device auto|cpu|emu|cuda[:N]] [--data DIR] [--teacher RUN_DIR (models/wrn-16-2-fashion-mnist)]\n" +
        "          [--students G4,DW,B2] [--train-subset 6000] [--test-subset 2000] [--epochs 3] [--seed 0] [--no-install]";

    /// <summary>The README's main-job command; a test checks the README says exactly this.</summary>
    public const string ReadmeCommand = "dotnet run -c Release --project src/CheapConv.Cli -- demo";

    /// <summary>The shipped teacher, relative to the repository's root.</summary>
    public const string ShippedTeacher = "models/wrn-16-2-fashion-mnist";

    public static int Run(Options options, TextWriter output)
    {
        var outDirectory = options.String("out") ?? Path.Combine("runs", $"demo-{DateTime.Now:yyyyMMdd-HHmmss}");
        var device = options.Device(DeviceRequest.Auto, [.. DeviceRequest.Kinds]).ToString();
        var data = options.String("data");
        var teacherOption = options.String("teacher");
        var students = options.String("students", "G4,DW,B2").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var subset = options.Int("train-subset", 6000);
        var testSubset = options.Int("test-subset", 2000);
        var epochs = options.Int("epochs", 3);
        var seed = options.Int("seed", 0);
        var noInstall = options.Flag("no-install");
        options.EnsureAllUsed();
        if (subset <= 0 || testSubset <= 0 || epochs <= 0)
        {
            throw new UsageException($"--train-subset, --test-subset and --epochs must be positive, got {subset}, {testSubset} and {epochs}");
        }

        if (students.Length == 0)
        {
            throw new UsageException("--students needs at least one unit, e.g. --students G4,DW,B2");
        }

        UnitSpec[] units;
        try
        {
            units = [.. students.Select(UnitSpec.Parse)];
        }
        catch (FormatException e)
        {
            throw new UsageException($"--students: {e.Message}");
        }

        // Each unit's runs are named after it: the same unit twice (G4 and G(4)) would train into one folder.
        if (units.Distinct().Count() != units.Length)
        {
            throw new UsageException($"--students names a unit twice: {string.Join(", ", units)}");
        }

        var teacher = teacherOption ?? FindShippedTeacher();
        if (Directory.Exists(outDirectory) && Directory.EnumerateFileSystemEntries(outDirectory).Any())
        {
            throw new UsageException($"{outDirectory} already holds files: give a new --out directory");
        }

        // Fashion-MNIST from Debian's package, installed here where the machine allows it (a given --data folder
        // needs nothing). Where it cannot be, the installer has said what to run; run the demo again after it.
        if (data is null && SystemPackages.Ensure("demo", allowInstall: !noInstall, output) is var setup and not 0)
        {
            output.WriteLine($"demo: then run it again: {ReadmeCommand}");
            return setup;
        }

        // The recipe of the paper, shortened: cosine decay suits a handful of epochs better than step drops.
        string[] Recipe(string runDirectory) =>
        [
            "--dataset", "fashion-mnist", .. data is null ? Array.Empty<string>() : ["--data", data],
            "--epochs", Text(epochs), "--train-subset", Text(subset), "--test-subset", Text(testSubset), "--schedule", "cosine",
            "--seed", Text(seed), "--deterministic", "--device", device, "--out", runDirectory,
        ];

        var runs = new List<string> { teacher };
        var steps = new List<(string Title, Func<int> Run)>();
        var total = 2 * students.Length + 1;
        foreach (var (unit, name) in students.Zip(units.Select(u => u.ToString())))
        {
            string distilled = Path.Combine(outDirectory, $"student-wrn-16-2-{unit}-at"), alone = Path.Combine(outDirectory, $"student-wrn-16-2-{unit}-alone");
            runs.AddRange([distilled, alone]);
            steps.Add(($"{steps.Count + 1}/{total} student: WRN-16-2 {name} distilled from the teacher with attention transfer (β = 1000), {subset} images, {epochs} epochs",
                () => TrainCommand.RunDistill(new Options(["--teacher", teacher, "--arch", "wrn-16-2", "--block", unit,
                    "--alpha", "0", "--beta", "1000", .. Recipe(distilled)]), output)));
            steps.Add(($"{steps.Count + 1}/{total} the same student trained alone",
                () => TrainCommand.Run(new Options(["--arch", "wrn-16-2", "--block", unit, .. Recipe(alone)]), output)));
        }

        steps.Add(($"{total}/{total} report", () => ReportCommand.Run([.. runs, "--out", outDirectory, "--device", device], output)));
        output.WriteLine($"demo: teacher {teacher}; runs in {Path.GetFullPath(outDirectory)}");

        foreach (var (title, run) in steps)
        {
            output.WriteLine();
            output.WriteLine($"== demo {title}");
            var code = run();
            // A run leaves its models, optimiser state and activations, large arrays, to the garbage collector, which
            // on a machine with memory to spare kept several runs' worth (the demo's peak resident memory grew with
            // each run): free them before the next run.
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            if (code != 0)
            {
                output.WriteLine($"demo stopped at step {title[..title.IndexOf(' ', StringComparison.Ordinal)]} (exit code {code}); the finished runs are in {outDirectory}");
                return code;
            }
        }

        output.WriteLine();
        output.WriteLine($"demo finished: runs, report.md, report.csv and pareto.png are in {Path.GetFullPath(outDirectory)}");
        return 0;
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    // The shipped teacher: under the working directory (the README runs from the repository's root), else beside the
    // CLI's build output (bin/<configuration>/<framework> inside the repository).
    private static string FindShippedTeacher()
    {
        if (Directory.Exists(ShippedTeacher))
        {
            return ShippedTeacher;
        }

        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, ShippedTeacher);
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new UsageException($"the shipped teacher {ShippedTeacher} was not found under {Directory.GetCurrentDirectory()} or the CLI's " +
            "folders: run the demo from the repository's root, or pass --teacher RUN_DIR");
    }
}
