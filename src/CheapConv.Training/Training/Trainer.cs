using System.Diagnostics;
using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Data;
using CheapConv.Models;

namespace CheapConv.Training;

/// <summary>What <see cref="Trainer.Run"/> needs besides the configuration: where, on what, with which data.</summary>
public sealed record TrainingRunOptions
{
    /// <summary>What to train (written to config.json; a resumed run's must agree with the stored one but for more epochs).</summary>
    public required TrainingConfig Config { get; init; }

    /// <summary>The run directory (created when new).</summary>
    public required string RunDirectory { get; init; }

    /// <summary>The backend everything runs on.</summary>
    public required IBackend Backend { get; init; }

    /// <summary>The device as the summary names it, e.g. "cpu: C# backend, 2 threads".</summary>
    public required string Device { get; init; }

    /// <summary>The whole training split (the trainer takes <see cref="TrainingConfig.TrainSubset"/> of it itself).</summary>
    public required ImageDataset Train { get; init; }

    /// <summary>The test split, evaluated after every epoch.</summary>
    public required ImageDataset Test { get; init; }

    /// <summary>Continue the run in <see cref="RunDirectory"/> from its checkpoint instead of starting one.</summary>
    public bool Resume { get; init; }

    /// <summary>Progress callbacks; null for none.</summary>
    public ITrainingObserver? Observer { get; init; }

    /// <summary>
    /// Called with the run directory after every epoch, once the checkpoint, metrics and summary are written: the
    /// place for work on the run's files that the trainer does not own (the CLI draws the loss and accuracy charts
    /// here). An exception from it is reported through <see cref="ITrainingObserver.Warning"/> and training goes on.
    /// </summary>
    public Action<string>? AfterEpoch { get; init; }

    /// <summary>
    /// Called before each replay of the captured step, which runs inside what it returns (disposed right after): the
    /// tests' way to count the replays and to hold each to no host wait (<c>HostWaits.Forbid</c>). Null for nothing.
    /// </summary>
    internal Func<IDisposable?>? AroundReplay { get; init; }
}

/// <summary>How a run ended.</summary>
/// <param name="Summary">The final summary.json.</param>
/// <param name="Completed">False when cancelled before the planned epochs were done (the checkpoint holds the last completed epoch).</param>
/// <param name="Config">The configuration as written (with its normalisation).</param>
public sealed record TrainingOutcome(RunSummary Summary, bool Completed, TrainingConfig Config);

/// <summary>
/// Trains a WRN or Moonshine student, alone (cross-entropy) or distilled from a frozen teacher with
/// (1−α)·CE + α·KD + β·Σ AT over the three group outputs, with SGD and a per-epoch learning-rate schedule;
/// evaluates on the test set after every epoch and keeps the run directory's files (<see cref="RunFiles"/>) up to date.
/// </summary>
/// <remarks>
/// Reproducibility: every random choice derives from <see cref="TrainingConfig.Seed"/> (weights, training subset,
/// each epoch's order and augmentation as a pure function of (seed, epoch)); the backends' ops are deterministic
/// (no atomics in the kernels, the CPU backend parallel only across independent outputs). So a run is repeatable
/// bit for bit on one device, and a resumed run — weights, BN statistics and momentum restored exactly from the
/// float32 checkpoint, the next epoch's loader rebuilt from (seed, epoch) — continues exactly as if uninterrupted.
/// With <see cref="TrainingConfig.Graph"/> the full batches replay a captured graph of the step (<see cref="StepRunner"/>),
/// which launches the same kernels in the same order: the same bits as eager steps.
/// </remarks>
public static class Trainer
{
    /// <summary>
    /// Steps between two progress reports. Each report takes the rows of a copy of the step log started without waiting
    /// (on a GPU the rows of the previous report's copy, once arrived); without an observer the log is read only at the
    /// end of an epoch.
    /// </summary>
    internal const int ProgressInterval = 16;

