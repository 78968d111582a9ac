using CheapConv.Cli.Commands;
using CheapConv.Devices;
using CheapConv.Problems;
using CheapConv.Profiling;
using CheapConv.Training;

namespace CheapConv.Cli;

/// <summary>
/// Dispatches <c>cheapconv &lt;command&gt;</c> and turns failures into exit codes: 0 success, 1 a check
/// failed or a kernel faulted, 2 a usage error or an impossible problem, 3 a device that is not available,
/// 4 a training run that diverged (a loss or gradient went NaN or infinite), 130 a run interrupted by Ctrl+C.
/// User mistakes print one line, never a stack trace.
/// </summary>
internal static class CommandLine
{
    public const string Help =
        "cheapconv — cheap-convolution CUDA kernels, checked on the CPU emulator and on GPUs\n\n" +
        "usage:\n" +
        "  " + DemoCommand.Usage + "\n" +
        "                                         the main job: teacher, AT-distilled and undistilled students, report\n" +
        "  info                                   devices, embedded PTX, emulator status\n" +
        "  " + CheckConvCommand.Usage + "\n" +
        "                                         compare the three conv passes with the float64 reference\n" +
        "  " + CheckModelCommand.Usage + "\n" +
        "                                         kernels + autograd + models against the PyTorch fixtures\n" +
        "  " + BenchConvCommand.Usage + "\n" +
        "                                         time the three conv passes (GPU, or the C# CPU baseline)\n" +
        "  " + BenchStepCommand.Usage + "\n" +
        "                                         images/s of one training or distillation step\n" +
        "  " + ProfileCommand.Usage + "\n" +
        "                                         GPU performance without a GPU: ptxas resources and occupancy, the emulator's\n" +
        "                                         memory traffic and the roofline model of H100/H200 per pass or per step\n" +
        "  " + SummaryCommand.Usage + "\n" +
        "                                         parameters, state-dict values, MACs and layers of a WRN teacher or student\n" +
        "  " + TrainCommand.Usage + "\n" +
        "  " + TrainCommand.DistillUsage + "\n" +
        "  " + TrainCommand.RecipeUsage + "\n" +
        "                                         train a WRN teacher or student; distill a student with KD + AT\n" +
        "  " + EvalCommand.Usage + "\n" +
        "                                         test loss and accuracy of a checkpoint\n" +
        "  " + ExportCommand.Usage + "\n" +
        "                                         a checkpoint as an ONNX model (eval mode, normalisation in its metadata)\n" +
        "  " + ReportCommand.Usage + "\n" +
        "                                         the table over runs (params, sd, MACs, latency b1/b128, best/last error)\n" +
        "                                         as Markdown, report.csv and pareto.png\n\n" +
        "exit codes: 0 done, 1 a check failed or a kernel faulted, 2 bad options or files, 3 device not available,\n" +
        "            4 training diverged (a loss or gradient went NaN/infinite: nothing of that epoch is saved),\n" +
        "            130 interrupted by Ctrl+C (continue with --resume RUN_DIR)\n";

    /// <summary>The exit code of a training run stopped because a loss term or a gradient went non-finite.</summary>
    public const int DivergedExitCode = 4;

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        try
        {
            return Dispatch(args, output);
        }
        catch (Exception e) when (e is UsageException or InvalidProblemException)
        {
            error.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is DeviceUnavailableException or ToolkitUnavailableException)
        {
            error.WriteLine($"error: {e.Message}");
            return 3;
        }
        catch (Exception e) when (e is DeviceException or ToolkitException)
        {
            error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (TrainingDivergedException e)
        {
            error.WriteLine($"error: {e.Message}");
            return DivergedExitCode;
        }
    }

    private static int Dispatch(string[] args, TextWriter output)
    {
        if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
        {
            output.Write(Help);
            return args.Length == 0 ? 2 : 0;
        }

        return args[0] switch
        {
            "info" => InfoCommand.Run(new Options(args.Skip(1)), output),
            "check" when args.Length > 1 && args[1] == "model" => CheckModelCommand.Run(new Options(args.Skip(2)), output),
            "check" when args.Length > 1 && args[1] == "conv" => CheckConvCommand.Run(new Options(args.Skip(2)), output),
            "bench" when args.Length > 1 && args[1] == "step" => BenchStepCommand.Run(new Options(args.Skip(2)), output),
            "bench" when args.Length > 1 && args[1] == "conv" => BenchConvCommand.Run(new Options(args.Skip(2)), output),
            "summary" => SummaryCommand.Run(new Options(args.Skip(1)), output),
            "profile" => ProfileCommand.Run(new Options(args.Skip(1)), output),
            "report" => ReportCommand.Run(args.Skip(1).ToList(), output),
            "demo" => DemoCommand.Run(new Options(args.Skip(1)), output),
            "train" => TrainCommand.Run(new Options(args.Skip(1)), output),
            "distill" => TrainCommand.RunDistill(new Options(args.Skip(1)), output),
            "eval" => EvalCommand.Run(new Options(args.Skip(1)), output),
            "export" => ExportCommand.Run(new Options(args.Skip(1)), output),
            "bench" => throw new UsageException("bench needs an op: bench conv ..."),
            "check" => throw new UsageException("check needs what to check: check conv ... or check model ..."),
            _ => throw new UsageException($"unknown command '{args[0]}'; run 'cheapconv help' for the list"),
        };
    }
}
