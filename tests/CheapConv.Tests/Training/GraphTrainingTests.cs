using CheapConv.Backends;
using CheapConv.Data;
using CheapConv.Devices;
using CheapConv.Tests.Autograd;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Training;

/// <summary>
/// The trainer with --graph on, on the emulator (how CI sees the GPU path): 20 synthetic images in batches of 8 — two full
/// batches and a partial one of 4 per epoch — for 3 epochs of the cosine schedule (a new learning rate every epoch),
/// evaluated on 10 test images (a larger batch than training's, so the first evaluation grows the backend's label buffer).
/// The first full batch runs eagerly, the second is captured and replayed; the second epoch captures again (new learning
/// rate and grown buffer) and replays both full batches, as does the third (new learning rate alone); the partial batches
/// run eagerly.
/// </summary>
public sealed class GraphTrainingTests(GraphTrainingFixture runs) : IClassFixture<GraphTrainingFixture>
{
    /// <summary>Full batches of the three epochs but the run's first (eager): 1 + 2 + 2.</summary>
    private const int ExpectedReplays = 5;

    [Fact]
    public void GraphOn_GivesTheBitsOfGraphOff_AndItsReplaysMakeNoHostWait()
    {
        var on = runs.GraphOn.Value;
        var off = runs.GraphOff.Value;

        // Each replay ran inside HostWaits.Forbid (a wait would have thrown): all of them were replays without a wait.
        Assert.Equal(ExpectedReplays, on.Replays);
        Assert.Equal(0, off.Replays);
        Assert.True(TrainingConfig.Read(on.Directory).Graph);
        Assert.False(TrainingConfig.Read(off.Directory).Graph);
        Assert.Contains("on emu: test, the step as a graph; files in", CheapConv.Cli.Commands.ProgressRenderer.Header(on.Observer.Starts.Single()));
        Assert.DoesNotContain("as a graph", CheapConv.Cli.Commands.ProgressRenderer.Header(off.Observer.Starts.Single()));

        var metrics = RunFiles.ReadMetrics(on.Directory);
        Assert.Equal([0.05, 0.0375, 0.0125], metrics.Select(m => m.LearningRate), (a, b) => Math.Abs(a - b) < 1e-12); // one per epoch
        Assert.Equal(RunFiles.ReadMetrics(off.Directory).Select(GraphTrainingFixture.WithoutTimes), metrics.Select(GraphTrainingFixture.WithoutTimes));
        Assert.Equal(off.Observer.Batches.Select(GraphTrainingFixture.Logged), on.Observer.Batches.Select(GraphTrainingFixture.Logged));
        Assert.Equal(3, on.Observer.Batches.Count); // the last batch of each epoch reports the epoch's rows
        GraphTrainingFixture.AssertSameCheckpoint(off.Directory, on.Directory, "--graph off against --graph on");
    }

    [Fact]
    public void GraphRun_ResumedAfterAnInterruption_IsBitForBitTheUninterruptedRun()
    {
        var whole = runs.GraphOn.Value;
        var split = runs.Data.NewFolder("graph-split");
        using var stop = new CancellationTokenSource();
        var first = runs.Run(runs.Config(graph: true), split, new RecordingObserver(stop, stopAfterEpoch: 1), cancellation: stop.Token);
        Assert.False(first.Outcome.Completed);
        Assert.Equal(1, first.Outcome.Summary.Epochs);

        // Resumed with a configuration that leaves the graph to the backend (as a config.json from before --graph): the
        // emulator's GPU backend captures, and config.json records it.
        var second = runs.Run(runs.Config(graph: true) with { Graph = null }, split, new RecordingObserver(), resume: true);
        Assert.True(second.Outcome.Completed);
        Assert.True(TrainingConfig.Read(split).Graph);
        Assert.Equal(2, second.Observer.Starts.Single().FirstEpoch);
        // The resumed process runs its first full batch eagerly, then captures: one replay in epoch 2 (the whole run's 2), 2 in epoch 3.
        Assert.Equal((1, 3), (first.Replays, second.Replays));

        Assert.Equal(RunFiles.ReadMetrics(whole.Directory).Select(GraphTrainingFixture.WithoutTimes), RunFiles.ReadMetrics(split).Select(GraphTrainingFixture.WithoutTimes));
        GraphTrainingFixture.AssertSameCheckpoint(whole.Directory, split, "resumed graph run against the uninterrupted one");
    }

