using CheapConv.Backends;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Training;

/// <summary>
/// End to end on the C# CPU backend with a tiny WRN-10-1 on 320 synthetic 12×12 images: training and distillation
/// lower the loss, the run directory holds its files, and an interrupted and resumed run is bit-identical to an
/// uninterrupted one.
/// </summary>
public sealed class TrainingTests(TrainingFixture fixture) : IClassFixture<TrainingFixture>
{
    /// <summary>The tests' recipe: the paper's SGD with a cosine schedule (3 epochs of the step schedule would decay twice by epoch 2).</summary>
    internal static TrainingConfig Config(string block, int epochs, DistillationConfig? distillation = null, int seed = 5, string schedule = "cosine") =>
        new(new ModelConfig("wrn-10-1", block, "basic", 1, 10, 12), "fashion-mnist", TrainSubset: null, epochs, BatchSize: 32,
            LearningRate: 0.05, Momentum: 0.9, WeightDecay: 5e-4, Schedule: schedule, LrDecay: 0.2, Nesterov: false, Augment: true,
            seed, Deterministic: true, Device: "cpu", distillation);

    internal static TrainingOutcome Run(TrainingConfig config, string directory, TrainingFixture data, ITrainingObserver observer, bool resume = false, CancellationToken cancellation = default) =>
        Trainer.Run(new TrainingRunOptions
        {
            Config = config,
            RunDirectory = directory,
            Backend = new CpuBackend(),
            Device = "cpu: test",
            Train = data.Train,
            Test = data.Test,
            Resume = resume,
            Observer = observer,
        }, cancellation);

    private static EpochMetrics WithoutTimes(EpochMetrics m) => m with { ImagesPerSecond = 0, Seconds = 0 };

    [Fact]
    public void Train_ThreeEpochs_LossFallsAndRunFilesAreWritten()
    {
        var metrics = RunFiles.ReadMetrics(fixture.TeacherDirectory);
        Assert.Equal([1, 2, 3], metrics.Select(m => m.Epoch));
        Assert.True(metrics[2].Loss < 0.8 * metrics[0].Loss, $"training loss {string.Join(" → ", metrics.Select(m => m.Loss))} did not fall by a fifth");
        Assert.All(metrics, m => Assert.Null(m.Kd));
        Assert.All(metrics, m => Assert.Equal(m.Loss, m.Ce));
        Assert.Equal([0.05, 0.05 * 0.75, 0.05 * 0.25], metrics.Select(m => m.LearningRate), (a, b) => Math.Abs(a - b) < 1e-12);

        var summary = RunFiles.ReadSummary(fixture.TeacherDirectory);
        Assert.Equal(("wrn-10-1", "S", "none", 3, 3), (summary.Arch, summary.Block, summary.Mode, summary.Epochs, summary.PlannedEpochs));
        Assert.Equal(metrics.Max(m => m.TestAccuracy), summary.BestAccuracy);
        Assert.Equal(metrics[^1].TestAccuracy, summary.LastAccuracy);
        Assert.True(summary.Params > 0 && summary.Macs > 0 && summary.ImagesPerSecond > 0);
        Assert.Equal(fixture.Teacher.Summary, summary);

        foreach (var file in new[] { RunFiles.ConfigFile, RunFiles.CheckpointFile, RunFiles.BestCheckpointFile, RunFiles.MetricsFile, RunFiles.SummaryFile })
        {
            Assert.True(File.Exists(Path.Combine(fixture.TeacherDirectory, file)), file);
        }

        Assert.Empty(Directory.GetFiles(fixture.TeacherDirectory, "*.tmp"));
        var best = Checkpoint.Load(Path.Combine(fixture.TeacherDirectory, RunFiles.BestCheckpointFile));
        Assert.Equal(summary.BestEpoch, best.State.Epoch);
        Assert.False(best.HasOptimizerState);
        Assert.True(Checkpoint.Load(Path.Combine(fixture.TeacherDirectory, RunFiles.CheckpointFile)).HasOptimizerState);
    }

