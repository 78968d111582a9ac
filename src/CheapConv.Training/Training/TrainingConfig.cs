using CheapConv.Autograd;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CheapConv.Devices;
using CheapConv.Interop;
using CheapConv.IO;
using CheapConv.Models;

namespace CheapConv.Training;

/// <summary>
/// The network of a run as config.json and checkpoints store it: names a user can read and the parser accepts
/// back (<see cref="ToWrnConfig"/>), so a checkpoint says by itself what it holds.
/// </summary>
/// <param name="Arch">"wrn-16-2".</param>
/// <param name="Block">The paper's unit name, e.g. "S", "G(4)", "G(N/8)", "BG(2,4)".</param>
/// <param name="BlockType">"basic" or "bottle".</param>
/// <param name="InChannels">Image channels.</param>
/// <param name="Classes">Output classes.</param>
/// <param name="Image">Input height and width (28 is padded to 32 inside the model).</param>
public sealed record ModelConfig(string Arch, string Block, string BlockType, int InChannels, int Classes, int Image)
{
    /// <summary>The stored form of <paramref name="config"/>.</summary>
    public static ModelConfig From(WrnConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new($"wrn-{config.Depth}-{config.Width}", config.Unit.ToString(), config.BlockType.ToString().ToLowerInvariant(),
            config.InChannels, config.Classes, config.ImageSize);
    }

    /// <summary>The model configuration; <see cref="FormatException"/> or <see cref="ArgumentException"/> when a field is not valid.</summary>
    public WrnConfig ToWrnConfig()
    {
        var (depth, width) = WrnConfig.ParseArch(Arch);
        var unit = UnitSpec.Parse(Block);
        var blockType = BlockType switch
        {
            "basic" => Models.BlockType.Basic,
            "bottle" => Models.BlockType.Bottle,
            _ => throw new FormatException($"unknown block type '{UntrustedText.OneLine(BlockType)}'; expected basic or bottle"),
        };
        var config = new WrnConfig(depth, width, unit, blockType, InChannels, Classes, Image);
        config.Validate();
        return config;
    }

    /// <summary>"WRN-16-2 G(4) basic for 1×28×28 images, 10 classes": what error messages name.</summary>
    internal string Describe() =>
        string.Create(CultureInfo.InvariantCulture, $"{Arch.ToUpperInvariant()} {Block} {BlockType} for {InChannels}×{Image}×{Image} images, {Classes} classes");

    /// <summary>"G4", "GN8", "BG2-4": the unit name without characters awkward in a folder name (UnitSpec parses it back).</summary>
    internal string BlockForPaths() => Block.Replace("(", "", StringComparison.Ordinal).Replace(")", "", StringComparison.Ordinal)
        .Replace("/", "", StringComparison.Ordinal).Replace(",", "-", StringComparison.Ordinal);
}

/// <summary>The teacher and the loss weights of a distillation run.</summary>
/// <param name="Teacher">The teacher checkpoint file (absolute path).</param>
/// <param name="TeacherModel">The teacher's network, from its checkpoint.</param>
/// <param name="Alpha">KD weight; CE gets 1 − α.</param>
/// <param name="Temperature">KD temperature.</param>
/// <param name="Beta">Weight of each of the three AT terms.</param>
public sealed record DistillationConfig(string Teacher, ModelConfig TeacherModel, double Alpha, double Temperature, double Beta)
{
    /// <summary>"KD", "AT", "KD+AT", or "none" when both weights are 0.</summary>
    public string Mode => (Alpha > 0, Beta > 0) switch
    {
        (true, true) => "KD+AT",
        (true, false) => "KD",
        (false, true) => "AT",
        _ => "none",
    };

    /// <summary>The loss weights in the float32 the loss computes with: what a run and the fixture check pass to <see cref="DistillationLoss"/>.</summary>
    public DistillationOptions LossOptions() => new((float)Alpha, (float)Temperature, (float)Beta);
}

/// <summary>Per-channel normalisation of the run, as stored (mean and std of [0, 1] pixel values).</summary>
public sealed record NormalizationConfig(IReadOnlyList<float> Mean, IReadOnlyList<float> Std);

