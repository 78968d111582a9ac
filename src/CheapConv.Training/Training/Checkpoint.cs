using System.Globalization;
using System.Text.Json;
using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;
using CheapConv.Nn;

namespace CheapConv.Training;

/// <summary>Where a run stands after an epoch: what a checkpoint stores besides tensors.</summary>
/// <param name="Epoch">Epochs completed (1-based count; the next epoch's 0-based loader index).</param>
/// <param name="BestAccuracy">Best test accuracy so far, in [0, 1].</param>
/// <param name="BestEpoch">The epoch (1-based) that reached it; 0 before any.</param>
/// <param name="LastMetrics">The metrics of epoch <paramref name="Epoch"/>, so a metrics.jsonl line lost in a crash between
/// the checkpoint and the append can be restored on resume.</param>
public sealed record TrainingState(int Epoch, double BestAccuracy, int BestEpoch, EpochMetrics? LastMetrics);

/// <summary>
/// A checkpoint: safetensors with the model's state dict under PyTorch's names (<c>conv1.weight</c>,
/// <c>block1.layer.0.bn1.running_mean</c>, …), optionally the SGD momentum buffers as
/// <c>optimizer.momentum.&lt;parameter name&gt;</c>, and in <c>__metadata__</c>:
/// <list type="bullet">
/// <item><c>format</c> = <see cref="FormatName"/>, <c>format_version</c> = <see cref="FormatVersion"/>;</item>
/// <item><c>data_sha256</c>: the SHA-256 of the tensor data (<see cref="SafetensorsFile.ChecksumKey"/>), verified on load;</item>
/// <item><c>content</c>: "training" (weights, BN statistics, optimiser state: what --resume needs) or "weights";</item>
/// <item><c>config</c>: the run's exact config.json text (<see cref="TrainingConfig"/>), which names the architecture;</item>
/// <item><c>epoch</c>, <c>best_accuracy</c>, <c>best_epoch</c>, <c>last_metrics</c>;</item>
/// <item><c>data_seed</c> and <c>data_order</c>: the data-order state. The batch loader is a pure function of
/// (seed, epoch) — shuffle and augmentation of epoch e come from generators seeded by (seed, e) and nothing else —
/// so the seed and the epoch counter are the whole random state of the data pipeline; no generator state is stored
/// because none is carried from one epoch to the next. Model initialisation used the same seed but happens once.</item>
/// </list>
/// </summary>
public sealed class Checkpoint
{
    /// <summary>The <c>format</c> metadata value of our checkpoints.</summary>
    internal const string FormatName = "cheapconv-checkpoint";

    /// <summary>The <c>format_version</c> this code writes (2: with the data checksum); it reads 1 and 2.</summary>
    internal const int FormatVersion = 2;

    /// <summary>The prefix of the momentum buffers' tensor names.</summary>
    internal const string MomentumPrefix = "optimizer.momentum.";

    private const string DataOrderNote =
        "batches of epoch e (0-based) are a pure function of (data_seed, e): the epoch counter is the whole data-order RNG state";

    private readonly IReadOnlyDictionary<string, (int[] Shape, float[] Data)> _tensors;

    private Checkpoint(string path, TrainingConfig config, TrainingState state, bool hasOptimizerState, IReadOnlyDictionary<string, (int[] Shape, float[] Data)> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        Config = config;
        State = state;
        HasOptimizerState = hasOptimizerState;
        Metadata = metadata;
        _tensors = tensors;
    }

    /// <summary>The file it was read from.</summary>
    public string Path { get; }

    /// <summary>The configuration of the run that wrote it.</summary>
    public TrainingConfig Config { get; }

    /// <summary>Epoch and best accuracy when it was written.</summary>
    public TrainingState State { get; }

    /// <summary>Whether it holds the optimiser state (a "training" checkpoint) or weights only.</summary>
    public bool HasOptimizerState { get; }

