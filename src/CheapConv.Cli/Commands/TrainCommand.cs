using System.Globalization;
using System.Security.Cryptography;
using CheapConv.Data;
using CheapConv.Devices;
using CheapConv.Models;
using CheapConv.Reporting;
using CheapConv.Training;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>train</c> (a WRN teacher or any student, alone) and <c>distill</c> (a student from a frozen teacher with
/// (1−α)·CE + α·KD + β·Σ AT): builds the <see cref="TrainingConfig"/> from the options — the paper's recipe by
/// default — loads the data, opens the device and runs the <see cref="Trainer"/> with a progress display.
/// <c>--resume RUN_DIR</c> continues a run; options given then must agree with the stored ones (only --epochs
/// may grow). Exit codes: 0 done, 2 bad options/files, 3 device unavailable, 130 interrupted by Ctrl+C (the last
/// completed epoch is checkpointed; --resume continues from it).
/// </summary>
/// <remarks>
/// --deterministic: every random choice of a run already derives from its seed and every op is deterministic, so a
/// run is a pure function of its config.json on one device. What the flag changes is the seed: without it and
/// without --seed, a fresh seed is drawn (and recorded, so the run can still be repeated); with it the seed is 0
/// unless given. The flag is recorded in config.json.
/// </remarks>
public static class TrainCommand
{
    public const string Usage =
        "train --arch wrn-16-2 [--block S] [--block-type basic|bottle] [--dataset fashion-mnist|mnist|cifar10|cifar100] [--data DIR] [RECIPE] | train --resume RUN_DIR [--epochs N]";

    public const string DistillUsage =
        "distill --teacher RUN_DIR|CKPT --arch wrn-16-2 --block G4 [--block-type basic|bottle] [--alpha 0] [--temperature 4] [--beta 1000] [--dataset D] [--data DIR] [RECIPE] | distill --resume RUN_DIR [--epochs N]";

    public const string RecipeUsage =
        "RECIPE: [--epochs 200] [--batch-size 128] [--lr 0.1] [--momentum 0.9] [--weight-decay 5e-4] [--schedule step|cosine] [--nesterov] [--no-augment] " +
        "[--train-subset N] [--seed S] [--deterministic] [--device auto|cpu|emu|cuda[:N]] [--out RUN_DIR]";

    /// <summary>The exit code of a run stopped by Ctrl+C (128 + SIGINT, as shells report it).</summary>
    public const int InterruptedExitCode = 130;

    /// <summary><c>train</c>.</summary>
    public static int Run(Options options, TextWriter output) => Execute(options, output, distill: false, CancellationToken.None);

    /// <summary><c>distill</c>.</summary>
    public static int RunDistill(Options options, TextWriter output) => Execute(options, output, distill: true, CancellationToken.None);

    /// <summary>Either command, stoppable through <paramref name="cancellation"/> as well as Ctrl+C (tests).</summary>
    public static int Execute(Options options, TextWriter output, bool distill, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(options);
        var command = distill ? "distill" : "train";
        var given = ReadOptions(options, distill);
        options.EnsureAllUsed();

        try
        {
            var plan = given.Resume is { } resume ? PlanResume(given, resume, command) : PlanNew(given, distill);
            return Train(plan, output, cancellation);
        }
        catch (Exception e) when (e is DataException or CheckpointException or FormatException or InvalidDataException or FileNotFoundException)
        {
            throw new UsageException(OneLine(e.Message));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException(OneLine($"cannot read or write the run's files: {e.Message}"));
        }
    }

    private sealed record Given(
        string? Resume, string? Arch, string? Block, string? BlockType, string? Dataset, string? Data, int? Epochs, int? BatchSize, double? Lr,
        double? Momentum, double? WeightDecay, string? Schedule, bool Nesterov, bool NoAugment, int? TrainSubset, int? Seed,
        bool Deterministic, DeviceRequest? Device, string? Out, string? Teacher, double? Alpha, double? Temperature, double? Beta);

    private sealed record Plan(TrainingConfig Config, string RunDirectory, bool Resume, ImageDataset Train, ImageDataset Test);

    private static Given ReadOptions(Options o, bool distill)
    {
        var schedule = o.String("schedule");
        if (schedule is not null and not ("step" or "cosine"))
        {
            throw new UsageException($"option --schedule must be one of step, cosine, got '{schedule}'");
        }

        var device = o.OptionalDevice([.. DeviceRequest.Kinds]);
        var blockType = o.String("block-type")?.ToLowerInvariant();
        if (blockType is not null and not ("basic" or "bottle"))
        {
            throw new UsageException($"option --block-type must be one of basic, bottle, got '{blockType}'");
        }

        return new Given(
            o.String("resume"), o.String("arch"), o.String("block"), blockType, o.String("dataset"), o.String("data"),
            OptionalInt(o, "epochs"), OptionalInt(o, "batch-size"), OptionalDouble(o, "lr"), OptionalDouble(o, "momentum"),
            OptionalDouble(o, "weight-decay"), schedule, o.Flag("nesterov"), o.Flag("no-augment"), OptionalInt(o, "train-subset"),
            OptionalInt(o, "seed"), o.Flag("deterministic"), device, o.String("out"),
            distill ? o.String("teacher") : null,
            distill ? OptionalDouble(o, "alpha") : null,
            distill ? OptionalDouble(o, "temperature") : null,
            distill ? OptionalDouble(o, "beta") : null);
    }

    private static Plan PlanNew(Given g, bool distill)
    {
        if (g.Arch is null)
        {
            throw new UsageException("option --arch is required, e.g. --arch wrn-16-2 (or --resume RUN_DIR to continue a run)");
        }

        Checkpoint? teacher = null;
        if (distill)
        {
            teacher = Checkpoint.Load(Checkpoint.Resolve(g.Teacher ?? throw new UsageException("option --teacher is required: a teacher's run directory or checkpoint file")));
        }

        var datasetName = g.Dataset ?? teacher?.Config.Dataset ?? "fashion-mnist";
        var kind = DatasetLoader.ParseKind(datasetName);
        datasetName = DatasetLoader.Name(kind);
        var (train, test) = DatasetLoader.Load(kind, g.Data);

        WrnConfig wrn;
        try
        {
            var (depth, width) = WrnConfig.ParseArch(g.Arch);
            var unit = UnitSpec.Parse(g.Block ?? "S");
            var blockType = g.BlockType switch
            {
                null => unit.DefaultBlockType,
                "bottle" => BlockType.Bottle,
                _ => BlockType.Basic,
            };
            wrn = new WrnConfig(depth, width, unit, blockType, train.Channels, train.Classes, train.Height);
            wrn.Validate();
            if (train.Height != train.Width)
            {
                throw new UsageException($"{train.Name} has {train.Height}×{train.Width} images; the WRN takes square images");
            }

            // Building the summary instantiates every layer: channels a unit's groups do not divide fail here, not mid-run.
            ModelSummary.Of(wrn);
        }
        catch (Exception e) when (e is ArgumentException or Problems.InvalidProblemException)
        {
            throw new UsageException(OneLine(e.Message));
        }

        var model = ModelConfig.From(wrn);
        DistillationConfig? distillation = null;
        if (teacher is not null)
        {
            var t = teacher.Config.Model;
            if (t.InChannels != model.InChannels || t.Image != model.Image || t.Classes != model.Classes)
            {
                throw new UsageException(
                    $"the teacher {teacher.Path} takes {t.InChannels}×{t.Image}×{t.Image} images with {t.Classes} classes, but {datasetName} has {model.InChannels}×{model.Image}×{model.Image} with {model.Classes}; distil on the teacher's dataset");
            }

            distillation = new DistillationConfig(teacher.Path, t, g.Alpha ?? 0, g.Temperature ?? 4, g.Beta ?? 1e3);
        }

        var config = new TrainingConfig(
            model, datasetName, g.TrainSubset, g.Epochs ?? TrainingConfig.DefaultEpochs, g.BatchSize ?? TrainingConfig.DefaultBatchSize,
            g.Lr ?? TrainingConfig.DefaultLearningRate, g.Momentum ?? TrainingConfig.DefaultMomentum, g.WeightDecay ?? TrainingConfig.DefaultWeightDecay,
            g.Schedule ?? "step", TrainingConfig.DefaultLrDecay, g.Nesterov, !g.NoAugment,
            g.Seed ?? (g.Deterministic ? 0 : RandomNumberGenerator.GetInt32(int.MaxValue)), g.Deterministic,
            (g.Device ?? DeviceRequest.Auto).Resolve().ToString(), distillation);
        Validate(config, train);

        var directory = g.Out ?? Path.Combine("runs", string.Create(CultureInfo.InvariantCulture,
            $"{model.Arch}-{model.BlockForPaths()}-{config.Mode.ToLowerInvariant().Replace('+', '-')}-{DateTime.Now:yyyyMMdd-HHmmss}"));
        if (File.Exists(Path.Combine(directory, RunFiles.ConfigFile)) || File.Exists(Path.Combine(directory, RunFiles.CheckpointFile)))
        {
            throw new UsageException($"{directory} already holds a run; continue it with --resume {directory} or choose another --out");
        }

        if (File.Exists(directory))
        {
            throw new UsageException($"--out {directory} is a file, not a directory");
        }

        return new Plan(config, directory, Resume: false, train, test);
    }

    private static Plan PlanResume(Given g, string directory, string command)
    {
        if (!Directory.Exists(directory) || !File.Exists(Path.Combine(directory, RunFiles.ConfigFile)) || !File.Exists(Path.Combine(directory, RunFiles.CheckpointFile)))
        {
            throw new UsageException($"--resume {directory}: not a run directory (it needs {RunFiles.ConfigFile} and {RunFiles.CheckpointFile}); start a new run with --out instead");
        }

        if (g.Out is not null && Path.GetFullPath(g.Out) != Path.GetFullPath(directory))
        {
            throw new UsageException("--out and --resume name different directories; a resumed run writes where it started");
        }

        var stored = TrainingConfig.Read(directory);
        if ((stored.Distillation is not null) != (command == "distill"))
        {
            throw new UsageException($"{directory} is a {(stored.Distillation is null ? "run trained alone: resume it with train" : "distillation run: resume it with distill")} --resume");
        }

        var model = stored.Model;
        var blockType = g.BlockType;
        var requestedModel = model with
        {
            Arch = g.Arch is null ? model.Arch : NormalizeArch(g.Arch),
            Block = g.Block is null ? model.Block : NormalizeBlock(g.Block),
            BlockType = blockType ?? model.BlockType,
        };
        var requested = stored with
        {
            Model = requestedModel,
            Dataset = g.Dataset is null ? stored.Dataset : DatasetLoader.Name(DatasetLoader.ParseKind(g.Dataset)),
            TrainSubset = g.TrainSubset ?? stored.TrainSubset,
            Epochs = g.Epochs ?? stored.Epochs,
            BatchSize = g.BatchSize ?? stored.BatchSize,
            LearningRate = g.Lr ?? stored.LearningRate,
            Momentum = g.Momentum ?? stored.Momentum,
            WeightDecay = g.WeightDecay ?? stored.WeightDecay,
            Schedule = g.Schedule ?? stored.Schedule,
            Nesterov = g.Nesterov || stored.Nesterov,
            Augment = !g.NoAugment && stored.Augment,
            Seed = g.Seed ?? stored.Seed,
            Deterministic = g.Deterministic || stored.Deterministic,
            Device = g.Device is null ? stored.Device : g.Device.Resolve().ToString(),
            Distillation = stored.Distillation is { } d
                ? d with
                {
                    Teacher = g.Teacher is null ? d.Teacher : Checkpoint.Resolve(g.Teacher),
                    Alpha = g.Alpha ?? d.Alpha,
                    Temperature = g.Temperature ?? d.Temperature,
                    Beta = g.Beta ?? d.Beta,
                }
                : null,
        };
        var conflicts = TrainingConfig.ResumeConflicts(stored, requested);
        if (conflicts.Count > 0)
        {
            throw new UsageException($"--resume {directory}: the run was started with other options ({string.Join("; ", conflicts)}); a resumed run keeps its options, only --epochs may grow");
        }

        var (train, test) = DatasetLoader.Load(DatasetLoader.ParseKind(requested.Dataset), g.Data);
        Validate(requested, train);
        return new Plan(requested, directory, Resume: true, train, test);
    }

    private static int Train(Plan plan, TextWriter output, CancellationToken cancellation)
    {
        using var device = ComputeDevice.Open(DeviceRequest.Parse(plan.Config.Device));
        using var interrupt = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            // The first Ctrl+C stops after the current batch (the last epoch stays checkpointed); a second one kills.
            if (!interrupt.IsCancellationRequested)
            {
                e.Cancel = true;
                interrupt.Cancel();
            }
        };
        Console.CancelKeyPress += onCancel;
        var started = false;
        try
        {
            var outcome = ProgressRenderer.Run(output, observer => Trainer.Run(new TrainingRunOptions
            {
                Config = plan.Config,
                RunDirectory = plan.RunDirectory,
                Backend = device.Backend,
                Device = device.ToString(),
                Train = plan.Train,
                Test = plan.Test,
                Resume = plan.Resume,
                Observer = new StartWatch(observer, () => started = true),
                // loss.png and accuracy.png, redrawn from metrics.jsonl after every epoch.
                AfterEpoch = directory => TrainingCharts.Write(directory),
            }, interrupt.Token));
            ProgressRenderer.WriteSummary(output, outcome.Summary, plan.RunDirectory, outcome.Completed);
            if (!outcome.Completed)
            {
                output.WriteLine($"interrupted: epoch {outcome.Summary.Epochs} is the last one checkpointed; continue with: cheapconv {(plan.Config.Distillation is null ? "train" : "distill")} --resume {plan.RunDirectory}");
                return InterruptedExitCode;
            }

            return 0;
        }
        catch (ArgumentException e) when (!started)
        {
            // The trainer's own checks of options and data, before anything was trained.
            throw new UsageException(OneLine(e.Message));
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static void Validate(TrainingConfig config, ImageDataset train)
    {
        try
        {
            config.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException(OneLine(e.Message));
        }

        if (config.TrainSubset > train.Count)
        {
            throw new UsageException($"--train-subset {config.TrainSubset} is more than the {train.Count} training images of {config.Dataset}");
        }
    }

    private static string NormalizeArch(string arch)
    {
        try
        {
            var (depth, width) = WrnConfig.ParseArch(arch);
            return $"wrn-{depth}-{width}";
        }
        catch (FormatException e)
        {
            throw new UsageException(e.Message);
        }
    }

    private static string NormalizeBlock(string block)
    {
        try
        {
            return UnitSpec.Parse(block).ToString();
        }
        catch (FormatException e)
        {
            throw new UsageException(e.Message);
        }
    }

    internal static int? OptionalInt(Options options, string name)
    {
        var text = options.String(name);
        return text is null ? null
            : int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value
            : throw new UsageException($"option --{name} needs an integer, got '{text}'");
    }

    internal static double? OptionalDouble(Options options, string name)
    {
        var text = options.String(name);
        return text is null ? null
            : double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value) ? value
            : throw new UsageException($"option --{name} needs a number, got '{text}'");
    }

    internal static string OneLine(string message) => message.ReplaceLineEndings(" ");

    /// <summary>Passes everything on and notes when training has started (errors before it are the user's options).</summary>
    private sealed class StartWatch(ITrainingObserver inner, Action onStart) : ITrainingObserver
    {
        public void RunStarting(TrainingStart start)
        {
            onStart();
            inner.RunStarting(start);
        }

        public void EpochStarting(int epoch, int batches, double learningRate) => inner.EpochStarting(epoch, batches, learningRate);

        public void BatchCompleted(BatchProgress progress) => inner.BatchCompleted(progress);

        public void EpochCompleted(EpochMetrics metrics, bool isBest, TimeSpan runRemaining) => inner.EpochCompleted(metrics, isBest, runRemaining);

        public void Warning(string message) => inner.Warning(message);
    }
}
