using CheapConv.Profiling;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>profile</c>: GPU performance seen without a GPU. <c>--resources</c>: ptxas/cuobjdump resources, theoretical
/// occupancy and SASS mix of every kernel (the static report). <c>--catalogue</c>: every problem × pass of a shape
/// catalogue run on the profiling emulator, with the roofline model's time, bound and fraction. <c>--step</c>: every
/// launch of one training or distillation step, likewise. The work is done by CheapConv.Profiling; this presents it.
/// </summary>
public static class ProfileCommand
{
    public const string Usage =
        "profile --resources [--json]\n" +
        "  profile --catalogue FILE [--batch N] [--gpu h100|h200] [--sample BLOCKS] [--json]\n" +
        "  profile --step --arch wrn-40-2 --block G4 [--teacher-arch wrn-40-2] [--batch 128] [--gpu h100|h200] [--sample BLOCKS]\n" +
        "          [--in-channels 3] [--image 32] [--classes 10] [--device emu] [--json]";

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

        if (resources)
        {
            var json = options.Flag("json");
            options.EnsureAllUsed();
            var report = StaticReport.Build(CudaToolkit.Find(), KernelImages.Embedded());
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

        throw new UsageException("profile --catalogue and --step need the profiling emulator library, which this build does not have yet");
    }
}
