using System.Globalization;
using CheapConv.Export;
using CheapConv.Training;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>export</c>: a checkpoint (a run directory means its best.safetensors) as an ONNX model of its eval-mode graph
/// (<see cref="OnnxExport"/>): input <c>images</c> at the dataset's size, normalised as in training, output <c>logits</c>;
/// the batch size fixed by <c>--batch N</c> or symbolic (<c>dynamic</c>, the default).
/// </summary>
internal static class ExportCommand
{
    public const string Usage = "export --ckpt CKPT|RUN_DIR --onnx FILE [--batch N|dynamic]";

    public static int Run(Options options, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        var ckpt = options.String("ckpt") ?? throw new UsageException("option --ckpt is required: a checkpoint file or a run directory");
        var onnx = options.String("onnx") ?? throw new UsageException("option --onnx is required: the ONNX file to write, e.g. --onnx model.onnx");
        var batch = ParseBatch(options.String("batch", "dynamic"));
        options.EnsureAllUsed();
        var directory = Path.GetDirectoryName(Path.GetFullPath(onnx))!;
        if (!Directory.Exists(directory))
        {
            throw new UsageException($"option --onnx: the folder {directory} does not exist; create it first");
        }

        try
        {
            var checkpoint = Checkpoint.Load(Checkpoint.Resolve(ckpt));
            var config = checkpoint.Config;
            OnnxExport.Write(onnx, OnnxExport.Build(checkpoint, batch));
            var normalization = config.Normalization!;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {onnx}: {config.Model.Describe()}, ONNX opset {OnnxExport.Opset}, batch {batch?.ToString(CultureInfo.InvariantCulture) ?? "dynamic"}"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"input '{OnnxExport.InputName}' N×{config.Model.InChannels}×{config.Model.Image}×{config.Model.Image} float32, (pixel/255 − mean) / std with mean [{Join(normalization.Mean)}] std [{Join(normalization.Std)}]; output '{OnnxExport.OutputName}' N×{config.Model.Classes}"));
            return 0;
        }
        catch (Exception e) when (e is CheckpointException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            throw new UsageException(TrainCommand.OneLine(e.Message));
        }
    }

    /// <summary>"dynamic" → null (a symbolic batch dimension), else a positive integer.</summary>
    private static int? ParseBatch(string text) =>
        text == "dynamic" ? null
        : int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= 1 ? value
        : throw new UsageException($"option --batch must be a positive integer or 'dynamic', got '{text}'");

    private static string Join(IEnumerable<float> values) => string.Join(", ", values.Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
}
