using System.Globalization;
using CheapConv.Devices;
using CheapConv.Verification;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>check model</c>: the whole stack — kernels, autograd, models, losses, SGD — against the PyTorch fixtures
/// of tests/fixtures on a device; how a GPU machine without the .NET SDK runs the model-level check.
/// </summary>
internal static class CheckModelCommand
{
    public const string Usage = "check model [--device cpu|emu|cuda[:N]] [--fixtures DIR]";

    public static int Run(Options options, TextWriter output)
    {
        var request = options.Device(DeviceRequest.Emulator, "cpu", "emu", "cuda");
        var directory = options.String("fixtures") ?? DefaultDirectory();
        options.EnsureAllUsed();
        if (!Directory.Exists(directory) || !File.Exists(Path.Combine(directory, FixtureCheck.TeacherFile)))
        {
            throw new UsageException($"no PyTorch fixtures in {directory}: pass --fixtures DIR (the repository's tests/fixtures)");
        }

        using var device = ComputeDevice.Open(request);
        output.WriteLine($"device   {device.Device?.Name ?? "cpu (C# backend)"}");
        output.WriteLine($"fixtures {Path.GetFullPath(directory)}; bound per element: {FixtureCheck.ArrayBound:0e+00} of each tensor's largest value (derived bounds for loss.kd and the SGD update)");
        var failures = 0;
        foreach (var (fixture, comparisons) in FixtureCheck.All(device.Backend, directory))
        {
            var failed = comparisons.Where(c => !c.Passed).ToList();
            var worst = comparisons.MaxBy(c => c.Limit > 0 ? c.MaxAbsError / c.Limit : double.PositiveInfinity)!;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{fixture,-26} {comparisons.Count,4} tensors  {(failed.Count == 0 ? "ok" : $"FAILED ({failed.Count})")}  worst {worst.Name}: {worst.MaxAbsError:0.00e+00} of {worst.Limit:0.00e+00}"));
            foreach (var c in failed.Take(10))
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    {c.Name}: max error {c.MaxAbsError:0.00e+00} > {c.Limit:0.00e+00}"));
            }

            failures += failed.Count;
        }

        output.WriteLine(failures == 0 ? "PASS" : "FAIL");
        return failures == 0 ? 0 : 1;
    }

    // The repository's tests/fixtures, found from the working directory upwards.
    private static string DefaultDirectory()
    {
        for (var directory = new DirectoryInfo(Directory.GetCurrentDirectory()); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "tests", "fixtures");
            if (File.Exists(Path.Combine(candidate, FixtureCheck.TeacherFile)))
            {
                return candidate;
            }
        }

        return Path.Combine("tests", "fixtures");
    }
}
