using System.Globalization;
using System.Security.Cryptography;
using CheapConv.Data;
using CheapConv.Devices;
using CheapConv.Models;

namespace CheapConv.Training;

/// <summary>
/// What a user asked of <c>train</c> or <c>distill</c>, by the command's --options: every value is null (or false)
/// where the option was not given, so that a new run takes the paper's recipe and a resumed run its stored values.
/// </summary>
public sealed record RunRequest
{
    /// <summary>A distillation run (<c>distill</c>) rather than a run trained alone (<c>train</c>).</summary>
    public bool Distill { get; init; }

    /// <summary>--resume: the run directory to continue; null starts a new run.</summary>
    public string? Resume { get; init; }

    public string? Arch { get; init; }

    public string? Block { get; init; }

    /// <summary>"basic", "bottle" or null (the unit's default).</summary>
    public string? BlockType { get; init; }

    public string? Dataset { get; init; }

    /// <summary>--data: the folder of the dataset's files; null for the default place.</summary>
    public string? Data { get; init; }

    public int? Epochs { get; init; }

    public int? BatchSize { get; init; }

    public double? LearningRate { get; init; }

    public double? Momentum { get; init; }

    public double? WeightDecay { get; init; }

    /// <summary>"step", "cosine" or null.</summary>
    public string? Schedule { get; init; }

    public bool Nesterov { get; init; }

    public bool NoAugment { get; init; }

    public int? TrainSubset { get; init; }

    /// <summary>--test-subset: evaluate on the first N test images; null for all.</summary>
    public int? TestSubset { get; init; }

    public int? Seed { get; init; }

    public bool Deterministic { get; init; }

    public DeviceRequest? Device { get; init; }

    /// <summary>--graph on|off: capture and replay the training step (<see cref="TrainingConfig.Graph"/>); null for the
    /// device's default (on for cuda and emu, off for the cpu) or, on resume, the stored value.</summary>
    public bool? Graph { get; init; }

    /// <summary>--precision fp32|tf32 (<see cref="TrainingConfig.Precision"/>); null for fp32 or, on resume, the stored value.</summary>
    public string? Precision { get; init; }

    /// <summary>--out: the new run's directory; null for runs/ARCH-BLOCK-MODE-TIME.</summary>
    public string? Out { get; init; }

    /// <summary>The teacher's run directory or checkpoint (distill only).</summary>
    public string? Teacher { get; init; }

    public double? Alpha { get; init; }

    public double? Temperature { get; init; }

    public double? Beta { get; init; }
}

/// <summary>
/// The decision for a <see cref="RunRequest"/>: a new run (its configuration from the options and the paper's recipe,
/// in a directory that holds no run yet) or a resumed one (the stored configuration, where the options given agree with
/// it but for more epochs) — with the data loaded and checked against the model — or a refusal. The run-directory
/// checks are here once, for the CLI and for <see cref="Trainer"/>.
/// </summary>
/// <param name="Config">What to train, as config.json will hold it.</param>
/// <param name="RunDirectory">Where the run's files go.</param>
/// <param name="Resume">Continue the run in <paramref name="RunDirectory"/> from its checkpoint.</param>
/// <param name="Train">The whole training split.</param>
/// <param name="Test">The test split.</param>
public sealed record RunPlan(TrainingConfig Config, string RunDirectory, bool Resume, ImageDataset Train, ImageDataset Test)
{
    /// <summary>
    /// Plans <paramref name="request"/>. A refusal is an <see cref="ArgumentException"/> whose message says why and
    /// what to do instead; a dataset, checkpoint or option value that cannot be read is the reader's own exception (<see cref="DataException"/>,
    /// <see cref="CheckpointException"/>, <see cref="FormatException"/>, <see cref="InvalidDataException"/>,
    /// <see cref="IOException"/>).
    /// </summary>
    public static RunPlan Create(RunRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Resume is { } directory ? PlanResume(request, directory) : PlanNew(request);
    }

    /// <summary>
    /// Refuses a new run in <paramref name="directory"/> when it already holds one (its config.json, even before a first
    /// checkpoint: --resume then starts it again), or is a file.
    /// </summary>
    internal static void EnsureNoRunIn(string directory)
    {
        if (File.Exists(Path.Combine(directory, RunFiles.ConfigFile)) || File.Exists(Path.Combine(directory, RunFiles.CheckpointFile)))
        {
            throw new ArgumentException($"{directory} already holds a run; continue it with --resume {directory} or choose another --out");
        }

        if (File.Exists(directory))
        {
            throw new ArgumentException($"--out {directory} is a file, not a directory");
        }
    }

