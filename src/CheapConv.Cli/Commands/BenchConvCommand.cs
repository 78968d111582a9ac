using System.Globalization;
using CheapConv.Benchmarking;
using CheapConv.Devices;
using CheapConv.Problems;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>bench conv</c>: times the three conv passes over a shape catalogue (or one problem) on a GPU or on the
/// C# CPU baseline, and prints a Markdown table with time, GFLOP/s, GB/s and the fraction of the roofline.
/// The emulator is refused: it exists for correctness, and its times mean nothing.
/// </summary>
internal static class BenchConvCommand
{
    public const string Usage =
        "bench conv [--catalogue FILE | --n N --c C --h H --w W --k K --r R --s S --stride ST --pad P --groups G]\n" +
        "           [--batch N] [--device auto|cpu|cuda[:N]] [--repeats R] [--out FILE.md]";

    public static int Run(Options options, TextWriter output)
    {
        var catalogue = options.String("catalogue");
        var batch = options.String("batch") is null ? (int?)null : options.Int("batch");
        var request = options.Device(DeviceRequest.Auto, "auto", "cpu", "cuda", "emu");
        var repeats = options.Int("repeats", 0);
        var outPath = options.String("out");
        var problems = catalogue is null ? [SingleProblem(options)] : LoadCatalogue(catalogue);
        options.EnsureAllUsed();

        if (request.Kind == "emu")
        {
            throw new UsageException("the emulator is for correctness only and its times mean nothing: bench on --device cuda or cpu");
        }

        if (batch is <= 0)
        {
            throw new UsageException($"--batch must be positive, got {batch}");
        }

        if (repeats < 0)
        {
            throw new UsageException($"--repeats must be positive, got {repeats}");
        }

        if (batch is { } n)
        {
            problems = problems.Select(p => p.WithBatch(n)).ToList();
        }

        using var device = ComputeDevice.Open(request);
        var cuda = device.Device as CudaDevice;
        var deviceLabel = cuda is null ? device.ToString() : $"{cuda.Name}, driver CUDA {cuda.DriverVersion}";
        repeats = repeats > 0 ? repeats : cuda is null ? 3 : 20;

        var report = new StringWriter(CultureInfo.InvariantCulture);
        report.WriteLine($"# conv benchmark: {deviceLabel}");
        report.WriteLine();
        report.WriteLine($"Date {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; median of {repeats} runs" +
            (cuda is null ? "." : $"; L2 flushed before each run; peaks {Peak(cuda.Info.PeakFp32Flops, 1e12, "TFLOP/s")}, {Peak(cuda.Info.PeakMemoryBytesPerSecond, 1e12, "TB/s")}."));
        report.WriteLine();
        report.WriteLine("| problem (N C H W K R S stride pad groups) | pass | median µs | min µs | GFLOP/s | GB/s | % of floor | bound |");
        report.WriteLine("|---|---|---:|---:|---:|---:|---:|---|");
        output.Write(report.ToString());

        foreach (var problem in problems)
        {
            var results = cuda is null ? ConvBenchmark.RunCpu(problem, repeats) : ConvBenchmark.RunCuda(cuda, problem, repeats);
            foreach (var r in results)
            {
                var line = string.Create(CultureInfo.InvariantCulture,
                    $"| {Shape(problem)} | {r.Pass} | {r.MedianMicroseconds:F1} | {r.MinMicroseconds:F1} | {r.GflopsPerSecond:F1} | {r.GigabytesPerSecond:F1} | {(r.FractionOfFloor is { } f ? $"{f * 100:F1}%" : "—")} | {(r.Bound.Length > 0 ? r.Bound : "—")} |");
                report.WriteLine(line);
                output.WriteLine(line);
            }
        }

        if (outPath is not null)
        {
            var temporary = outPath + ".tmp";
            File.WriteAllText(temporary, report.ToString());
            File.Move(temporary, outPath, overwrite: true);
            output.WriteLine($"wrote {outPath}");
        }

        return 0;
    }

    private static string Shape(ConvProblem p) =>
        $"{p.N} {p.C} {p.H} {p.W} {p.K} {p.R} {p.S} {p.StrideH} {p.PadH} {p.Groups}";

    private static string Peak(double? value, double unit, string name) =>
        value is { } v ? string.Create(CultureInfo.InvariantCulture, $"{v / unit:F1} {name}") : $"unknown {name}";

    private static ConvProblem SingleProblem(Options options)
    {
        if (options.String("n") is null)
        {
            throw new UsageException("give --catalogue FILE or a problem (--n --c --h --w --k ...)");
        }

        return CheckConvCommand.ReadProblem(options);
    }

    private static List<ConvProblem> LoadCatalogue(string path)
    {
        try
        {
            return ShapeCatalogue.Load(path).Select(e => e.Problem).ToList();
        }
        catch (Exception e) when (e is FileNotFoundException or FormatException)
        {
            throw new UsageException(e.Message);
        }
    }
}
