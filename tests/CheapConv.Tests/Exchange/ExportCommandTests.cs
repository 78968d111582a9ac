using CheapConv.Backends;
using CheapConv.Export;
using CheapConv.Models;
using CheapConv.Tests.Cli;
using CheapConv.Tests.Training;
using CheapConv.Training;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit;

namespace CheapConv.Tests.Exchange;

/// <summary>
/// <c>cheapconv export</c> as a user meets it: a checkpoint becomes an ONNX file that ONNX Runtime runs to the logits of
/// <c>eval</c>'s model, with the run's normalisation in its metadata; bad input is one line and exit code 2, and no file.
/// </summary>
public sealed class ExportCommandTests(TrainingFixture fixture) : IDisposable, IClassFixture<TrainingFixture>
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cheapconv-export-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static readonly NormalizationConfig Normalization = new([0.2860f], [0.3530f]);

    /// <summary>A Fashion-MNIST-sized G(4) checkpoint with calibrated BN statistics; its model too.</summary>
    private (string Path, WideResNet Model) SaveCheckpoint(ModelConfig? stored = null, bool withNormalization = true)
    {
        var model = new ModelConfig("wrn-10-1", "G(4)", "basic", 1, 10, 28);
        var config = TrainingTests.Config("G(4)", 1) with { Model = stored ?? model, Normalization = withNormalization ? Normalization : null };
        var wrn = model.ToWrnConfig();
        var network = InteropModels.Create(wrn, seed: 2, InteropModels.Images(wrn, 2, seed: 3), 2);
        var path = Path.Combine(_directory, "run.safetensors");
        Checkpoint.Save(path, config, new TrainingState(1, 0.5, 1, null), network, null);
        return (path, network);
    }

    [Fact]
    public void Export_Checkpoint_RunsInOnnxRuntimeWithEvalsLogits()
    {
        var (checkpoint, _) = SaveCheckpoint();
        var onnx = Path.Combine(_directory, "model.onnx");
        var (code, output, error) = CliRun.Run("export", "--ckpt", checkpoint, "--onnx", onnx, "--batch", "3");
        Assert.True(code == 0, error);
        Assert.Contains("opset 13, batch 3", output, StringComparison.Ordinal);
        Assert.False(File.Exists(onnx + ".tmp"));

        // The model eval would build from the same file, against ONNX Runtime on the written file.
        var model = Checkpoint.Load(checkpoint).CreateModel(new CpuBackend());
        model.Eval();
        var images = InteropModels.Images(model.Config, 3, seed: 7);
        using var session = new InferenceSession(onnx);
        Assert.Equal("[0.286]", session.ModelMetadata.CustomMetadataMap[OnnxExport.MeanKey]);
        Assert.Equal("[0.353]", session.ModelMetadata.CustomMetadataMap[OnnxExport.StdKey]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxExport.InputName, new DenseTensor<float>(images, [3, 1, 28, 28]))]);
        var difference = InteropModels.RelativeError(InteropModels.Logits(model, images, 3), [.. Assert.Single(results).AsEnumerable<float>()]);
        Assert.True(difference <= InteropModels.Tolerance(model), $"relative error {difference:0.00e+00}");
    }

    [Fact]
    public void Export_RunDirectoryOfATrainedRun_RunsInOnnxRuntimeWithEvalsLogits()
    {
        // A run the trainer made (train, 3 epochs): its best.safetensors, as `eval --ckpt RUN_DIR` reads it.
        var onnx = Path.Combine(_directory, "teacher.onnx");
        var (code, _, error) = CliRun.Run("export", "--ckpt", fixture.TeacherDirectory, "--onnx", onnx);
        Assert.True(code == 0, error);
        var checkpoint = Checkpoint.Load(Checkpoint.Resolve(fixture.TeacherDirectory));
        var model = checkpoint.CreateModel(new CpuBackend());
        model.Eval();
        var images = InteropModels.Images(model.Config, 2, seed: 5);
        using var session = new InferenceSession(onnx);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(checkpoint.Config.Normalization!.Mean), session.ModelMetadata.CustomMetadataMap[OnnxExport.MeanKey]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxExport.InputName, new DenseTensor<float>(images, [2, 1, 12, 12]))]);
        var difference = InteropModels.RelativeError(InteropModels.Logits(model, images, 2), [.. Assert.Single(results).AsEnumerable<float>()]);
        Assert.True(difference <= InteropModels.Tolerance(model), $"relative error {difference:0.00e+00}");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-2")]
    [InlineData("many")]
    public void Export_BadBatch_IsAUsageError(string batch)
    {
        var (checkpoint, _) = SaveCheckpoint();
        AssertRefused("option --batch must be a positive integer or 'dynamic'", "--ckpt", checkpoint, "--onnx", Path.Combine(_directory, "m.onnx"), "--batch", batch);
    }

    [Fact]
    public void Export_MissingCheckpoint_IsAUsageError() =>
        AssertRefused("no such checkpoint file or run directory", "--ckpt", Path.Combine(_directory, "nothing"), "--onnx", Path.Combine(_directory, "m.onnx"));

    [Fact]
    public void Export_CorruptCheckpoint_IsAUsageError()
    {
        var (checkpoint, _) = SaveCheckpoint();
        var bytes = File.ReadAllBytes(checkpoint);
        File.WriteAllBytes(checkpoint, bytes[..(bytes.Length / 2)]);
        AssertRefused("truncated", "--ckpt", checkpoint, "--onnx", Path.Combine(_directory, "m.onnx"));
    }

    [Fact]
    public void Export_UnknownArchitecture_IsAUsageError()
    {
        var (checkpoint, _) = SaveCheckpoint(new ModelConfig("resnet-18", "G(4)", "basic", 1, 10, 28));
        AssertRefused("unknown architecture 'resnet-18'", "--ckpt", checkpoint, "--onnx", Path.Combine(_directory, "m.onnx"));
    }

    [Fact]
    public void Export_CheckpointWithoutNormalisation_IsAUsageError()
    {
        var (checkpoint, _) = SaveCheckpoint(withNormalization: false);
        AssertRefused("records no input normalisation", "--ckpt", checkpoint, "--onnx", Path.Combine(_directory, "m.onnx"));
    }

    [Fact]
    public void Export_MissingOutputFolder_IsAUsageError()
    {
        var (checkpoint, _) = SaveCheckpoint();
        AssertRefused("does not exist", "--ckpt", checkpoint, "--onnx", Path.Combine(_directory, "no", "m.onnx"));
    }

    [Fact]
    public void Export_WithoutOnnxOption_IsAUsageError()
    {
        var (checkpoint, _) = SaveCheckpoint();
        var (code, _, error) = CliRun.Run("export", "--ckpt", checkpoint);
        Assert.Equal(2, code);
        Assert.Contains("option --onnx is required", error, StringComparison.Ordinal);
    }

    /// <summary>Exit code 2, one line naming the problem, and nothing written.</summary>
    private void AssertRefused(string expected, params string[] args)
    {
        var (code, output, error) = CliRun.Run(["export", .. args]);
        Assert.Equal(2, code);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.Equal("", output);
        Assert.Empty(Directory.GetFiles(_directory, "*.onnx*", SearchOption.AllDirectories));
    }
}