    /// <summary>Refuses to resume the run in <paramref name="directory"/> with <paramref name="requested"/> unless it agrees with <paramref name="stored"/> (only the epochs may grow).</summary>
    internal static void EnsureSameOptions(string directory, TrainingConfig stored, TrainingConfig requested)
    {
        var conflicts = TrainingConfig.ResumeConflicts(stored, requested);
        if (conflicts.Count > 0)
        {
            throw new ArgumentException($"--resume {directory}: the run was started with other options ({string.Join("; ", conflicts)}); a resumed run keeps its options, only --epochs may grow");
        }
    }

    private static RunPlan PlanNew(RunRequest r)
    {
        if (r.Arch is null)
        {
            throw new ArgumentException("option --arch is required, e.g. --arch wrn-16-2 (or --resume RUN_DIR to continue a run)");
        }

        Checkpoint? teacher = null;
        if (r.Distill)
        {
            teacher = Checkpoint.Load(Checkpoint.Resolve(r.Teacher ?? throw new ArgumentException("option --teacher is required: a teacher's run directory or checkpoint file")));
        }

        var datasetName = r.Dataset ?? teacher?.Config.Dataset ?? "fashion-mnist";
        var kind = DatasetLoader.ParseKind(datasetName);
        datasetName = DatasetLoader.Name(kind);
        var (train, test) = DatasetLoader.Load(kind, r.Data);

        WrnConfig wrn;
        try
        {
            var (depth, width) = WrnConfig.ParseArch(r.Arch);
            var unit = UnitSpec.Parse(r.Block ?? "S");
            var blockType = r.BlockType switch
            {
                null => unit.DefaultBlockType,
                "bottle" => BlockType.Bottle,
                _ => BlockType.Basic,
            };
            wrn = new WrnConfig(depth, width, unit, blockType, train.Channels, train.Classes, train.Height);
            wrn.Validate();
            if (train.Height != train.Width)
            {
                throw new ArgumentException($"{train.Name} has {train.Height}×{train.Width} images; the WRN takes square images");
            }

            // Building the summary instantiates every layer: channels a unit's groups do not divide fail here, not mid-run.
            ModelSummary.Of(wrn);
        }
        catch (Problems.InvalidProblemException e)
        {
            throw new ArgumentException(e.Message, e);
        }

        var model = ModelConfig.From(wrn);
        DistillationConfig? distillation = null;
        if (teacher is not null)
        {
            var t = teacher.Config.Model;
            if (t.InChannels != model.InChannels || t.Image != model.Image || t.Classes != model.Classes)
            {
                throw new ArgumentException(
                    $"the teacher {teacher.Path} takes {t.InChannels}×{t.Image}×{t.Image} images with {t.Classes} classes, but {datasetName} has {model.InChannels}×{model.Image}×{model.Image} with {model.Classes}; distil on the teacher's dataset");
            }

            distillation = new DistillationConfig(teacher.Path, t, r.Alpha ?? 0, r.Temperature ?? 4, r.Beta ?? 1e3);
        }

        var device = (r.Device ?? DeviceRequest.Auto).Resolve();
        var config = new TrainingConfig(
            model, datasetName, r.TrainSubset, r.Epochs ?? TrainingConfig.DefaultEpochs, r.BatchSize ?? TrainingConfig.DefaultBatchSize,
            r.LearningRate ?? TrainingConfig.DefaultLearningRate, r.Momentum ?? TrainingConfig.DefaultMomentum, r.WeightDecay ?? TrainingConfig.DefaultWeightDecay,
            r.Schedule ?? "step", TrainingConfig.DefaultLrDecay, r.Nesterov, !r.NoAugment,
            r.Seed ?? (r.Deterministic ? 0 : RandomNumberGenerator.GetInt32(int.MaxValue)), r.Deterministic,
            device.ToString(), distillation) { TestSubset = r.TestSubset, Graph = r.Graph ?? device.Kind != "cpu", Precision = r.Precision ?? "fp32" };
        Validate(config, train, test);

        var directory = r.Out ?? Path.Combine("runs", string.Create(CultureInfo.InvariantCulture,
            $"{model.Arch}-{model.BlockForPaths()}-{config.Mode.ToLowerInvariant().Replace('+', '-')}-{DateTime.Now:yyyyMMdd-HHmmss}"));
        EnsureNoRunIn(directory);
        return new RunPlan(config, directory, Resume: false, train, test);
    }

