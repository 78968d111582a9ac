using CheapConv.Cli;
using CheapConv.Tests.Training;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Cli;

/// <summary>The main job end to end, shrunk to a synthetic 28×28 dataset of a few dozen images.</summary>
public sealed class DemoCommandTests : IDisposable
{
    private readonly SyntheticDataset _data = new(trainCount: 64, testCount: 32, side: 28);

    public void Dispose() => _data.Dispose();

    [Fact]
    public void Demo_OnATinyDataset_DistillsFromTheShippedTeacherTrainsAloneAndReports()
    {
        var outDirectory = Path.Combine(_data.Directory, "demo");
        using var output = new StringWriter();
        using var error = new StringWriter();
        // No --teacher: the demo finds the shipped one (models/wrn-16-2-fashion-mnist) from the test's build folder.
        var code = CommandLine.Run(["demo", "--data", _data.Directory, "--students", "G4,B2", "--train-subset", "64", "--test-subset", "32",
            "--epochs", "1", "--device", "cpu", "--out", outDirectory], output, error);
        Assert.True(code == 0, output.ToString() + error);

        foreach (var run in new[] { "student-wrn-16-2-G4-at", "student-wrn-16-2-G4-alone", "student-wrn-16-2-B2-at", "student-wrn-16-2-B2-alone" })
        {
            Assert.True(File.Exists(Path.Combine(outDirectory, run, "summary.json")), $"{run} has no summary.json");
            Assert.True(File.Exists(Path.Combine(outDirectory, run, "best.safetensors")), $"{run} has no checkpoint");
        }

        Assert.False(Directory.Exists(Path.Combine(outDirectory, "teacher-wrn-16-2")), "the demo trained a teacher of its own");
        var distilled = TrainingConfig.Read(Path.Combine(outDirectory, "student-wrn-16-2-G4-at"));
        Assert.EndsWith(Path.Combine("models", "wrn-16-2-fashion-mnist", "best.safetensors"), distilled.Distillation!.Teacher);
        var report = File.ReadAllText(Path.Combine(outDirectory, "report.md"));
        Assert.Contains("G(4)", report);
        Assert.Contains("B(2)", report);
        Assert.Contains("| AT", report);
        Assert.Contains("6.74 (8)", report); // the shipped teacher's row: 6.74% best error, at its epoch 8
        Assert.True(File.Exists(Path.Combine(outDirectory, "report.csv")));
        Assert.True(File.Exists(Path.Combine(outDirectory, "pareto.png")));
        Assert.Contains("demo finished", output.ToString());
    }

    [Theory]
    [InlineData("--students: unknown block 'Q7'", "--students", "G4,Q7")]
    [InlineData("--students needs at least one unit", "--students", ",")]
    [InlineData("--students names a unit twice: G(4), G(4)", "--students", "G4,G(4)")]
    [InlineData("--train-subset, --test-subset and --epochs must be positive, got 6000, 0 and 3", "--test-subset", "0")]
    public void Demo_WithBadOptions_SaysWhatWasWrong(string message, params string[] options)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        Assert.Equal(2, CommandLine.Run(["demo", "--data", _data.Directory, "--out", Path.Combine(_data.Directory, "unused"), .. options], output, error));
        Assert.Contains(message, error.ToString());
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
