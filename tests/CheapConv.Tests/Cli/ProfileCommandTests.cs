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
    public void Help_ListsProfile()
    {
        var (code, output, _) = Run("help");
        Assert.Equal(0, code);
        Assert.Contains("profile --resources [--json]", output);
        Assert.Contains("profile --catalogue FILE", output);
        Assert.Contains("profile --step", output);
    }
}
