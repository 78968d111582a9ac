using System.Globalization;
using CheapConv.Data;
using CheapConv.Devices;
using CheapConv.Models;
using CheapConv.Training;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>eval</c>: test loss and accuracy of any checkpoint (a run directory means its best.safetensors) on the test
/// split of its dataset, with the normalisation the run trained with. With <c>--arch</c> (and <c>--block</c>,
/// <c>--block-type</c>) the file is a state dict alone — e.g. one saved from PyTorch as safetensors, without CheapConv's
/// metadata — evaluated with the normalisation a new run on the dataset would use. <c>--test-subset N</c> evaluates the
/// first N test images.
/// </summary>
internal static class EvalCommand
{
    public const string Usage =
        "eval --ckpt CKPT|RUN_DIR [--arch wrn-16-2 [--block S] [--block-type basic|bottle] (a state dict without CheapConv metadata)] " +
        "[--dataset fashion-mnist|mnist|cifar10|cifar100] [--data DIR] [--test-subset N] [--device auto|cpu|emu|cuda[:N]] [--batch-size 256]";

    public static int Run(Options options, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        var ckpt = options.String("ckpt") ?? throw new UsageException("option --ckpt is required: a checkpoint file or a run directory");
        var arch = options.String("arch");
        var block = options.String("block");
        var blockType = options.String("block-type")?.ToLowerInvariant();
        var datasetOption = options.String("dataset");
        var data = options.String("data");
        var testSubset = TrainCommand.OptionalInt(options, "test-subset");
        var request = options.Device(DeviceRequest.Auto, [.. DeviceRequest.Kinds]);
        var batchSize = options.Int("batch-size", Evaluator.DefaultBatchSize);
        options.EnsureAllUsed();
        if (batchSize < 1)
        {
            throw new UsageException($"option --batch-size must be at least 1, got {batchSize}");
        }

        if (testSubset < 1)
        {
            throw new UsageException($"option --test-subset must be at least 1, got {testSubset}");
        }

        if (arch is null && (block is not null || blockType is not null))
        {
            throw new UsageException("options --block and --block-type go with --arch, for a state dict without CheapConv metadata; a CheapConv checkpoint names its own architecture");
        }

        if (blockType is not null and not ("basic" or "bottle"))
        {
            throw new UsageException($"option --block-type must be one of basic, bottle, got '{blockType}'");
        }

        try
        {
            var checkpoint = arch is null ? Checkpoint.Load(Checkpoint.Resolve(ckpt)) : null;
            var path = checkpoint?.Path ?? Checkpoint.Resolve(ckpt);
            var kind = DatasetLoader.ParseKind(datasetOption ?? checkpoint?.Config.Dataset ?? "fashion-mnist");
            var (train, test) = DatasetLoader.Load(kind, data);
            // A state dict alone takes the dataset's image size, channels and classes; a checkpoint names its own.
            var model = checkpoint?.Config.Model
                ?? StateDictModel(arch!, block ?? "S", blockType, test);
            if (test.Channels != model.InChannels || test.Height != model.Image || test.Width != model.Image || test.Classes != model.Classes)
            {
                throw new UsageException(
                    $"{path} holds a {model.Describe()}; {test.Name} has {test.Channels}×{test.Height}×{test.Width} images with {test.Classes} classes");
            }

            if (testSubset > test.Count)
            {
                throw new UsageException($"option --test-subset {testSubset} is more than the {test.Count} test images of {test.Name}");
            }

            var stored = checkpoint?.Config.Normalization ?? Trainer.DefaultNormalization(DatasetLoader.Name(kind), train);
            var normalization = new Normalization([.. stored.Mean], [.. stored.Std]);
            using var device = ComputeDevice.Open(request);
            WideResNet network;
            if (checkpoint is not null)
            {
                network = checkpoint.CreateModel(device.Backend);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{model.Describe()}, mode {checkpoint.Config.Mode}, epoch {checkpoint.State.Epoch} of {checkpoint.Config.Epochs} ({path})"));
            }
            else
            {
                network = new WideResNet(model.ToWrnConfig(), device.Backend);
                StateDictFile.LoadInto(path, network);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{model.Describe()}, a state dict without CheapConv metadata ({path}); normalised with mean [{Join(stored.Mean)}] std [{Join(stored.Std)}]"));
            }

            var images = testSubset is { } count ? test.First(count) : test;
            var result = Evaluator.Run(network, images, normalization, batchSize);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"test loss {result.Loss:0.0000}  accuracy {result.Accuracy * 100:0.00}% ({result.Correct}/{result.Count}), error {(1 - result.Accuracy) * 100:0.00}%  on {images.Name}, {device}"));
            return 0;
        }
        catch (Exception e) when (e is DataException or CheckpointException or FormatException or InvalidDataException or IOException or UnauthorizedAccessException)
        {
            throw new UsageException(TrainCommand.OneLine(e.Message));
        }
    }

    /// <summary>The network --arch, --block and --block-type name, for the images of <paramref name="test"/>.</summary>
    private static ModelConfig StateDictModel(string arch, string block, string? blockType, ImageDataset test)
    {
        try
        {
            var (depth, width) = WrnConfig.ParseArch(arch);
            var unit = UnitSpec.Parse(block);
            var model = new ModelConfig($"wrn-{depth}-{width}", unit.ToString(), blockType ?? unit.DefaultBlockType.ToString().ToLowerInvariant(),
                test.Channels, test.Classes, test.Height);
            // Building the summary instantiates every layer: channels a unit's groups do not divide are refused here.
            ModelSummary.Of(model.ToWrnConfig());
            return model;
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }

    private static string Join(IEnumerable<float> values) => string.Join(", ", values.Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
}