    /// <summary>The raw metadata.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>
    /// The checkpoint file of <paramref name="runDirectoryOrFile"/>: a file is itself; a run directory gives its
    /// <see cref="RunFiles.BestCheckpointFile"/> (or <see cref="RunFiles.CheckpointFile"/> with <paramref name="latest"/>).
    /// A path that is neither is a <see cref="CheckpointException"/>.
    /// </summary>
    public static string Resolve(string runDirectoryOrFile, bool latest = false)
    {
        if (File.Exists(runDirectoryOrFile))
        {
            return System.IO.Path.GetFullPath(runDirectoryOrFile);
        }

        if (Directory.Exists(runDirectoryOrFile))
        {
            var file = System.IO.Path.Combine(runDirectoryOrFile, latest ? RunFiles.CheckpointFile : RunFiles.BestCheckpointFile);
            return File.Exists(file)
                ? System.IO.Path.GetFullPath(file)
                : throw new CheckpointException($"{runDirectoryOrFile} is not a run directory with a checkpoint: it has no {System.IO.Path.GetFileName(file)}");
        }

        throw new CheckpointException($"{runDirectoryOrFile}: no such checkpoint file or run directory");
    }

    /// <summary>
    /// Writes a checkpoint of <paramref name="model"/> (and the momentum of <paramref name="optimizer"/> when given)
    /// atomically to <paramref name="path"/>.
    /// </summary>
    public static void Save(string path, TrainingConfig config, TrainingState state, WideResNet model, Sgd? optimizer)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(model);
        var tensors = new List<SafetensorsTensor>();
        foreach (var (name, tensor) in model.StateDict())
        {
            tensors.Add(new SafetensorsTensor(name, [.. tensor.Shape], () => RequireFinite(path, name, tensor.ToArray())));
        }

        if (optimizer is not null)
        {
            foreach (var (name, parameter) in model.NamedParameters())
            {
                if (optimizer.ExportMomentum(parameter) is { } momentum)
                {
                    tensors.Add(new SafetensorsTensor(MomentumPrefix + name, [.. parameter.Shape], () => RequireFinite(path, MomentumPrefix + name, momentum)));
                }
            }
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = FormatName,
            ["format_version"] = FormatVersion.ToString(CultureInfo.InvariantCulture),
            ["content"] = optimizer is null ? "weights" : "training",
            ["config"] = config.ToJson(),
            ["epoch"] = state.Epoch.ToString(CultureInfo.InvariantCulture),
            ["best_accuracy"] = state.BestAccuracy.ToString("R", CultureInfo.InvariantCulture),
            ["best_epoch"] = state.BestEpoch.ToString(CultureInfo.InvariantCulture),
            ["data_seed"] = config.Seed.ToString(CultureInfo.InvariantCulture),
            ["data_order"] = DataOrderNote,
        };
        if (state.LastMetrics is { } metrics)
        {
            metadata["last_metrics"] = JsonSerializer.Serialize(metrics, RunFiles.Json);
        }

