using System.Globalization;
using CheapConv.Data;
using CheapConv.Devices;
using CheapConv.Training;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>eval</c>: test loss and accuracy of any checkpoint (a run directory means its best.safetensors) on the test
/// split of its dataset, with the normalisation the run trained with.
/// </summary>
internal static class EvalCommand
{
    public const string Usage =
        "eval --ckpt CKPT|RUN_DIR [--dataset fashion-mnist|mnist|cifar10|cifar100] [--data DIR] [--device auto|cpu|emu|cuda[:N]] [--batch-size 256]";

    public static int Run(Options options, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        var ckpt = options.String("ckpt") ?? throw new UsageException("option --ckpt is required: a checkpoint file or a run directory");
        var datasetOption = options.String("dataset");
        var data = options.String("data");
        var request = options.Device(DeviceRequest.Auto, [.. DeviceRequest.Kinds]);
        var batchSize = options.Int("batch-size", Evaluator.DefaultBatchSize);
        options.EnsureAllUsed();
        if (batchSize < 1)
        {
            throw new UsageException($"option --batch-size must be at least 1, got {batchSize}");
        }

        try
        {
            var checkpoint = Checkpoint.Load(Checkpoint.Resolve(ckpt));
            var config = checkpoint.Config;
            var kind = DatasetLoader.ParseKind(datasetOption ?? config.Dataset);
            var (train, test) = DatasetLoader.Load(kind, data);
            var m = config.Model;
            if (test.Channels != m.InChannels || test.Height != m.Image || test.Width != m.Image || test.Classes != m.Classes)
            {
                throw new UsageException(
                    $"{checkpoint.Path} holds a {m.Describe()}; {test.Name} has {test.Channels}×{test.Height}×{test.Width} images with {test.Classes} classes");
            }

            var stored = config.Normalization ?? Trainer.DefaultNormalization(DatasetLoader.Name(kind), train);
            var normalization = new Normalization([.. stored.Mean], [.. stored.Std]);
            using var device = ComputeDevice.Open(request);
            var model = checkpoint.CreateModel(device.Backend);
            var result = Evaluator.Run(model, test, normalization, batchSize);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{m.Describe()}, mode {config.Mode}, epoch {checkpoint.State.Epoch} of {config.Epochs} ({checkpoint.Path})"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"test loss {result.Loss:0.0000}  accuracy {result.Accuracy * 100:0.00}% ({result.Correct}/{result.Count}), error {(1 - result.Accuracy) * 100:0.00}%  on {test.Name}, {device}"));
            return 0;
        }
        catch (Exception e) when (e is DataException or CheckpointException or FormatException or InvalidDataException or IOException or UnauthorizedAccessException)
        {
            throw new UsageException(TrainCommand.OneLine(e.Message));
        }
    }
}
