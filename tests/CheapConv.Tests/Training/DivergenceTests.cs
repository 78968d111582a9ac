using System.Text.Json;
using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Training;

/// <summary>
/// A diverging run, through the built CLI in a child process: it stops at the step that went non-finite with exit code 4
/// and one line naming epoch, step and the term, no stack trace, and nothing non-finite in any checkpoint.
/// </summary>
public sealed class DivergenceTests : IDisposable
{
    private readonly SyntheticDataset _data = new();

    public void Dispose() => _data.Dispose();

    private (int Code, string Output, string Error, string Directory) Train(string name, string lr, int epochs)
    {
        var directory = Path.Combine(_data.Directory, name);
        var (code, output, error) = CliProcess.Run("train", "--arch", "wrn-10-1", "--data", _data.Directory, "--epochs", epochs.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--batch-size", "50", "--train-subset", "100", "--lr", lr, "--seed", "0", "--device", "cpu", "--out", directory);
        return (code, output, error, directory);
    }

    private static void AssertOneLineError(string error, string expected)
    {
        Assert.StartsWith("error: training diverged at ", error);
        Assert.Contains(expected, error);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.DoesNotContain("   at ", error);
        Assert.DoesNotContain("Exception", error);
    }

    [Fact]
    public void HugeLearningRate_InTheFirstEpoch_StopsAtTheStepWithExitCode4AndWritesNoCheckpoint()
    {
        // lr 1e20: the first step's update makes the second batch's cross-entropy infinite.
        var (code, _, error, directory) = Train("first-epoch", "1e20", 2);
        Assert.Equal(CheapConv.Cli.CommandLine.DivergedExitCode, code);
        AssertOneLineError(error, "epoch 1, step 2 of 2: the CE loss is +Infinity");
        Assert.False(File.Exists(Path.Combine(directory, RunFiles.CheckpointFile)));
        Assert.False(File.Exists(Path.Combine(directory, RunFiles.BestCheckpointFile)));
        Assert.False(File.Exists(Path.Combine(directory, RunFiles.MetricsFile)));
    }

    [Fact]
    public void LargeLearningRate_InTheSecondEpoch_KeepsTheFirstEpochsFiniteCheckpoint()
    {
        // lr 1e10: epoch 1 completes with finite values; the first step of epoch 2 gives a NaN gradient.
        var (code, _, error, directory) = Train("second-epoch", "1e10", 3);
        Assert.Equal(CheapConv.Cli.CommandLine.DivergedExitCode, code);
        AssertOneLineError(error, "epoch 2, step 1 of 2: the gradient of conv1.weight is NaN");
        foreach (var file in new[] { RunFiles.CheckpointFile, RunFiles.BestCheckpointFile })
        {
            var content = SafetensorsFile.Read(Path.Combine(directory, file));
            Assert.All(content.Tensors, t => Assert.Null(Checkpoint.FirstNonFinite(t.Value.Data)));
        }

        Assert.Equal(1, Checkpoint.Load(Path.Combine(directory, RunFiles.CheckpointFile)).State.Epoch);
        Assert.Equal([1], RunFiles.ReadMetrics(directory).Select(m => m.Epoch));
    }

    [Fact]
    public void HelpAndReadme_DocumentTheExitCode()
    {
        Assert.Contains("4 training diverged", CheapConv.Cli.CommandLine.Help);
        var readme = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "README.md"));
        Assert.Contains("4 when training diverged", readme.ReplaceLineEndings(" "));
    }

    [Fact]
    public void Checkpoint_OfANonFiniteModel_IsRefusedAndNoFileIsWritten()
    {
        var config = TrainingTests.Config("S", 1) with { Model = new ModelConfig("wrn-10-1", "S", "basic", 1, 10, 12) };
        var model = new WideResNet(config.Model.ToWrnConfig(), new CpuBackend());
        var weights = model.ExportStateDict();
        weights["fc.weight"][3] = float.NaN;
        model.LoadStateDict(weights, strict: true);
        var path = Path.Combine(_data.Directory, "nan.safetensors");
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Save(path, config, new TrainingState(1, 0.1, 1, null), model, null));
        Assert.Contains("fc.weight holds NaN", error.Message);
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(_data.Directory, "*.tmp"));
    }

    [Fact]
    public void Metrics_WithNonFiniteValues_SerialiseAsValidJsonAndReadBack()
    {
        var directory = _data.NewFolder("metrics");
        var metrics = new EpochMetrics(1, 0.1, double.NaN, double.PositiveInfinity, double.NegativeInfinity, null, 0.5, double.NaN, 0.1, double.PositiveInfinity, 1);
        RunFiles.AppendMetrics(directory, metrics);
        var line = File.ReadAllText(Path.Combine(directory, RunFiles.MetricsFile));
        using (JsonDocument.Parse(line))
        {
            // Valid JSON (a bare NaN token would not parse).
        }

        var read = Assert.Single(RunFiles.ReadMetrics(directory));
        Assert.True(double.IsNaN(read.Loss) && double.IsPositiveInfinity(read.Ce) && double.IsNegativeInfinity(read.Kd!.Value));
    }
}
