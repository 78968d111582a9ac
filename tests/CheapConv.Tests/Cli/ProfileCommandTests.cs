using CheapConv.Profiling;
using Xunit;
using static CheapConv.Tests.Cli.CliRun;

namespace CheapConv.Tests.Cli;

/// <summary><c>cheapconv profile</c> as a user meets it: option errors, a missing toolkit.</summary>
public class ProfileCommandTests
{
    [Theory]
    [InlineData("exactly one of --resources, --catalogue FILE or --step")]
    [InlineData("exactly one of --resources, --catalogue FILE or --step", "--resources", "--step")]
    [InlineData("unknown option --bogus", "--resources", "--bogus")]
    [InlineData("option --json takes no value", "--resources", "--json=yes")]
    [InlineData("does not exist", "--catalogue", "/nonexistent/shapes.txt")]
    [InlineData("option --gpu must be one of h100, h200, got 'a100'", "--catalogue", "/nonexistent/shapes.txt", "--gpu", "a100")]
    [InlineData("--sample must be 0 (every block) or positive, got -1", "--catalogue", "/nonexistent/shapes.txt", "--sample", "-1")]
    [InlineData("option --algo must be one of auto, direct, gemm, tiled, implicit-gemm, got 'fast'", "--catalogue", "/nonexistent/shapes.txt", "--algo", "fast")]
    [InlineData("--algo implicit-gemm runs the tensor cores in tf32; it cannot be combined with --precision fp32", "--catalogue", "/nonexistent/shapes.txt", "--algo", "implicit-gemm", "--precision", "fp32")]
    [InlineData("option --precision must be one of tf32, fp32, got 'fp16'", "--step", "--arch", "wrn-10-1", "--precision", "fp16")]
    [InlineData("option --arch is required", "--step")]
    [InlineData("option --device must be one of emu, got 'cpu'", "--step", "--arch", "wrn-40-2", "--device", "cpu")]
    [InlineData("WRN depth must be 6n+4", "--step", "--arch", "wrn-7-1")]
    [InlineData("--batch must be at least 2", "--step", "--arch", "wrn-10-1", "--batch", "1")]
    public void Profile_RejectsBadOptionsWithOneLineAndExitCode2(string message, params string[] options)
    {
        var (code, output, error) = Run(["profile", .. options]);
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", error);
        Assert.Contains(message, error);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.Equal("", output);
    }

    [Fact]
    public void Resources_WithoutTheToolkit_NamesThePackageWithExitCode3()
    {
        CudaToolkit.SearchPathForTests.Value = [Path.Combine(Path.GetTempPath(), "no-such-toolkit")];
        try
        {
            var (code, output, error) = Run("profile", "--resources", "--json");
            Assert.Equal(3, code);
            Assert.StartsWith("error: ptxas and cuobjdump not found", error);
            Assert.Contains("apt-get install nvidia-cuda-toolkit", error);
            Assert.Single(error.TrimEnd().Split('\n'));
            Assert.Equal("", output);
        }
        finally
        {
            CudaToolkit.SearchPathForTests.Value = null;
        }
    }

    [Fact]
    public void Catalogue_WithAForcedVariant_ProfilesWhatItImplementsAndListsTheRestWithTheReason()
    {
        var catalogue = Path.Combine(Path.GetTempPath(), $"cheapconv-profile-algo-{Guid.NewGuid():N}.txt");
        File.WriteAllText(catalogue, "N C H W K R S stride pad groups | used by\n2 8 6 6 8 3 3 1 1 8 | DW\n2 8 6 6 16 1 1 1 0 1 | DW\n");
        try
        {
            var (code, output, error) = Run("profile", "--catalogue", catalogue, "--algo", "tiled", "--sample", "0");
            Assert.True(code == 0, error);
            Assert.Contains("kernels: --algo tiled, --precision tf32", output);
            // The depthwise problem's three passes ran on the tiled kernels; the pointwise one's are listed, not profiled.
            Assert.Equal(3, output.Split('\n').Count(line => line.StartsWith("| 2 8 6 6 8 3 3 1 1 8 |", StringComparison.Ordinal) && line.Contains("conv2d_tiled_", StringComparison.Ordinal)));
            Assert.DoesNotContain("| 2 8 6 6 16 1 1 1 0 1 |", output);
            Assert.Contains("not implemented by these kernels (3 passes, left out of the sums below):", output);
            foreach (var pass in new[] { "forward", "backward_data", "backward_weight" })
            {
                Assert.Contains($"- 2 8 6 6 16 1 1 1 0 1 {pass}: ", output);
            }

            Assert.Contains("CC_ALGO_TILED", output);
        }
        finally
        {
            File.Delete(catalogue);
        }
    }

    [Fact]
    public void Help_ListsProfile()
    {
        var (code, output, _) = Run("help");
        Assert.Equal(0, code);
        Assert.Contains("profile --resources [--json]", output);
        Assert.Contains("profile --catalogue FILE", output);
        Assert.Contains("profile --step", output);
    }
}