    [Fact]
    public void CpuRun_WithTheGraphLeftToTheBackend_RecordsGraphOff()
    {
        var cpu = runs.Run(runs.Config(graph: false) with { Device = "cpu", Graph = null, Epochs = 1 }, runs.Data.NewFolder("graph-cpu"), new RecordingObserver(), backend: new CpuBackend());
        Assert.True(cpu.Outcome.Completed);
        Assert.False(TrainingConfig.Read(cpu.Directory).Graph); // left to the backend: the C# backend has no graphs
    }

    [Fact]
    public void Distillation_GraphOn_GivesTheBitsOfGraphOff()
    {
        // A teacher trained for one epoch on the CPU; one epoch of KD + AT distillation into the G(2) student on the
        // emulator: the first full batch eager, the second replayed (teacher forward, KD, AT inside the graph), the
        // partial batch eager.
        var teacherDirectory = runs.Data.NewFolder("graph-teacher");
        var teacherConfig = runs.Config(graph: false) with { Model = runs.Config(graph: false).Model with { Block = "S" }, Epochs = 1, Device = "cpu" };
        runs.Run(teacherConfig, teacherDirectory, new RecordingObserver(), backend: new CpuBackend());
        var distillation = new DistillationConfig(Checkpoint.Resolve(teacherDirectory), teacherConfig.Model, Alpha: 0.9, Temperature: 4, Beta: 1e3);
        GraphRun Distill(bool graph, string folder) =>
            runs.Run(runs.Config(graph) with { Epochs = 1, Distillation = distillation }, runs.Data.NewFolder(folder), new RecordingObserver());

        var on = Distill(graph: true, "graph-distill-on");
        var off = Distill(graph: false, "graph-distill-off");

        Assert.Equal((1, 0), (on.Replays, off.Replays));
        var metrics = RunFiles.ReadMetrics(on.Directory);
        Assert.All(metrics, m => Assert.True(m.Kd > 0 && m.At > 0, "KD and AT were computed"));
        Assert.Equal(RunFiles.ReadMetrics(off.Directory).Select(GraphTrainingFixture.WithoutTimes), metrics.Select(GraphTrainingFixture.WithoutTimes));
        Assert.Equal(off.Observer.Batches.Select(GraphTrainingFixture.Logged), on.Observer.Batches.Select(GraphTrainingFixture.Logged));
        GraphTrainingFixture.AssertSameCheckpoint(off.Directory, on.Directory, "distillation, --graph off against --graph on");
    }

    [Fact]
    public void GraphOn_WithACpuBackend_IsRefusedBeforeTraining()
    {
        var directory = runs.Data.NewFolder("graph-on-cpu");
        var error = Assert.Throws<ArgumentException>(() => runs.Run(runs.Config(graph: true), directory, new RecordingObserver(), backend: new CpuBackend()));
        Assert.Contains("--graph on needs a GPU backend", error.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(directory)); // refused before the run's files were written
    }
}

/// <summary>The data, the emulator and the two 3-epoch runs (--graph on, --graph off) the tests compare, each run once.</summary>
public sealed class GraphTrainingFixture : IDisposable
{
    public GraphTrainingFixture()
    {
        Data = new SyntheticDataset(trainCount: 20, testCount: 10);
        (Train, Test) = DatasetLoader.Load(DatasetKind.FashionMnist, Data.Directory);
        Device = EmulatedDevice.Open();
        GraphOn = new(() => Run(Config(graph: true), Data.NewFolder("graph-on"), new RecordingObserver()));
        GraphOff = new(() => Run(Config(graph: false), Data.NewFolder("graph-off"), new RecordingObserver()));
    }