    [Fact]
    public void Distill_WithKdAndAt_LossFallsAndPartsAreLogged()
    {
        var teacher = Checkpoint.Resolve(fixture.TeacherDirectory);
        var distillation = new DistillationConfig(teacher, TrainingTests.Config("S", 1).Model, Alpha: 0.5, Temperature: 4, Beta: 1e3);
        var directory = fixture.Data.NewFolder("distill-run");
        var observer = new RecordingObserver();
        var outcome = Run(Config("G(4)", TrainingFixture.Epochs, distillation), directory, fixture, observer);

        var metrics = RunFiles.ReadMetrics(directory);
        Assert.True(outcome.Completed);
        Assert.Equal("KD+AT", outcome.Summary.Mode);
        Assert.True(metrics[2].Loss < 0.8 * metrics[0].Loss, $"distillation loss {string.Join(" → ", metrics.Select(m => m.Loss))} did not fall by a fifth");
        Assert.All(metrics, m => Assert.True(m.Kd > 0 && m.At > 0, "KD and AT parts must be logged"));
        // The total is the weighted sum of the logged parts (each a mean over the same images).
        Assert.All(metrics, m => Assert.Equal(0.5 * m.Ce + 0.5 * m.Kd!.Value + 1e3 * m.At!.Value, m.Loss, 1e-4 * m.Loss));
        Assert.Equal(teacher, outcome.Summary.Teacher);
        // Progress comes every Trainer.ProgressInterval steps and at each epoch's last (each report reads the step log back):
        // with 10 batches an epoch, once per epoch, after its last batch, with that epoch's means.
        Assert.Equal([10, 10, 10], observer.Batches.Select(b => b.Batch));
        Assert.All(metrics.Zip(observer.Batches), pair => Assert.Equal(pair.First.Loss, pair.Second.Loss, 1e-9 * pair.First.Loss));
    }

    [Fact]
    public void Resume_AfterInterruption_MetricsAndWeightsMatchAnUninterruptedRun()
    {
        var whole = fixture.Data.NewFolder("whole-run");
        var split = fixture.Data.NewFolder("split-run");
        var config = Config("G(2)", 4, seed: 11, schedule: "step");
        Run(config, whole, fixture, new RecordingObserver());

        using var stop = new CancellationTokenSource();
        var first = Run(config, split, fixture, new RecordingObserver(stop, stopAfterEpoch: 2), cancellation: stop.Token);
        Assert.False(first.Completed);
        Assert.Equal(2, first.Summary.Epochs);
        Assert.Equal(2, RunFiles.ReadMetrics(split).Count);

        var observer = new RecordingObserver();
        var second = Run(config, split, fixture, observer, resume: true);
        Assert.True(second.Completed);
        Assert.Equal(3, observer.Starts.Single().FirstEpoch);

        Assert.Equal(RunFiles.ReadMetrics(whole).Select(WithoutTimes), RunFiles.ReadMetrics(split).Select(WithoutTimes));
        var a = SafetensorsFile.Read(Path.Combine(whole, RunFiles.CheckpointFile)).Tensors;
        var b = SafetensorsFile.Read(Path.Combine(split, RunFiles.CheckpointFile)).Tensors;
        Assert.Equal(a.Keys, b.Keys);
        Assert.Contains(a.Keys, k => k.StartsWith(Checkpoint.MomentumPrefix, StringComparison.Ordinal));
        Assert.All(a, entry => Assert.True(entry.Value.Data.AsSpan().SequenceEqual(b[entry.Key].Data), $"{entry.Key} differs after resume"));
    }

    [Fact]
    public void Resume_WithOtherOptions_IsRefusedBeforeTraining()
    {
        var config = Config("S", TrainingFixture.Epochs);
        var error = Assert.Throws<ArgumentException>(() => Run(config with { LearningRate = 0.2 }, fixture.TeacherDirectory, fixture, new RecordingObserver(), resume: true));
        Assert.Contains("learning_rate: 0.05 → 0.2", error.Message);
        var fewer = Assert.Throws<ArgumentException>(() => Run(config with { Epochs = 2 }, fixture.TeacherDirectory, fixture, new RecordingObserver(), resume: true));
        Assert.Contains("may only grow", fewer.Message);
    }

    [Fact]
    public void NewRun_IntoAnExistingRun_IsRefused()
    {
        var error = Assert.Throws<ArgumentException>(() => Run(Config("S", 1), fixture.TeacherDirectory, fixture, new RecordingObserver()));
        Assert.Contains("already holds a run", error.Message);
    }
}
