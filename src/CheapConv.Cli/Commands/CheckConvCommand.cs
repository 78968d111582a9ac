using System.Globalization;
using CheapConv.Devices;
using CheapConv.IO;
using CheapConv.Problems;
using CheapConv.Verification;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>check conv</c>: runs the three passes of one convolution on a device and on the float64 C# reference,
/// prints the errors of each pass and fails (exit 1) when any element is outside the tolerance. On the emulator it
/// also prints the warnings the emulator gave the kernels (they do not fail the check: the results were right).
/// </summary>
internal static class CheckConvCommand
{
    public const string Usage =
        "check conv --n N --c C --h H --w W --k K --r R --s S [--stride ST] [--pad P] [--groups G]\n" +
        "           [--device cpu|emu|cuda[:N]] [--seed S] [--dump DIR]";

    public static int Run(Options options, TextWriter output)
    {
        var problem = ReadProblem(options);
        var request = options.Device(DeviceRequest.Emulator, "cpu", "emu", "cuda");
        var seed = options.Int("seed", 1);
        var dump = options.String("dump");
        options.EnsureAllUsed();

        var inputs = ConvInputs.Random(problem, seed);

        string deviceLabel;
        ConvOutputs outputs;
        using var warnings = new StringWriter();
        using (var device = ComputeDevice.Open(request))
        {
            if (device.Device is null)
            {
                deviceLabel = "cpu (C# fp32)";
                outputs = ConvCheck.RunOnCpu(problem, inputs);
            }
            else
            {
                deviceLabel = device.Device.Name;
                outputs = ConvCheck.RunOnDevice(device.Device, problem, inputs);
                WriteWarnings(device.Device, warnings);
            }
        }

        var result = ConvCheck.Compare(problem, inputs, outputs, deviceLabel);
        output.WriteLine($"problem  {problem}");
        output.WriteLine($"device   {deviceLabel}");
        output.WriteLine($"seed     {seed}");
        output.WriteLine($"{"pass",-16} {"elements",10} {"max abs err",12} {"max rel err",12} {"tolerance",10}  result");
        foreach (var pass in result.Passes)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{pass.Pass,-16} {pass.Elements,10} {pass.MaxAbsError,12:0.00e+00} {pass.MaxRelError,12:0.00e+00} {pass.Tolerance,10:0.00e+00}  {(pass.Passed ? "ok" : $"FAILED ({pass.Failures} elements)")}"));
            foreach (var failure in pass.FirstFailures)
            {
                output.WriteLine($"    {failure}");
            }
        }

        if (dump is not null)
        {
            Dump(dump, problem, inputs, outputs);
            output.WriteLine($"wrote x.npy w.npy dy.npy y.npy dx.npy dw.npy to {dump}");
        }

        output.Write(warnings.ToString());
        output.WriteLine(result.Passed ? "PASS" : "FAIL");
        return result.Passed ? 0 : 1;
    }

    /// <summary>
    /// Writes "warning: ..." for each warning the emulator gave since the last time they were taken (threads that
    /// returned while others waited at a barrier: legal on a GPU, but fragile); nothing for other devices.
    /// </summary>
    public static void WriteWarnings(Device device, TextWriter output)
    {
        if (device is EmulatedDevice emulator)
        {
            foreach (var warning in emulator.TakeWarnings())
            {
                output.WriteLine($"warning: {warning}");
            }
        }
    }

    /// <summary>
    /// Reads a problem from --n --c --h --w --k (required), --r (3), --s (= r), --stride (1), --pad (0),
    /// --groups (1); an impossible one is an <see cref="InvalidProblemException"/> that says why.
    /// </summary>
    public static ConvProblem ReadProblem(Options options)
    {
        int n = options.Int("n"), c = options.Int("c"), h = options.Int("h"), w = options.Int("w");
        int k = options.Int("k"), r = options.Int("r", 3), s = options.Int("s", r);
        int stride = options.Int("stride", 1), pad = options.Int("pad", 0), groups = options.Int("groups", 1);
        return ConvProblem.Create(n, c, h, w, k, r, s, stride, pad, groups);
    }

    private static void Dump(string directory, ConvProblem problem, ConvInputs inputs, ConvOutputs outputs)
    {
        try
        {
            Directory.CreateDirectory(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"cannot create the dump directory {directory}: {e.Message}");
        }

        NpyWriter.Write(Path.Combine(directory, "x.npy"), inputs.X, problem.InputShape);
        NpyWriter.Write(Path.Combine(directory, "w.npy"), inputs.W, problem.WeightShape);
        NpyWriter.Write(Path.Combine(directory, "dy.npy"), inputs.Dy, problem.OutputShape);
        NpyWriter.Write(Path.Combine(directory, "y.npy"), outputs.Y, problem.OutputShape);
        NpyWriter.Write(Path.Combine(directory, "dx.npy"), outputs.Dx, problem.InputShape);
        NpyWriter.Write(Path.Combine(directory, "dw.npy"), outputs.Dw, problem.WeightShape);
    }
}