        SafetensorsFile.Write(path, tensors, metadata);
    }

    /// <summary>The first NaN or infinity in <paramref name="values"/>, or null when all are finite.</summary>
    internal static float? FirstNonFinite(ReadOnlySpan<float> values)
    {
        foreach (var value in values)
        {
            if (!float.IsFinite(value))
            {
                return value;
            }
        }

        return null;
    }

    // The last guard: the trainer stops a diverging run before it saves, so this fires only on a bug.
    private static float[] RequireFinite(string path, string name, float[] values) =>
        FirstNonFinite(values) is { } value
            ? throw new CheckpointException($"refusing to write {path}: tensor {name} holds {value}; a checkpoint never holds non-finite values")
            : values;

    /// <summary>
    /// Reads and validates a checkpoint file: a <see cref="CheckpointException"/> when it is corrupt (see
    /// <see cref="SafetensorsFile.Read"/>), not one of ours, of a newer format, or without a valid configuration.
    /// </summary>
    public static Checkpoint Load(string path)
    {
        var content = SafetensorsFile.Read(path);
        var meta = content.Metadata;
        if (!meta.TryGetValue("format", out var format) || format != FormatName)
        {
            throw new CheckpointException($"{path}: not a CheapConv checkpoint (its metadata has no format '{FormatName}'), so its architecture is unknown");
        }

        if (!meta.TryGetValue("format_version", out var versionText) || !int.TryParse(versionText, NumberStyles.None, CultureInfo.InvariantCulture, out var version)
            || version is < 1 or > FormatVersion)
        {
            throw new CheckpointException($"{path}: checkpoint format version '{versionText}' is not one this build reads (1 to {FormatVersion})");
        }

        // Version 2 added the data checksum, which SafetensorsFile.Read has verified when present: from it on, it must be.
        if (version >= 2 && !meta.ContainsKey(SafetensorsFile.ChecksumKey))
        {
            throw new CheckpointException($"{path}: a version {version} checkpoint without its {SafetensorsFile.ChecksumKey} checksum; the file was altered");
        }

        TrainingConfig config;
        try
        {
            config = TrainingConfig.FromJson(meta.GetValueOrDefault("config") ?? throw new InvalidDataException("it has no config"), $"{path} metadata");
            config.Model.ToWrnConfig();
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or ArgumentException)
        {
            throw new CheckpointException($"{path}: its stored configuration is not valid: {e.Message}");
        }

        var state = new TrainingState(
            Integer(path, meta, "epoch"),
            Number(path, meta, "best_accuracy"),
            Integer(path, meta, "best_epoch"),
            meta.TryGetValue("last_metrics", out var metricsJson) ? ParseMetrics(path, metricsJson) : null);
        var hasOptimizer = meta.GetValueOrDefault("content") == "training";
        return new Checkpoint(path, config, state, hasOptimizer, content.Tensors, meta);
    }

    /// <summary>
    /// Refuses a checkpoint whose network is not <paramref name="expected"/> (architecture, block, block type,
    /// channels, classes, image size), with a message naming both.
    /// </summary>
    internal void EnsureArchitecture(ModelConfig expected)
    {
        ArgumentNullException.ThrowIfNull(expected);
        if (Config.Model != expected)
        {
            throw new CheckpointException($"{Path} holds a {Config.Model.Describe()}, but this run needs a {expected.Describe()}");
        }
    }

    /// <summary>A new model of the stored architecture on <paramref name="backend"/>, with the stored weights and statistics.</summary>
    public WideResNet CreateModel(IBackend backend)
    {
        var model = new WideResNet(Config.Model.ToWrnConfig(), backend, Config.Seed);
        LoadInto(model);
        return model;
    }

    /// <summary>
    /// Loads the weights and BN statistics into <paramref name="model"/> after <see cref="EnsureArchitecture"/>;
    /// every state-dict entry must be present with its shape (missing tensors are named).
    /// </summary>
    public void LoadInto(WideResNet model)
    {
        ArgumentNullException.ThrowIfNull(model);
        EnsureArchitecture(ModelConfig.From(model.Config));
        StateDictFile.Load(Path, _tensors, model, refuseUnexpected: false);
    }

    /// <summary>Restores the momentum buffers of <paramref name="optimizer"/> over <paramref name="model"/>'s parameters.</summary>
    public void LoadOptimizerInto(Sgd optimizer, WideResNet model)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(model);
        if (!HasOptimizerState)
        {
            throw new CheckpointException($"{Path} holds weights only, no optimiser state; a run resumes from its {RunFiles.CheckpointFile}");
        }

        foreach (var (name, parameter) in model.NamedParameters())
        {
            // A parameter without a stored buffer had not been stepped yet (no gradient): it stays without one.
            if (!_tensors.TryGetValue(MomentumPrefix + name, out var stored))
            {
                continue;
            }

            CheckShape(MomentumPrefix + name, stored.Shape, parameter);
            optimizer.ImportMomentum(parameter, stored.Data);
        }
    }

    private void CheckShape(string name, int[] stored, Tensor tensor)
    {
        if (!stored.SequenceEqual(tensor.Shape))
        {
            throw new CheckpointException($"{Path}: tensor {name} has shape [{string.Join(", ", stored)}], the model needs [{string.Join(", ", tensor.Shape)}]");
        }
    }

    private static int Integer(string path, IReadOnlyDictionary<string, string> meta, string key) =>
        meta.TryGetValue(key, out var text) && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= 0
            ? value
            : throw new CheckpointException($"{path}: metadata '{key}' is missing or not a non-negative integer");

    private static double Number(string path, IReadOnlyDictionary<string, string> meta, string key) =>
        meta.TryGetValue(key, out var text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value)
            ? value
            : throw new CheckpointException($"{path}: metadata '{key}' is missing or not a number");

    private static EpochMetrics ParseMetrics(string path, string json)
    {
        try
        {
            return JsonSerializer.Deserialize<EpochMetrics>(json, RunFiles.Json) ?? throw new CheckpointException($"{path}: metadata 'last_metrics' is empty");
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{path}: metadata 'last_metrics' is not a metrics record: {e.Message}");
        }
    }
}
