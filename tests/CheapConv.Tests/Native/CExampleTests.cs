using CheapConv.Tests.Emulator;
using Xunit;

namespace CheapConv.Tests.Native;

/// <summary>
/// The C example (examples/c/grouped_conv.c): a C99 program that runs a grouped convolution's three passes
/// through the C ABI of the emulator library and checks them against its own double-precision loops. It is
/// built with make against the library the native build made, into a fresh folder, and run; it exits 0
/// only when every element is within its derived error bound.
/// </summary>
public class CExampleTests
{
    [Fact]
    public void GroupedConvolution_BuildsRunsAndAgreesWithItsReference()
    {
        var build = Directory.CreateTempSubdirectory("cheapconv-c-example-");
        try
        {
            var (code, output) = NativeProcess.Run(
                FindOnPath("make"),
                "--no-print-directory",
                "-C", Path.Combine(TestPaths.RepositoryRoot, "examples", "c"),
                $"BUILD={build.FullName}",
                $"CHEAPCONV_LIB_DIR={TestPaths.Native("build", "lib")}",
                "run");

            Assert.True(code == 0, output);
            Assert.Matches(@"forward\s+max \|error\| \S+, max error/bound \S+ over 320 elements: ok", output);
            Assert.Matches(@"backward-data\s+max \|error\| \S+, max error/bound \S+ over 1008 elements: ok", output);
            Assert.Matches(@"backward-weight\s+max \|error\| \S+, max error/bound \S+ over 144 elements: ok", output);
            Assert.Contains("CC_ERROR_INVALID_VALUE: cc_conv_init: groups (3) must divide c (8)", output);
            Assert.Contains("all three passes are within their error bounds", output);
        }
        finally
        {
            build.Delete(recursive: true);
        }
    }

    private static string FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, program))
            .FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException($"{program} is not on PATH: the C example needs make and a C compiler");
}
