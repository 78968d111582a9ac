using CheapConv.Cli;
using CheapConv.Cli.Commands;
using CheapConv.Models;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Training;

/// <summary>
/// train, distill and eval as a user meets them: a bad option or file is a <see cref="UsageException"/> — one
/// line, exit code 2 through CommandLine, no stack trace — raised before anything is trained; a good run writes its
/// files and its summary table.
/// </summary>
public sealed class TrainCommandTests(TrainingFixture fixture) : IClassFixture<TrainingFixture>
{
    private static (int Code, string Output) Train(params string[] args) => Invoke(TrainCommand.Run, args);

    private static (int Code, string Output) Distill(params string[] args) => Invoke(TrainCommand.RunDistill, args);

    private static (int Code, string Output) Eval(params string[] args) => Invoke(EvalCommand.Run, args);

    private static (int Code, string Output) Invoke(Func<Options, TextWriter, int> command, string[] args)
    {
        using var output = new StringWriter();
        var code = command(new Options(args), output);
        return (code, output.ToString());
    }

    private static void AssertUsageError(string expected, Func<(int, string)> run)
    {
        var error = Assert.Throws<UsageException>(() => run());
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Train_UnknownDataset_IsAUsageError() =>
        AssertUsageError("unknown dataset 'imagenet'", () => Train("--arch", "wrn-10-1", "--dataset", "imagenet", "--data", fixture.Data.Directory));

    [Fact]
    public void Train_MissingDataDirectory_IsAUsageError() =>
        AssertUsageError("does not exist", () => Train("--arch", "wrn-10-1", "--data", Path.Combine(fixture.Data.Directory, "nowhere")));

    [Fact]
    public void Train_UnknownOption_IsAUsageError() =>
        AssertUsageError("unknown option --teacher", () => Train("--arch", "wrn-10-1", "--teacher", "x"));

    [Fact]
    public void Train_BadArchitecture_IsAUsageError() =>
        AssertUsageError("depth must be 6n+4", () => Train("--arch", "wrn-11-1", "--data", fixture.Data.Directory));

    [Theory]
    [InlineData("1.5")]
    [InlineData("-0.1")]
    public void Distill_AlphaOutsideZeroOne_IsAUsageError(string alpha) =>
        AssertUsageError("--alpha must be in [0, 1]", () => Distill("--teacher", fixture.TeacherDirectory, "--arch", "wrn-10-1", "--block", "G2",
            "--alpha", alpha, "--data", fixture.Data.Directory, "--out", Path.Combine(fixture.Data.Directory, "never")));

    [Fact]
    public void Distill_TeacherOfAnotherInputSize_IsAUsageError()
    {
        var path = Path.Combine(fixture.Data.NewFolder("cifar-teacher"), "teacher.safetensors");
        var config = TrainingTests.Config("S", 1) with { Model = new ModelConfig("wrn-10-1", "S", "basic", 3, 10, 32), Dataset = "cifar10" };
        Checkpoint.Save(path, config, new TrainingState(1, 0.5, 1, null), new WideResNet(config.Model.ToWrnConfig(), new CheapConv.Backends.CpuBackend()), null);
        AssertUsageError("takes 3×32×32 images with 10 classes, but fashion-mnist has 1×12×12", () => Distill("--teacher", path, "--arch", "wrn-10-1",
            "--block", "G2", "--dataset", "fashion-mnist", "--data", fixture.Data.Directory));
    }

    [Fact]
    public void Distill_CorruptTeacher_IsAUsageError()
    {
        var path = Path.Combine(fixture.Data.NewFolder("corrupt"), "teacher.safetensors");
        var bytes = File.ReadAllBytes(Path.Combine(fixture.TeacherDirectory, RunFiles.BestCheckpointFile));
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        AssertUsageError("truncated", () => Distill("--teacher", path, "--arch", "wrn-10-1", "--block", "G2", "--data", fixture.Data.Directory));
    }

    [Fact]
    public void Eval_CorruptCheckpoint_IsAUsageError()
    {
        var path = Path.Combine(fixture.Data.NewFolder("garbage"), "c.safetensors");
        File.WriteAllBytes(path, [.. BitConverter.GetBytes(20L), .. "{not json at all!!!}"u8.ToArray()]);
        AssertUsageError("not valid JSON", () => Eval("--ckpt", path, "--data", fixture.Data.Directory));
    }

    [Fact]
    public void Resume_NotARunDirectory_IsAUsageError() =>
        AssertUsageError("not a run directory", () => Train("--resume", fixture.Data.NewFolder("empty"), "--data", fixture.Data.Directory));

    [Fact]
    public void Resume_WithAnotherLearningRate_IsAUsageError() =>
        AssertUsageError("learning_rate: 0.05 → 0.5", () => Train("--resume", fixture.TeacherDirectory, "--lr", "0.5", "--data", fixture.Data.Directory));

    [Fact]
    public void Resume_ADistillationRunWithTrain_IsAUsageError()
    {
        var stored = TrainingConfig.Read(fixture.TeacherDirectory);
        Assert.Null(stored.Distillation);
        AssertUsageError("resume it with train", () => Distill("--resume", fixture.TeacherDirectory, "--data", fixture.Data.Directory));
    }

    [Fact]
    public void Eval_OfATrainedRun_PrintsItsBestAccuracy()
    {
        var (code, output) = Eval("--ckpt", fixture.TeacherDirectory, "--data", fixture.Data.Directory, "--device", "cpu");
        Assert.Equal(0, code);
        var best = RunFiles.ReadSummary(fixture.TeacherDirectory).BestAccuracy;
        Assert.Contains(FormattableString.Invariant($"accuracy {best * 100:0.00}%"), output);
    }

    [Fact]
    public void Train_OneEpochOnASubset_WritesTheRunAndItsSummaryTable()
    {
        var directory = Path.Combine(fixture.Data.Directory, "cli-run");
        var (code, output) = Train("--arch", "wrn-10-1", "--block", "DW", "--data", fixture.Data.Directory, "--epochs", "1", "--batch-size", "50",
            "--train-subset", "100", "--deterministic", "--device", "cpu", "--out", directory);
        Assert.Equal(0, code);
        Assert.Contains("epoch 1/1:", output);
        Assert.Contains("best test accuracy", output);
        var config = TrainingConfig.Read(directory);
        Assert.Equal((0, 100, "G(N)", "cpu", true), (config.Seed, config.TrainSubset, config.Model.Block, config.Device, config.Deterministic));
        Assert.Equal(100, RunFiles.ReadSummary(directory).TrainSubset);
    }

    [Fact]
    public void Train_WithTestSubset_EvaluatesTheFirstTestImages()
    {
        var directory = Path.Combine(fixture.Data.Directory, "test-subset-run");
        var (code, output) = Train("--arch", "wrn-10-1", "--data", fixture.Data.Directory, "--epochs", "1", "--batch-size", "50",
            "--train-subset", "50", "--test-subset", "10", "--deterministic", "--device", "cpu", "--out", directory);
        Assert.Equal(0, code);
        Assert.Contains("50 train / 10 test images", output);
        Assert.Equal(10, TrainingConfig.Read(directory).TestSubset);
        // The recorded accuracy is the model's on exactly the first 10 test images.
        var checkpoint = Checkpoint.Load(Path.Combine(directory, RunFiles.BestCheckpointFile));
        var normalization = checkpoint.Config.Normalization!;
        var first = Evaluator.Run(checkpoint.CreateModel(new CheapConv.Backends.CpuBackend()), fixture.Test.First(10),
            new CheapConv.Data.Normalization([.. normalization.Mean], [.. normalization.Std]));
        Assert.Equal(first.Accuracy, RunFiles.ReadSummary(directory).BestAccuracy);
    }

    [Theory]
    [InlineData("0", "the test subset must hold at least 1 image, got 0")]
    [InlineData("101", "--test-subset 101 is more than the 100 test images of fashion-mnist")]
    public void Train_BadTestSubset_IsAUsageError(string subset, string expected) =>
        AssertUsageError(expected, () => Train("--arch", "wrn-10-1", "--data", fixture.Data.Directory, "--test-subset", subset,
            "--out", Path.Combine(fixture.Data.Directory, "never")));

    [Fact]
    public void Train_OnTheEmulator_CapturesTheStepByDefault_AndRecordsIt()
    {
        var directory = Path.Combine(fixture.Data.Directory, "emu-graph-run");
        var (code, output) = Train("--arch", "wrn-10-1", "--block", "G2", "--data", fixture.Data.Directory, "--epochs", "1", "--batch-size", "8",
            "--train-subset", "16", "--test-subset", "8", "--deterministic", "--device", "emu", "--out", directory);
        Assert.Equal(0, code);
        Assert.Contains("the step as a graph", output);
        Assert.True(TrainingConfig.Read(directory).Graph);
    }

    [Fact]
    public void Train_GraphOnTheCpu_IsAUsageError() =>
        AssertUsageError("--graph on needs a GPU device (cuda or emu): the C# backend of the cpu device has no graphs to capture; use --graph off or --device cuda|emu",
            () => Train("--arch", "wrn-10-1", "--data", fixture.Data.Directory, "--device", "cpu", "--graph", "on", "--out", Path.Combine(fixture.Data.Directory, "never")));

    [Fact]
    public void Distill_GraphOnTheCpu_IsAUsageError() =>
        AssertUsageError("--graph on needs a GPU device (cuda or emu)", () => Distill("--teacher", fixture.TeacherDirectory, "--arch", "wrn-10-1", "--block", "G2",
            "--alpha", "0.9", "--data", fixture.Data.Directory, "--device", "cpu", "--graph", "on", "--out", Path.Combine(fixture.Data.Directory, "never")));

    [Fact]
    public void Train_GraphNeitherOnNorOff_IsAUsageError() =>
        AssertUsageError("option --graph must be one of on, off, got 'yes'",
            () => Train("--arch", "wrn-10-1", "--data", fixture.Data.Directory, "--graph", "yes", "--out", Path.Combine(fixture.Data.Directory, "never")));

    [Fact]
    public void Train_Tf32OnTheEmulator_RunsOtherKernelsThanFp32_AndARunKeepsItsPrecision()
    {
        string Run(string precision)
        {
            var directory = Path.Combine(fixture.Data.Directory, $"emu-{precision}-run");
            var (code, _) = Train("--arch", "wrn-10-1", "--block", "G2", "--data", fixture.Data.Directory, "--epochs", "1", "--batch-size", "8",
                "--train-subset", "16", "--test-subset", "8", "--deterministic", "--device", "emu", "--precision", precision, "--out", directory);
            Assert.Equal(0, code);
            Assert.Equal(precision, TrainingConfig.Read(directory).Precision);
            return directory;
        }

        var fp32 = Run("fp32");
        var tf32 = Run("tf32");
        // A run is a pure function of its config: the same weights unless the precision reached the convolutions (the
        // 1x1 ones run on the tf32 tensor-core kernels, which round their operands).
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(fp32, "checkpoint.safetensors")), File.ReadAllBytes(Path.Combine(tf32, "checkpoint.safetensors")));
        AssertUsageError("precision: \"tf32\" → \"fp32\"", () => Train("--resume", tf32, "--epochs", "2", "--precision", "fp32"));
    }

    [Fact]
    public void Train_Tf32OnTheCpu_IsAUsageError() =>
        AssertUsageError("--precision tf32 needs a GPU device (cuda or emu): the C# backend of the cpu device computes in fp32",
            () => Train("--arch", "wrn-10-1", "--data", fixture.Data.Directory, "--device", "cpu", "--precision", "tf32", "--out", Path.Combine(fixture.Data.Directory, "never")));

    [Fact]
    public void Train_PrecisionNeitherFp32NorTf32_IsAUsageError() =>
        AssertUsageError("option --precision must be one of fp32, tf32, got 'fp16'",
            () => Train("--arch", "wrn-10-1", "--data", fixture.Data.Directory, "--precision", "fp16", "--out", Path.Combine(fixture.Data.Directory, "never")));

    [Fact]
    public void Eval_WithTestSubset_CountsTheFirstTestImages()
    {
        var (code, output) = Eval("--ckpt", fixture.TeacherDirectory, "--data", fixture.Data.Directory, "--device", "cpu", "--test-subset", "7");
        Assert.Equal(0, code);
        Assert.Matches(@"accuracy \d+\.\d\d% \(\d/7\)", output);
        Assert.Contains("(first 7)", output);
    }

    [Theory]
    [InlineData("0", "option --test-subset must be at least 1, got 0")]
    [InlineData("101", "option --test-subset 101 is more than the 100 test images")]
    [InlineData("x", "option --test-subset needs an integer, got 'x'")]
    public void Eval_BadTestSubset_IsAUsageError(string subset, string expected) =>
        AssertUsageError(expected, () => Eval("--ckpt", fixture.TeacherDirectory, "--data", fixture.Data.Directory, "--test-subset", subset));

    /// <summary>The fixture teacher's state dict alone, as a plain safetensors file (what PyTorch's side writes: no CheapConv metadata).</summary>
    private string TeacherStateDict(string folder, params SafetensorsTensor[] extra)
    {
        var model = Checkpoint.Load(Path.Combine(fixture.TeacherDirectory, RunFiles.BestCheckpointFile)).CreateModel(new CheapConv.Backends.CpuBackend());
        var path = Path.Combine(fixture.Data.NewFolder(folder), "state.safetensors");
        SafetensorsFile.Write(path, [.. model.StateDict().Select(e => new SafetensorsTensor(e.Name, [.. e.Tensor.Shape], e.Tensor.ToArray)), .. extra],
            new Dictionary<string, string>());
        return path;
    }

    [Fact]
    public void Eval_StateDictWithArch_GivesTheCheckpointsAccuracy()
    {
        var path = TeacherStateDict("plain-state");
        var (code, output) = Eval("--ckpt", path, "--arch", "wrn-10-1", "--block", "S", "--data", fixture.Data.Directory, "--device", "cpu");
        Assert.Equal(0, code);
        Assert.Contains("a state dict without CheapConv metadata", output);
        // The checkpoint's run normalised with the training set's statistics, which is what a state dict alone gets too.
        var (_, stored) = Eval("--ckpt", fixture.TeacherDirectory, "--data", fixture.Data.Directory, "--device", "cpu");
        Assert.Equal(stored.Split('\n')[1].Split(" on ")[0], output.Split('\n')[1].Split(" on ")[0]);
    }

    [Fact]
    public void Eval_StateDictOfAnotherBlock_IsAUsageError() =>
        AssertUsageError("missing tensors block1.layer.0.conv1.grouped.weight", () => Eval("--ckpt", TeacherStateDict("other-block"), "--arch", "wrn-10-1", "--block", "G2",
            "--data", fixture.Data.Directory, "--device", "cpu"));

    [Fact]
    public void Eval_StateDictOfADeeperNetwork_IsAUsageError() =>
        AssertUsageError("tensors block1.layer.1.bn1.weight are not part of WRN-10-1 S basic", () => Eval("--ckpt",
            TeacherStateDict("deeper", new SafetensorsTensor("block1.layer.1.bn1.weight", [16], () => new float[16])), "--arch", "wrn-10-1",
            "--data", fixture.Data.Directory, "--device", "cpu"));

    [Fact]
    public void Eval_BlockWithoutArch_IsAUsageError() =>
        AssertUsageError("--block and --block-type go with --arch", () => Eval("--ckpt", fixture.TeacherDirectory, "--block", "G2"));
}
