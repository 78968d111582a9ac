using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Training;

/// <summary>Checkpoints of models and optimiser state: names, round trip, refusals.</summary>
public sealed class CheckpointTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"cheapconv-checkpoint-{Guid.NewGuid():N}");

    public CheckpointTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static TrainingConfig Config(string block = "G(2)", int image = 12) =>
        TrainingTests.Config(block, 2) with { Model = new ModelConfig("wrn-10-1", block, "basic", 1, 10, image) };

    /// <summary>A model after one SGD step, so momentum buffers and BN statistics hold real values.</summary>
    private static (WideResNet Model, Sgd Optimizer) Stepped(TrainingConfig config, int seed)
    {
        var backend = new CpuBackend();
        var model = new WideResNet(config.Model.ToWrnConfig(), backend, seed);
        var optimizer = new Sgd(model.Parameters(), 0.1f, 0.9f, 5e-4f);
        using var scope = TensorScope.Begin();
        var images = Tensor.FromHost(backend, [2, 1, 12, 12], Enumerable.Range(0, 288).Select(i => MathF.Sin(i * seed)).ToArray());
        Ops.CrossEntropy(model.ForwardWithGroups(images).Logits, [1, 2]).Backward();
        optimizer.Step();
        return (model, optimizer);
    }

    [Fact]
    public void SaveLoad_RoundTripsWeightsStatisticsMomentumAndState()
    {
        var config = Config();
        var (model, optimizer) = Stepped(config, 3);
        var path = Path.Combine(_directory, "c.safetensors");
        var state = new TrainingState(7, 0.625, 5, null);
        Checkpoint.Save(path, config, state, model, optimizer);

        var checkpoint = Checkpoint.Load(path);
        Assert.Equal(config.ToJson(), checkpoint.Config.ToJson());
        Assert.Equal(state, checkpoint.State);
        Assert.Equal(config.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture), checkpoint.Metadata["data_seed"]);
        var (restored, restoredOptimizer) = Stepped(config, 4);
        checkpoint.LoadInto(restored);
        checkpoint.LoadOptimizerInto(restoredOptimizer, restored);
        var expected = model.ExportStateDict();
        Assert.Contains("block1.layer.0.bn1.running_mean", expected.Keys);
        Assert.All(restored.ExportStateDict(), e => Assert.Equal(expected[e.Key], e.Value));
        foreach (var (name, parameter) in model.NamedParameters())
        {
            var twin = restored.NamedParameters().Single(p => p.Name == name).Tensor;
            var saved = optimizer.ExportMomentum(parameter);
            Assert.NotNull(saved);
            Assert.Equal(saved, restoredOptimizer.ExportMomentum(twin));
        }
    }

    [Fact]
    public void LoadInto_AnotherArchitecture_IsRefusedNamingBoth()
    {
        var path = Path.Combine(_directory, "g2.safetensors");
        var (model, _) = Stepped(Config("G(2)"), 1);
        Checkpoint.Save(path, Config("G(2)"), new TrainingState(1, 0, 0, null), model, null);
        var other = new WideResNet(Config("G(4)").Model.ToWrnConfig(), new CpuBackend());
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Load(path).LoadInto(other));
        Assert.Contains("holds a WRN-10-1 G(2) basic for 1×12×12 images, 10 classes", error.Message);
        Assert.Contains("needs a WRN-10-1 G(4) basic for 1×12×12 images, 10 classes", error.Message);
    }

    [Fact]
    public void LoadInto_MissingTensors_AreNamed()
    {
        var config = Config("S");
        var model = new WideResNet(config.Model.ToWrnConfig(), new CpuBackend());
        var path = Path.Combine(_directory, "partial.safetensors");
        var full = Path.Combine(_directory, "full.safetensors");
        Checkpoint.Save(full, config, new TrainingState(0, 0, 0, null), model, null);
        var content = SafetensorsFile.Read(full);
        SafetensorsFile.Write(path,
            [.. content.Tensors.Where(t => t.Key != "fc.bias").Select(t => new SafetensorsTensor(t.Key, t.Value.Shape, () => t.Value.Data))],
            content.Metadata);
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Load(path).LoadInto(model));
        Assert.Contains("missing tensors fc.bias", error.Message);
    }

    [Fact]
    public void Load_SafetensorsWithoutOurMetadata_IsRefused()
    {
        var path = Path.Combine(_directory, "foreign.safetensors");
        SafetensorsFile.Write(path, [new("w", [1], () => [1f])], new Dictionary<string, string>());
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Load(path));
        Assert.Contains("not a CheapConv checkpoint", error.Message);
    }

    [Fact]
    public void Save_OverAnExistingCheckpoint_ReplacesItAtomically()
    {
        var config = Config("S");
        var model = new WideResNet(config.Model.ToWrnConfig(), new CpuBackend());
        var path = Path.Combine(_directory, "c.safetensors");
        Checkpoint.Save(path, config, new TrainingState(1, 0.1, 1, null), model, null);
        Checkpoint.Save(path, config, new TrainingState(2, 0.2, 2, null), model, null);
        Assert.Equal(2, Checkpoint.Load(path).State.Epoch);
        Assert.Equal([path], Directory.GetFiles(_directory));
    }

    [Fact]
    public void ResumeConflicts_OnlyEpochGrowthIsAllowed()
    {
        var stored = Config();
        Assert.Empty(TrainingConfig.ResumeConflicts(stored, stored with { Epochs = 10 }));
        Assert.Empty(TrainingConfig.ResumeConflicts(stored, stored with { Normalization = new NormalizationConfig([0.5f], [0.2f]) }));
        Assert.Equal(["seed: 5 → 6", "device: \"cpu\" → \"cuda\""], TrainingConfig.ResumeConflicts(stored, stored with { Seed = 6, Device = "cuda" }));
    }

    [Fact]
    public void LearningRateSchedule_ScalesThePapersMilestones()
    {
        Assert.Equal([60, 120, 160], LearningRateSchedule.Milestones(200));
        var config = Config() with { Epochs = 200, LearningRate = 0.1, Schedule = "step" };
        Assert.Equal(0.1, LearningRateSchedule.At(config, 59), 12);
        Assert.Equal(0.02, LearningRateSchedule.At(config, 60), 12);
        Assert.Equal(0.1 * 0.2 * 0.2 * 0.2, LearningRateSchedule.At(config, 199), 12);
        var cosine = config with { Schedule = "cosine" };
        Assert.Equal(0.1, LearningRateSchedule.At(cosine, 0), 12);
        Assert.Equal(0.05, LearningRateSchedule.At(cosine, 100), 12);
    }
}