    private static RunPlan PlanResume(RunRequest r, string directory)
    {
        // A run killed before its first checkpoint has only its config.json (and perhaps best.safetensors): resuming it
        // starts it again from epoch 1 with the stored configuration, seed included, which gives the same run.
        if (!Directory.Exists(directory) || !File.Exists(Path.Combine(directory, RunFiles.ConfigFile)))
        {
            throw new ArgumentException($"--resume {directory}: not a run directory (it has no {RunFiles.ConfigFile}); start a new run with --out instead");
        }

        if (r.Out is not null && Path.GetFullPath(r.Out) != Path.GetFullPath(directory))
        {
            throw new ArgumentException("--out and --resume name different directories; a resumed run writes where it started");
        }

        var stored = TrainingConfig.Read(directory);
        if ((stored.Distillation is not null) != r.Distill)
        {
            throw new ArgumentException($"{directory} is a {(stored.Distillation is null ? "run trained alone: resume it with train" : "distillation run: resume it with distill")} --resume");
        }

        var model = stored.Model;
        var requestedModel = model with
        {
            Arch = r.Arch is null ? model.Arch : NormalizeArch(r.Arch),
            Block = r.Block is null ? model.Block : UnitSpec.Parse(r.Block).ToString(),
            BlockType = r.BlockType ?? model.BlockType,
        };
        var requested = stored with
        {
            Model = requestedModel,
            Dataset = r.Dataset is null ? stored.Dataset : DatasetLoader.Name(DatasetLoader.ParseKind(r.Dataset)),
            TrainSubset = r.TrainSubset ?? stored.TrainSubset,
            TestSubset = r.TestSubset ?? stored.TestSubset,
            Epochs = r.Epochs ?? stored.Epochs,
            BatchSize = r.BatchSize ?? stored.BatchSize,
            LearningRate = r.LearningRate ?? stored.LearningRate,
            Momentum = r.Momentum ?? stored.Momentum,
            WeightDecay = r.WeightDecay ?? stored.WeightDecay,
            Schedule = r.Schedule ?? stored.Schedule,
            Nesterov = r.Nesterov || stored.Nesterov,
            Augment = !r.NoAugment && stored.Augment,
            Seed = r.Seed ?? stored.Seed,
            Deterministic = r.Deterministic || stored.Deterministic,
            Device = r.Device is null ? stored.Device : r.Device.Resolve().ToString(),
            Graph = r.Graph ?? stored.Graph,
            Precision = r.Precision ?? stored.Precision,
            Distillation = stored.Distillation is { } d
                ? d with
                {
                    Teacher = r.Teacher is null ? d.Teacher : Checkpoint.Resolve(r.Teacher),
                    Alpha = r.Alpha ?? d.Alpha,
                    Temperature = r.Temperature ?? d.Temperature,
                    Beta = r.Beta ?? d.Beta,
                }
                : null,
        };
        EnsureSameOptions(directory, stored, requested);

        var (train, test) = DatasetLoader.Load(DatasetLoader.ParseKind(requested.Dataset), r.Data);
        Validate(requested, train, test);
        return new RunPlan(requested, directory, Resume: true, train, test);
    }

    private static void Validate(TrainingConfig config, ImageDataset train, ImageDataset test)
    {
        try
        {
            config.Validate();
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException(e.Message, e);
        }

        if (config.TrainSubset > train.Count)
        {
            throw new ArgumentException($"--train-subset {config.TrainSubset} is more than the {train.Count} training images of {config.Dataset}");
        }

        if (config.TestSubset > test.Count)
        {
            throw new ArgumentException($"--test-subset {config.TestSubset} is more than the {test.Count} test images of {config.Dataset}");
        }
    }

    private static string NormalizeArch(string arch)
    {
        var (depth, width) = WrnConfig.ParseArch(arch);
        return $"wrn-{depth}-{width}";
    }
}