    /// <summary>
    /// Runs the epochs from the first not yet done to <see cref="TrainingConfig.Epochs"/>, or until
    /// <paramref name="cancellation"/> (checked before every batch; an unfinished epoch is dropped and the checkpoint
    /// holds the last completed one). Bad options, data or checkpoints are <see cref="ArgumentException"/> (for
    /// the run directory: the checks of <see cref="RunPlan"/>), <see cref="DataException"/> or <see cref="CheckpointException"/>, raised before anything is trained.
    /// </summary>
    public static TrainingOutcome Run(TrainingRunOptions options, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var backend = options.Backend;
        var directory = options.RunDirectory;
        var config = options.Config;
        config.Validate();
        var graphBackend = UsesGraph(config, backend);
        var wrn = config.Model.ToWrnConfig();
        CheckData(options.Train, wrn);
        CheckData(options.Test, wrn);

        Checkpoint? resumeFrom = null;
        var restart = false;
        if (options.Resume && !File.Exists(Path.Combine(directory, RunFiles.CheckpointFile)) && File.Exists(Path.Combine(directory, RunFiles.ConfigFile)))
        {
            // Stopped before its first checkpoint: the run starts again from epoch 1 with its stored configuration.
            var stored = TrainingConfig.Read(directory);
            RunPlan.EnsureSameOptions(directory, stored, config);
            config = config with { Normalization = stored.Normalization ?? DefaultNormalization(config.Dataset, options.Train) };
            restart = true;
        }
        else if (options.Resume)
        {
            resumeFrom = Checkpoint.Load(Checkpoint.Resolve(directory, latest: true));
            RunPlan.EnsureSameOptions(directory, resumeFrom.Config, config);
            config = config with { Normalization = resumeFrom.Config.Normalization };
        }
        else
        {
            RunPlan.EnsureNoRunIn(directory);
            config = config with { Normalization = config.Normalization ?? DefaultNormalization(config.Dataset, options.Train) };
        }

        var normalization = new Normalization([.. config.Normalization!.Mean], [.. config.Normalization.Std]);
        var train = config.TrainSubset is { } subset ? options.Train.Subset(subset, config.Seed) : options.Train;
        var test = config.TestSubset is { } testSubset ? options.Test.First(testSubset) : options.Test;
        var teacher = config.Distillation is { } distillation ? LoadTeacher(distillation, wrn, backend) : null;

        var model = new WideResNet(wrn, backend, config.Seed);
        using var optimizer = new Sgd(model.Parameters(), (float)config.LearningRate, (float)config.Momentum, (float)config.WeightDecay, config.Nesterov);
        var state = new TrainingState(0, 0, 0, null);
        List<EpochMetrics> history = [];
        Directory.CreateDirectory(directory);
        if (resumeFrom is not null)
        {
            resumeFrom.LoadInto(model);
            resumeFrom.LoadOptimizerInto(optimizer, model);
            state = resumeFrom.State;
            history = RestoreMetrics(directory, state);
        }
        else if (restart)
        {
            // Nothing of the stopped attempt is kept: a best.safetensors from its first epoch is rewritten, metrics dropped.
            history = RestoreMetrics(directory, state);
        }

        // What the run does about graphs, also where the configuration left it to the backend (written before --graph).
        config = config with { Graph = graphBackend is not null };

        // config.json always holds the current plan (epochs may have grown on resume).
        RunFiles.WriteAtomically(Path.Combine(directory, RunFiles.ConfigFile), config.ToJson() + "\n");

        var modelSummary = ModelSummary.Of(wrn);
        var batchesPerEpoch = (train.Count + config.BatchSize - 1) / config.BatchSize;
        var observer = options.Observer;
        observer?.RunStarting(new TrainingStart(config, directory, options.Device, modelSummary.Parameters, modelSummary.Macs,
            state.Epoch + 1, batchesPerEpoch, train.Count, test.Count));

        var lossOptions = config.Distillation?.LossOptions();
        using var log = new StepLog(backend, model, TrainingStep.AttentionGroups(teacher is null ? null : lossOptions), batchesPerEpoch);
        using var steps = new StepRunner(model, teacher, optimizer, teacher is null ? null : lossOptions, backend, log,
            graphBackend, config.BatchSize, options.AroundReplay);
        var epochSeconds = new List<double>();
        var completed = true;
        for (var epoch = state.Epoch; epoch < config.Epochs; epoch++)
        {
            var epochWatch = Stopwatch.StartNew();
            var learningRate = LearningRateSchedule.At(config, epoch);
            optimizer.LearningRate = (float)learningRate;
            observer?.EpochStarting(epoch + 1, batchesPerEpoch, learningRate);
            var sums = new LossSums();
            log.Clear();
            var trainWatch = Stopwatch.StartNew();
            model.Train();
            // Each batch is done with before the next is asked for (its upload copies it): the loader recycles its arrays.
            using (var loader = new BatchLoader(train, config.BatchSize, normalization, shuffle: true,
                config.Augment ? new AugmentOptions() : AugmentOptions.None, config.Seed, epoch, dropLast: false, prefetch: 2, beforeBatch: null, recycleArrays: true))
            {
                var batchIndex = 0;
                foreach (var batch in loader)
                {
                    if (cancellation.IsCancellationRequested)
                    {
                        completed = false;
                        break;
                    }

                    batchIndex++;
                    var n = batch.Count;
                    steps.Run([n, train.Channels, train.Height, train.Width], batch.Images.AsSpan(0, n * train.ImageSize), batch.Labels.AsSpan(0, n));
                    CrashPoints.Reach($"batch:{epoch + 1}:{batchIndex}");
                    // Progress every few steps from rows copied back without waiting (a GPU reports them a little late);
                    // the epoch's last step reads the log at once, as the end of the epoch does anyway.
                    IReadOnlyList<StepRecord>? progress = null;
                    if (observer is not null && batchIndex == batchesPerEpoch)
                    {
                        progress = log.ReadNew();
                    }
                    else if (observer is not null && batchIndex % ProgressInterval == 0)
                    {
                        log.BeginRead();
                        progress = log.TryReadNew();
                    }

                    if (observer is not null && progress is { Count: > 0 })
                    {
                        Absorb(progress, sums, epoch, batchesPerEpoch, state.Epoch);
                        var elapsed = trainWatch.Elapsed.TotalSeconds;
                        var rate = sums.Images / elapsed;
                        var epochRemaining = (train.Count - sums.Images) / rate;
                        var epochEstimate = epochSeconds.Count > 0
                            ? epochSeconds.Average()
                            // Before a whole epoch is measured: training at this rate plus evaluation at about three
                            // times it (a forward pass is about a third of a training step).
                            : (train.Count / rate) + (test.Count / (3 * rate));
                        var runRemaining = epochRemaining + (test.Count / (3 * rate)) + ((config.Epochs - epoch - 1) * epochEstimate);
                        observer.BatchCompleted(new BatchProgress(epoch + 1, batchIndex, batchesPerEpoch, sums.Loss / sums.Images, sums.Ce / sums.Images,
                            lossOptions?.Alpha > 0 ? sums.Kd / sums.Images : null, lossOptions?.Beta > 0 ? sums.At / sums.Images : null,
                            learningRate, rate, TimeSpan.FromSeconds(epochRemaining), TimeSpan.FromSeconds(runRemaining)));
                    }
                }
            }

            if (!completed)
            {
                break;
            }

            // Every step of the epoch judged before anything else uses the weights: a non-finite step stops the run here.
            Absorb(log.ReadNew(), sums, epoch, batchesPerEpoch, state.Epoch);
            log.Clear();
            var trainSeconds = trainWatch.Elapsed.TotalSeconds;
            EvaluationResult evaluation;
            try
            {
                evaluation = Evaluator.Run(model, test, normalization, cancellation: cancellation);
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                completed = false;
                break;
            }

            if (!double.IsFinite(evaluation.Loss))
            {
                throw new TrainingDivergedException(epoch + 1, batchesPerEpoch, batchesPerEpoch, "the test loss", evaluation.Loss, state.Epoch);
            }

            var metrics = new EpochMetrics(epoch + 1, learningRate, sums.Loss / sums.Images, sums.Ce / sums.Images,
                lossOptions?.Alpha > 0 ? sums.Kd / sums.Images : null, lossOptions?.Beta > 0 ? sums.At / sums.Images : null,
                (double)sums.Correct / sums.Images, evaluation.Loss, evaluation.Accuracy, sums.Images / trainSeconds, 0);
            if (FirstNonFinite(model, optimizer) is { } bad)
            {
                throw new TrainingDivergedException(epoch + 1, batchesPerEpoch, batchesPerEpoch, bad.Term, bad.Value, state.Epoch);
            }

            var isBest = evaluation.Accuracy > state.BestAccuracy || state.BestEpoch == 0;
            state = isBest
                ? new TrainingState(epoch + 1, evaluation.Accuracy, epoch + 1, null)
                : state with { Epoch = epoch + 1 };
            if (isBest)
            {
                Checkpoint.Save(Path.Combine(directory, RunFiles.BestCheckpointFile), config, state, model, optimizer: null);
            }

            metrics = metrics with { Seconds = epochWatch.Elapsed.TotalSeconds };
            state = state with { LastMetrics = metrics };
            Checkpoint.Save(Path.Combine(directory, RunFiles.CheckpointFile), config, state, model, optimizer);
            RunFiles.AppendMetrics(directory, metrics);
            history.Add(metrics);
            var summary = Summarize(config, modelSummary, history, state, options.Device);
            RunFiles.WriteSummary(directory, summary);
            if (options.AfterEpoch is { } afterEpoch)
            {
                try
                {
                    afterEpoch(directory);
                }
#pragma warning disable CA1031 // The hook draws charts and the like: its failure must not end a long training run.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    observer?.Warning($"after epoch {epoch + 1}: {e.Message}");
                }
            }

            epochSeconds.Add(epochWatch.Elapsed.TotalSeconds);
            observer?.EpochCompleted(metrics, isBest, TimeSpan.FromSeconds(epochSeconds.Average() * (config.Epochs - epoch - 1)));
        }

