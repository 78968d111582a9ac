using CheapConv.Cli;
using CheapConv.Tests.Training;
using Xunit;

namespace CheapConv.Tests.Cli;

/// <summary>The main job end to end, shrunk to a synthetic 28×28 dataset of a few dozen images.</summary>
public sealed class DemoCommandTests : IDisposable
{
    private readonly SyntheticDataset _data = new(trainCount: 64, testCount: 32, side: 28);

    public void Dispose() => _data.Dispose();

    [Fact]
    public void Demo_OnATinyDataset_TrainsDistillsAndReports()
    {
        var outDirectory = Path.Combine(_data.Directory, "demo");
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = CommandLine.Run(["demo", "--data", _data.Directory, "--train-subset", "64", "--epochs", "1", "--device", "cpu", "--out", outDirectory], output, error);
        Assert.True(code == 0, output.ToString() + error);

        foreach (var run in new[] { "teacher-wrn-16-2", "student-wrn-16-2-DW-at", "student-wrn-16-2-DW-alone" })
        {
            Assert.True(File.Exists(Path.Combine(outDirectory, run, "summary.json")), $"{run} has no summary.json");
            Assert.True(File.Exists(Path.Combine(outDirectory, run, "best.safetensors")), $"{run} has no checkpoint");
        }

        var report = File.ReadAllText(Path.Combine(outDirectory, "report.md"));
        Assert.Contains("G(N)", report);
        Assert.Contains("| AT", report);
        Assert.True(File.Exists(Path.Combine(outDirectory, "report.csv")));
        Assert.True(File.Exists(Path.Combine(outDirectory, "pareto.png")));
        Assert.Contains("demo finished", output.ToString());
    }

    [Fact]
    public void Demo_IntoANonEmptyDirectory_IsRefused()
    {
        var outDirectory = _data.NewFolder("used");
        File.WriteAllText(Path.Combine(outDirectory, "keep.txt"), "mine");
        using var output = new StringWriter();
        using var error = new StringWriter();
        Assert.Equal(2, CommandLine.Run(["demo", "--data", _data.Directory, "--out", outDirectory], output, error));
        Assert.Contains("already holds files", error.ToString());
        Assert.Equal("mine", File.ReadAllText(Path.Combine(outDirectory, "keep.txt")));
    }
}
