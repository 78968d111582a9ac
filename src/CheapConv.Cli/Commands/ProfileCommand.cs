using CheapConv.Devices;
using CheapConv.Interop;
using CheapConv.Models;
using CheapConv.Problems;
using CheapConv.Profiling;
using CheapConv.Training;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>profile</c>: GPU performance seen without a GPU. <c>--resources</c>: ptxas/cuobjdump resources, theoretical
/// occupancy and SASS mix of every kernel (the static report). <c>--catalogue</c>: every problem × pass of a shape
/// catalogue run on the profiling emulator, with the roofline model's time, bound and fraction. <c>--step</c>: every
/// launch of one training or distillation step, likewise. The work is done by CheapConv.Profiling; this presents it.
/// </summary>
internal static class ProfileCommand
{
    public const string Usage =
        "profile --resources [--json]\n" +
        "  profile --catalogue FILE [--batch N] [--gpu h100|h200] [--sample BLOCKS (32)] [--precision tf32|fp32]\n" +
        "          [--algo auto|direct|gemm|tiled|implicit-gemm] [--json]\n" +
        "  profile --step --arch wrn-40-2 --block G4 [--teacher-arch wrn-40-2] [--batch 128] [--gpu h100|h200] [--sample BLOCKS (32)]\n" +
        "          [--precision tf32|fp32] [--in-channels 3] [--image 32] [--classes 10] [--device emu] [--json]";

    // --algo's spellings, in the order of cc_algo.
    private static readonly string[] AlgorithmNames = ["auto", "direct", "gemm", "tiled", "implicit-gemm"];

    /// <summary>Blocks recorded per launch unless --sample says otherwise: batch-128 layers profile in seconds.</summary>
    public const int DefaultSampleBlocks = 32;

    public static int Run(Options options, TextWriter output)
    {
        var resources = options.Flag("resources");
        var catalogue = options.String("catalogue");
        var step = options.Flag("step");
        var modes = (resources ? 1 : 0) + (catalogue is null ? 0 : 1) + (step ? 1 : 0);
        if (modes != 1)
        {
            options.EnsureAllUsed();
            throw new UsageException("profile needs exactly one of --resources, --catalogue FILE or --step");
        }

        return resources ? Resources(options, output) : catalogue is not null ? Catalogue(options, catalogue, output) : Step(options, output);
    }

    private static int Resources(Options options, TextWriter output)
    {
        var json = options.Flag("json");
        options.EnsureAllUsed();
        var report = StaticReport.Build(CudaToolkit.Find(), KernelImages.Installed());
        if (json)
        {
            output.WriteLine(ProfileJson.Resources(report));
        }
        else
        {
            ProfileTables.Resources(report, output);
        }

        return 0;
    }

    private static int Catalogue(Options options, string path, TextWriter output)
    {
        var batch = options.String("batch") is null ? (int?)null : options.Int("batch");
        var (gpu, sample) = ModelOptions(options);
        var precision = Precision(options);
        var algorithm = (KernelAlgorithm)Array.IndexOf(AlgorithmNames, options.Choice("algo", "auto", AlgorithmNames));
        var json = options.Flag("json");
        options.EnsureAllUsed();
        if (algorithm == KernelAlgorithm.ImplicitGemm && precision == KernelPrecision.Fp32)
        {
            throw new UsageException("--algo implicit-gemm runs the tensor cores in tf32; it cannot be combined with --precision fp32");
        }

        if (batch is <= 0)
        {
            throw new UsageException($"--batch must be positive, got {batch}");
        }

        List<ConvProblem> problems;
        try
        {
            problems = ShapeCatalogue.Load(path).Select(e => batch is { } n ? e.Problem.WithBatch(n) : e.Problem).ToList();
        }
        catch (Exception e) when (e is FileNotFoundException or FormatException)
        {
            throw new UsageException(e.Message);
        }

        using var profile = EmulatorProfile.Open();
        using var run = new ProfiledRun(profile, ProfileSettings.For(gpu, sample), precision, algorithm);
        if (!json)
        {
            ProfileTables.CatalogueHeader(run.Settings, path, AlgorithmNames[(int)algorithm], precision, output);
        }

        // A forced variant skips the passes it does not implement (listed with the reason); the launcher's choice has none.
        var unsupported = new List<UnsupportedPass>();
        var passes = CatalogueProfile.Run(run, problems, json ? null : pass => ProfileTables.CatalogueRow(pass, output), unsupported);
        if (json)
        {
            output.WriteLine(ProfileJson.Catalogue(passes, unsupported));
        }
        else
        {
            ProfileTables.CatalogueFooter(passes, unsupported, output);
        }

        return 0;
    }

    private static int Step(Options options, TextWriter output)
    {
        var arch = options.String("arch") ?? throw new UsageException("option --arch is required, e.g. --arch wrn-40-2");
        var block = options.String("block", "S");
        var teacherArch = options.String("teacher-arch");
        var batch = options.Int("batch", 128);
        var inChannels = options.Int("in-channels", 3);
        var image = options.Int("image", 32);
        var classes = options.Int("classes", 10);
        _ = options.Device(DeviceRequest.Emulator, "emu");
        var (gpu, sample) = ModelOptions(options);
        var precision = Precision(options);
        var json = options.Flag("json");
        options.EnsureAllUsed();
        if (batch < 2)
        {
            throw new UsageException($"--batch must be at least 2 (training batch norm needs two values per channel), got {batch}");
        }

        WrnConfig student;
        WrnConfig? teacher = null;
        try
        {
            var (depth, width) = WrnConfig.ParseArch(arch);
            student = WrnConfig.Student(depth, width, UnitSpec.Parse(block), inChannels: inChannels, classes: classes, imageSize: image);
            student.Validate();
            if (teacherArch is not null)
            {
                var (teacherDepth, teacherWidth) = WrnConfig.ParseArch(teacherArch);
                teacher = WrnConfig.Teacher(teacherDepth, teacherWidth, inChannels, classes, image);
                teacher.Validate();
            }
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new UsageException(e.Message);
        }

        using var profile = EmulatorProfile.Open();
        using var run = new ProfiledRun(profile, ProfileSettings.For(gpu, sample), precision);
        StepProfile result;
        try
        {
            result = StepProfiler.Run(run, student, teacher, batch);
        }
        catch (Exception e) when (e is ArgumentException or InvalidProblemException)
        {
            throw new UsageException($"{student.Name}: {e.Message}");
        }

        if (json)
        {
            output.WriteLine(ProfileJson.Step(result, run.Settings));
        }
        else
        {
            ProfileTables.Step(result, run.Settings, output);
        }

        return 0;
    }

    // --precision: tf32 (the C library's default) or fp32 (the trainer's GpuBackend default: the exact kernels).
    private static KernelPrecision Precision(Options options) =>
        options.Choice("precision", "tf32", "tf32", "fp32") == "fp32" ? KernelPrecision.Fp32 : KernelPrecision.Tf32;

    // --gpu and --sample, shared by --catalogue and --step.
    private static (GpuModel Gpu, int Sample) ModelOptions(Options options)
    {
        var gpu = GpuModels.Find(options.Choice("gpu", "h100", "h100", "h200"))!;
        var sample = options.Int("sample", DefaultSampleBlocks);
        return sample < 0 ? throw new UsageException($"--sample must be 0 (every block) or positive, got {sample}") : (gpu, sample);
    }
}