    public SyntheticDataset Data { get; }

    public ImageDataset Train { get; }

    public ImageDataset Test { get; }

    public EmulatedDevice Device { get; }

    public Lazy<GraphRun> GraphOn { get; }

    public Lazy<GraphRun> GraphOff { get; }

    /// <summary>WRN-10-1 G(2) on the emulator, batches of 8, 3 epochs of the cosine schedule (lr 0.05, 0.0375, 0.0125).</summary>
    public TrainingConfig Config(bool graph) =>
        new(new ModelConfig("wrn-10-1", "G(2)", "basic", 1, 10, 12), "fashion-mnist", TrainSubset: null, Epochs: 3, BatchSize: 8,
            LearningRate: 0.05, Momentum: 0.9, WeightDecay: 5e-4, Schedule: "cosine", LrDecay: 0.2, Nesterov: false, Augment: true,
            Seed: 7, Deterministic: true, Device: "emu", Distillation: null)
        { TestSubset = 10, Graph = graph };

    /// <summary>
    /// Trains <paramref name="config"/> (on the emulator unless <paramref name="backend"/> says otherwise); every replay of
    /// the captured step runs in the strict scope, where any host wait throws, and is counted.
    /// </summary>
    public GraphRun Run(TrainingConfig config, string directory, RecordingObserver observer, bool resume = false, IBackend? backend = null,
        CancellationToken cancellation = default)
    {
        // Buffers other tests left to the garbage collector are freed by finalizers, and a free with work queued counts as a
        // host wait: finalize them now, so the strict scope judges the replays alone.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var replays = 0;
        using var gpu = backend is null ? new GpuBackend(Device) : null;
        var outcome = Trainer.Run(new TrainingRunOptions
        {
            Config = config,
            RunDirectory = directory,
            Backend = backend ?? gpu!,
            Device = backend?.Name ?? "emu: test",
            Train = Train,
            Test = Test,
            Resume = resume,
            Observer = observer,
            AroundReplay = () => Device.HostWaits.Forbid($"replay {++replays}"),
        }, cancellation);
        return new GraphRun(directory, outcome, observer, replays);
    }

    public static EpochMetrics WithoutTimes(EpochMetrics m) => m with { ImagesPerSecond = 0, Seconds = 0 };

    /// <summary>What a progress report says of the steps (not of the clock).</summary>
    public static (int, int, double, double, double?, double?, double) Logged(BatchProgress p) =>
        (p.Epoch, p.Batch, p.Loss, p.Ce, p.Kd, p.At, p.LearningRate);

    /// <summary>The two checkpoints hold the same tensors, momentum included, bit for bit.</summary>
    public static void AssertSameCheckpoint(string expectedDirectory, string actualDirectory, string what)
    {
        var a = SafetensorsFile.Read(Path.Combine(expectedDirectory, RunFiles.CheckpointFile)).Tensors;
        var b = SafetensorsFile.Read(Path.Combine(actualDirectory, RunFiles.CheckpointFile)).Tensors;
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        Assert.Contains(a.Keys, k => k.StartsWith(Checkpoint.MomentumPrefix, StringComparison.Ordinal));
        foreach (var (name, tensor) in a)
        {
            TensorAssert.Identical(tensor.Data, b[name].Data, $"{what}: {name}");
        }
    }

    public void Dispose()
    {
        Device.Dispose();
        Data.Dispose();
    }
}

/// <summary>A finished (or stopped) run: its directory, outcome, callbacks and how many steps were replayed.</summary>
public sealed record GraphRun(string Directory, TrainingOutcome Outcome, RecordingObserver Observer, int Replays);