        return new TrainingOutcome(Summarize(config, modelSummary, history, state, options.Device), completed && state.Epoch >= config.Epochs, config);
    }

    /// <summary>
    /// Whether the run captures and replays its step: <see cref="TrainingConfig.Graph"/>, or, when the configuration does
    /// not say (written before the option), whether the backend is a GPU backend. On asks for a GPU backend.
    /// </summary>
    private static GpuBackend? UsesGraph(TrainingConfig config, IBackend backend)
    {
        var gpu = backend as GpuBackend;
        if (config.Graph == true && gpu is null)
        {
            throw new ArgumentException($"--graph on needs a GPU backend (cuda or emu), but this run is on {backend.Name}; use --graph off");
        }

        return (config.Graph ?? gpu is not null) ? gpu : null;
    }

    /// <summary>The normalisation a new run uses: the paper's values for CIFAR-10, else the training set's statistics.</summary>
    internal static NormalizationConfig DefaultNormalization(string dataset, ImageDataset train)
    {
        var normalization = dataset == "cifar10" ? Normalization.Cifar10 : Normalization.FromDataset(train);
        return new NormalizationConfig(normalization.Mean, normalization.Std);
    }

    /// <summary>The summary of a run from its metrics; throughput is total training images over total training time.</summary>
    internal static RunSummary Summarize(TrainingConfig config, ModelSummary model, IReadOnlyList<EpochMetrics> history, TrainingState state, string device)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(history);
        ArgumentNullException.ThrowIfNull(state);
        // Every epoch trains the same number of images, so images/time over the run is the harmonic mean of the epochs' rates.
        var rates = history.Where(m => m.ImagesPerSecond > 0).ToList();
        var imagesPerSecond = rates.Count == 0 ? 0 : rates.Count / rates.Sum(m => 1 / m.ImagesPerSecond);
        var c = config.Model;
        return new RunSummary(c.Arch, c.Block, c.BlockType, config.Mode, model.Parameters, model.StateEntries, model.Macs,
            state.BestAccuracy, state.BestEpoch, history.Count > 0 ? history[^1].TestAccuracy : 0, state.Epoch, config.Epochs, imagesPerSecond,
            device, config.Dataset, c.InChannels, c.Image, c.Classes, config.Seed, config.Distillation?.Teacher,
            config.TrainSubset, config.Distillation?.TeacherModel.Describe());
    }

    /// <summary>
    /// Adds <paramref name="records"/> (read from the step log, in step order) to <paramref name="sums"/>; the first step
    /// with a non-finite loss term or gradient throws <see cref="TrainingDivergedException"/> (its epoch, step and term)
    /// before any of it counts.
    /// </summary>
    private static void Absorb(IReadOnlyList<StepRecord> records, LossSums sums, int epoch, int batchesPerEpoch, int checkpointedEpoch)
    {
        foreach (var record in records)
        {
            if (record.Diverged is { } bad)
            {
                throw new TrainingDivergedException(epoch + 1, record.Step, batchesPerEpoch, bad.Term, bad.Value, checkpointedEpoch);
            }

            var n = record.Images;
            sums.Images += n;
            sums.Loss += record.Loss * n;
            sums.Ce += record.CrossEntropy * n;
            sums.Kd += record.KnowledgeDistillation * n;
            sums.At += record.AttentionTransfer * n;
            sums.Correct += record.Correct;
        }
    }

    /// <summary>The first state-dict entry or momentum buffer holding a NaN or an infinity (checked before any checkpoint is written).</summary>
    private static (string Term, double Value)? FirstNonFinite(WideResNet model, Sgd optimizer)
    {
        foreach (var (name, tensor) in model.StateDict())
        {
            if (Checkpoint.FirstNonFinite(tensor.ToArray()) is { } value)
            {
                return ($"{name} (a state-dict entry)", value);
            }
        }

        foreach (var (name, parameter) in model.NamedParameters())
        {
            if (optimizer.ExportMomentum(parameter) is { } momentum && Checkpoint.FirstNonFinite(momentum) is { } value)
            {
                return ($"the momentum of {name}", value);
            }
        }

        return null;
    }

    private static WideResNet LoadTeacher(DistillationConfig distillation, WrnConfig student, IBackend backend)
    {
        var checkpoint = Checkpoint.Load(distillation.Teacher);
        checkpoint.EnsureArchitecture(distillation.TeacherModel);
        var t = distillation.TeacherModel;
        if (t.InChannels != student.InChannels || t.Image != student.ImageSize || t.Classes != student.Classes)
        {
            throw new ArgumentException(
                $"the teacher {distillation.Teacher} takes {t.InChannels}×{t.Image}×{t.Image} images with {t.Classes} classes, the student {student.InChannels}×{student.ImageSize}×{student.ImageSize} with {student.Classes}; distil on the teacher's dataset");
        }

        var teacher = checkpoint.CreateModel(backend);
        teacher.Eval();
        return teacher;
    }

    private static void CheckData(ImageDataset data, WrnConfig config)
    {
        if (data.Channels != config.InChannels || data.Height != config.ImageSize || data.Width != config.ImageSize || data.Classes != config.Classes)
        {
            throw new ArgumentException(
                $"{data.Name} has {data.Channels}×{data.Height}×{data.Width} images and {data.Classes} classes, but the model is configured for {config.InChannels}×{config.ImageSize}×{config.ImageSize} and {config.Classes}");
        }
    }

    /// <summary>The metrics of the epochs the checkpoint holds: later lines (written after it) are dropped, a line lost after it is restored.</summary>
    private static List<EpochMetrics> RestoreMetrics(string directory, TrainingState state)
    {
        var stored = RunFiles.ReadMetrics(directory);
        var kept = stored.Where(m => m.Epoch <= state.Epoch).ToList();
        if (state.LastMetrics is { } last && (kept.Count == 0 || kept[^1].Epoch < last.Epoch))
        {
            kept.Add(last);
        }

        // Always rewritten: a torn last line (dropped by ReadMetrics) must not stay in front of the next append.
        if (kept.Count > 0 || File.Exists(Path.Combine(directory, RunFiles.MetricsFile)))
        {
            RunFiles.WriteMetrics(directory, kept);
        }

        return kept;
    }

    private sealed class LossSums
    {
        public double Loss { get; set; }

        public double Ce { get; set; }

        public double Kd { get; set; }

        public double At { get; set; }

        public int Correct { get; set; }

        public int Images { get; set; }
    }
}