/// <summary>
/// Everything that decides what a run computes: written once to config.json and into every checkpoint's
/// metadata, compared field by field when a run is resumed (<see cref="ResumeConflicts"/>). Nothing in a run is
/// random beyond <see cref="Seed"/>: model initialisation, the training subset, the epoch's shuffle and
/// augmentation all derive from it, so a run is a pure function of this record (and the device's arithmetic).
/// </summary>
/// <param name="Model">The trained network.</param>
/// <param name="Dataset">"fashion-mnist", "mnist", "cifar10", "cifar100".</param>
/// <param name="TrainSubset">Train on the first N images after a seeded shuffle; null for all.</param>
/// <param name="Epochs">Planned epochs.</param>
/// <param name="BatchSize">Training batch size.</param>
/// <param name="LearningRate">Initial learning rate.</param>
/// <param name="Momentum">SGD momentum.</param>
/// <param name="WeightDecay">L2 weight decay.</param>
/// <param name="Schedule">"step" (× <paramref name="LrDecay"/> at 30%, 60%, 80% of the epochs) or "cosine".</param>
/// <param name="LrDecay">The step schedule's factor (0.2 in the paper).</param>
/// <param name="Nesterov">Nesterov momentum.</param>
/// <param name="Augment">Zero-pad 4 + random crop + horizontal flip of the training images.</param>
/// <param name="Seed">The one seed of the run.</param>
/// <param name="Deterministic">Whether the run was started with --deterministic (the seed was then not drawn at random).</param>
/// <param name="Device">"cpu", "emu", "cuda" or "cuda:N", as <see cref="DeviceRequest"/> writes it (auto already resolved).</param>
/// <param name="Distillation">The teacher and loss weights; null for a run trained alone.</param>
/// <param name="Normalization">Computed from the training set when the run starts (CIFAR-10: the paper's values).</param>
public sealed record TrainingConfig(
    ModelConfig Model, string Dataset, int? TrainSubset, int Epochs, int BatchSize, double LearningRate, double Momentum,
    double WeightDecay, string Schedule, double LrDecay, bool Nesterov, bool Augment, int Seed, bool Deterministic, string Device,
    DistillationConfig? Distillation, NormalizationConfig? Normalization = null)
{
    /// <summary>The paper's recipe: SGD lr 0.1, momentum 0.9, weight decay 5e-4, batch 128, 200 epochs, ×0.2 steps.</summary>
    public const int DefaultEpochs = 200;

    public const int DefaultBatchSize = 128;

    public const double DefaultLearningRate = 0.1;

    public const double DefaultMomentum = 0.9;

    public const double DefaultWeightDecay = 5e-4;

    public const double DefaultLrDecay = 0.2;

    /// <summary>
    /// Evaluate on the first N test images (quick runs); null for the whole test split. A property rather than a
    /// constructor parameter, so that the shipped constructor stays as it was; config.json holds it like the others.
    /// </summary>
    public int? TestSubset { get; init; }

    /// <summary>
    /// --graph on|off: whether the trainer captures its training step as a graph (a CUDA graph on a GPU, a recorded list on
    /// the emulator) and replays it for every full batch (<see cref="Trainer"/>). True or false as a new run is planned (on
    /// by default on cuda and emu, refused on the cpu); null in a config.json written before the option, which means on
    /// exactly when the backend is a GPU backend (the trainer then writes what it chose). A replayed step computes the same bits as an eager one, so a resumed run
    /// keeps the stored value unless told otherwise and may change it (<see cref="ResumeConflicts"/> does not compare it).
    /// </summary>
    public bool? Graph { get; init; }

    /// <summary>
    /// --precision fp32|tf32: what the GPU backend's convolutions may use (<see cref="KernelPrecision"/>): "fp32", the
    /// exact CUDA-core kernels (the default, and what the tests hold the GPU path to against the CPU), or "tf32", the
    /// tensor-core kernels where they apply (as PyTorch does for cuDNN convolutions), with their fused epilogues. It
    /// changes the bits a step computes, so a resumed run keeps it. Null in a config.json written before the option:
    /// fp32. The cpu device computes in fp32 only.
    /// </summary>
    public string? Precision { get; init; }

    /// <summary>The convolutions' precision on a GPU backend (<see cref="Precision"/>; fp32 when unset).</summary>
    public KernelPrecision ConvPrecision => Precision == "tf32" ? KernelPrecision.Tf32 : KernelPrecision.Fp32;

    /// <summary>"none", "KD", "AT" or "KD+AT".</summary>
    public string Mode => Distillation?.Mode ?? "none";

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option that is out of range.</summary>
    public void Validate()
    {
        Require(Epochs >= 1, $"epochs must be at least 1, got {Epochs}");
        Require(BatchSize >= 1, $"the batch size must be at least 1, got {BatchSize}");
        Require(TrainSubset is null or >= 1, $"the training subset must hold at least 1 image, got {TrainSubset}");
        Require(TestSubset is null or >= 1, $"the test subset must hold at least 1 image, got {TestSubset}");
        Require(double.IsFinite(LearningRate) && LearningRate > 0, $"the learning rate must be positive, got {LearningRate}");
        Require(double.IsFinite(Momentum) && Momentum is >= 0 and < 1, $"the momentum must be in [0, 1), got {Momentum}");
        Require(double.IsFinite(WeightDecay) && WeightDecay >= 0, $"the weight decay must be non-negative, got {WeightDecay}");
        Require(Schedule is "step" or "cosine", $"the schedule must be step or cosine, got '{UntrustedText.OneLine(Schedule)}'");
        Require(double.IsFinite(LrDecay) && LrDecay is > 0 and <= 1, $"the learning-rate decay must be in (0, 1], got {LrDecay}");
        Require(!Nesterov || Momentum > 0, "Nesterov momentum needs a momentum above 0");
        Require(DeviceRequest.TryParse(Device, out var device) && device.Kind != "auto", $"the device must be cpu, emu, cuda or cuda:N, got '{UntrustedText.OneLine(Device)}'");
        Require(Graph != true || device!.Kind != "cpu",
            "--graph on needs a GPU device (cuda or emu): the C# backend of the cpu device has no graphs to capture; use --graph off or --device cuda|emu");
        Require(Precision is null or "fp32" or "tf32", $"the precision must be fp32 or tf32, got '{UntrustedText.OneLine(Precision ?? "")}'");
        Require(Precision != "tf32" || device!.Kind != "cpu",
            "--precision tf32 needs a GPU device (cuda or emu): the C# backend of the cpu device computes in fp32; use --precision fp32 or --device cuda|emu");
        if (Distillation is { } d)
        {
            Require(double.IsFinite(d.Alpha) && d.Alpha is >= 0 and <= 1, $"--alpha must be in [0, 1], got {d.Alpha}");
            Require(double.IsFinite(d.Temperature) && d.Temperature > 0, $"--temperature must be positive, got {d.Temperature}");
            Require(double.IsFinite(d.Beta) && d.Beta >= 0, $"--beta must be non-negative, got {d.Beta}");
            Require(d.Mode != "none", "--alpha 0 and --beta 0 turn both KD and AT off: train the model with `train` instead");
        }
    }

    /// <summary>The JSON of config.json (snake_case, one line).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, RunFiles.Json);

    /// <summary>Parses config.json text; <see cref="InvalidDataException"/> naming <paramref name="source"/> when it is not one.</summary>
    public static TrainingConfig FromJson(string json, string source)
    {
        try
        {
            var config = JsonSerializer.Deserialize<TrainingConfig>(json, RunFiles.Json)
                ?? throw new InvalidDataException($"{source} holds no training configuration");
            if (config.Model is null || config.Dataset is null || config.Schedule is null || config.Device is null)
            {
                throw new InvalidDataException($"{source}: the training configuration lacks model, dataset, schedule or device");
            }

            return config;
        }
        catch (JsonException e)
        {
            // The parser's message quotes the text, which may hold any character: kept to one line.
            throw new InvalidDataException(CheapConv.IO.UntrustedText.OneLine($"{source} is not a valid training configuration: {e.Message}"));
        }
    }

    /// <summary>Reads <see cref="RunFiles.ConfigFile"/> of a run directory.</summary>
    public static TrainingConfig Read(string runDirectory)
    {
        var path = Path.Combine(runDirectory, RunFiles.ConfigFile);
        return File.Exists(path)
            ? FromJson(RunFiles.ReadBoundedText(path, RunFiles.MaxJsonBytes), path)
            : throw new FileNotFoundException($"{runDirectory} is not a run directory: it has no {RunFiles.ConfigFile}", path);
    }

    /// <summary>
    /// Reads <see cref="RunFiles.ConfigFile"/> of a run directory and validates it with its model, as a run would:
    /// every refusal an <see cref="InvalidDataException"/> naming the file (what the config fuzz target and its
    /// regression tests hold the reader to).
    /// </summary>
    internal static TrainingConfig ReadValidated(string runDirectory)
    {
        var config = Read(runDirectory);
        try
        {
            config.Validate();
            config.Model.ToWrnConfig();
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            throw new InvalidDataException($"{Path.Combine(runDirectory, RunFiles.ConfigFile)}: {e.Message}", e);
        }

        return config;
    }

    /// <summary>
    /// What stops <paramref name="requested"/> from continuing the run stored as <paramref name="stored"/>: one
    /// "field: stored → requested" line per differing option. The planned epochs may grow (not shrink below the
    /// stored plan) and the normalisation is the stored one, so neither is compared here otherwise; nor is
    /// <see cref="Graph"/>, which changes how a step is launched, not what it computes.
    /// </summary>
    internal static IReadOnlyList<string> ResumeConflicts(TrainingConfig stored, TrainingConfig requested)
    {
        ArgumentNullException.ThrowIfNull(stored);
        ArgumentNullException.ThrowIfNull(requested);
        var conflicts = new List<string>();
        if (requested.Epochs < stored.Epochs)
        {
            conflicts.Add($"epochs: {stored.Epochs} → {requested.Epochs} (may only grow)");
        }

        // A config.json from before --precision (null) ran in fp32.
        var a = JsonSerializer.SerializeToNode(stored with { Epochs = 0, Normalization = null, Graph = null, Precision = stored.Precision ?? "fp32" }, RunFiles.Json)!.AsObject();
        var b = JsonSerializer.SerializeToNode(requested with { Epochs = 0, Normalization = null, Graph = null, Precision = requested.Precision ?? "fp32" }, RunFiles.Json)!.AsObject();
        foreach (var name in a.Select(p => p.Key).Union(b.Select(p => p.Key)))
        {
            var left = a[name];
            var right = b[name];
            if (!JsonNode.DeepEquals(left, right))
            {
                conflicts.Add($"{name}: {Show(left)} → {Show(right)}");
            }
        }

        return conflicts;
    }

    private static string Show(JsonNode? node) => node?.ToJsonString() ?? "null";

    private static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw new ArgumentException(message);
        }
    }
}
