using System.Globalization;
using CheapConv.Devices;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>demo</c>: the main job in one command, short but real. On Fashion-MNIST it trains a WRN-16-2 teacher
/// briefly, distills a depthwise-separable WRN-16-2 student (G(N)) from it with attention transfer, trains the
/// same student without distillation, and ends with the report table (params, MACs, latency, error) over the
/// three runs. Every step is an ordinary <c>train</c> / <c>distill</c> / <c>report</c> run, so each run directory
/// can be inspected, resumed or reported again. Sized to finish in about 10–15 minutes on 2 CPU cores; a GPU
/// (--device auto picks it) makes it much faster.
/// </summary>
internal static class DemoCommand
{
    public const string Usage =
        "demo [--out DIR] [--device auto|cpu|emu|cuda[:N]] [--data DIR] [--train-subset 8000] [--epochs 3] [--seed 0] [--no-install]";

    /// <summary>The README's main-job command; a test checks the README says exactly this.</summary>
    public const string ReadmeCommand = "dotnet run -c Release --project src/CheapConv.Cli -- demo";

    public static int Run(Options options, TextWriter output)
    {
        var outDirectory = options.String("out") ?? Path.Combine("runs", $"demo-{DateTime.Now:yyyyMMdd-HHmmss}");
        var device = options.Device(DeviceRequest.Auto, [.. DeviceRequest.Kinds]).ToString();
        var data = options.String("data");
        var subset = options.Int("train-subset", 8000);
        var epochs = options.Int("epochs", 3);
        var seed = options.Int("seed", 0);
        var noInstall = options.Flag("no-install");
        options.EnsureAllUsed();
        if (subset <= 0 || epochs <= 0)
        {
            throw new UsageException($"--train-subset and --epochs must be positive, got {subset} and {epochs}");
        }

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

        string teacher = Path.Combine(outDirectory, "teacher-wrn-16-2"),
            distilled = Path.Combine(outDirectory, "student-wrn-16-2-DW-at"),
            alone = Path.Combine(outDirectory, "student-wrn-16-2-DW-alone");

        // The recipe of the paper, shortened: cosine decay suits a handful of epochs better than step drops.
        string[] Recipe(string runDirectory) =>
        [
            "--dataset", "fashion-mnist", .. data is null ? Array.Empty<string>() : ["--data", data],
            "--epochs", Text(epochs), "--train-subset", Text(subset), "--schedule", "cosine",
            "--seed", Text(seed), "--deterministic", "--device", device, "--out", runDirectory,
        ];

        var steps = new (string Title, Func<int> Run)[]
        {
            ($"1/4 teacher: WRN-16-2 trained alone on {subset} images, {epochs} epochs",
                () => TrainCommand.Run(new Options(["--arch", "wrn-16-2", "--block", "S", .. Recipe(teacher)]), output)),
            ("2/4 student: WRN-16-2 G(N) distilled from the teacher with attention transfer (β = 1000)",
                () => TrainCommand.RunDistill(new Options(["--teacher", teacher, "--arch", "wrn-16-2", "--block", "DW",
                    "--alpha", "0", "--beta", "1000", .. Recipe(distilled)]), output)),
            ("3/4 the same student trained alone",
                () => TrainCommand.Run(new Options(["--arch", "wrn-16-2", "--block", "DW", .. Recipe(alone)]), output)),
            ("4/4 report",
                () => ReportCommand.Run([teacher, distilled, alone, "--out", outDirectory, "--device", device], output)),
        };

        foreach (var (title, run) in steps)
        {
            output.WriteLine();
            output.WriteLine($"== demo {title}");
            var code = run();
            if (code != 0)
            {
                output.WriteLine($"demo stopped at step {title[..3]} (exit code {code}); the finished runs are in {outDirectory}");
                return code;
            }
        }

        output.WriteLine();
        output.WriteLine($"demo finished: runs, report.md, report.csv and pareto.png are in {Path.GetFullPath(outDirectory)}");
        return 0;
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);
}
