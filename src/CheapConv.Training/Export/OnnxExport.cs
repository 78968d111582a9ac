using System.Globalization;
using System.Text.Json;
using CheapConv.Backends;
using CheapConv.Models;
using CheapConv.Nn;
using CheapConv.Training;
using Google.Protobuf;
using Onnx;

namespace CheapConv.Export;

/// <summary>
/// The eval-mode graph of a <see cref="WideResNet"/> (teacher or any Moonshine student, basic or bottle blocks) as an
/// ONNX model, opset <see cref="Opset"/>: input <see cref="InputName"/> (N×C×H×W float32 images at the dataset's size,
/// normalised as in training), output <see cref="OutputName"/> (N×classes float32, before softmax). The 28→32 zero
/// padding of Fashion-MNIST models is a Pad node inside the graph. Every conv is a Conv with its <c>group</c>; batch
/// norm stays a BatchNormalization node with the running statistics (not folded): in a pre-activation WRN most BNs
/// follow a residual Add, where there is no conv to fold them into, and unfolded the graph computes exactly what the
/// model computes, with initializers named as the checkpoint's tensors (runtimes fold Conv→BN themselves where they
/// can). The normalisation and the model's configuration are in the metadata (<see cref="MeanKey"/>, <see cref="StdKey"/>,
/// <see cref="ModelKey"/>, <see cref="DatasetKey"/>).
/// </summary>
internal static class OnnxExport
{
    /// <summary>The ONNX operator set the graph uses (Conv-11, BatchNormalization-9, Pad-13, Gemm-13, Flatten-13).</summary>
    public const int Opset = 13;

    /// <summary>The name of the graph's input.</summary>
    public const string InputName = "images";

    /// <summary>The name of the graph's output.</summary>
    public const string OutputName = "logits";

    /// <summary>The name of the symbolic batch dimension of a dynamic-batch export.</summary>
    public const string BatchDimension = "batch";

    /// <summary>Metadata key: the per-channel mean the images are normalised with, a JSON array.</summary>
    public const string MeanKey = "normalization_mean";

    /// <summary>Metadata key: the per-channel standard deviation the images are normalised with, a JSON array.</summary>
    public const string StdKey = "normalization_std";

    /// <summary>Metadata key: the network as checkpoints store it (<see cref="ModelConfig"/>, JSON).</summary>
    public const string ModelKey = "cheapconv_model";

    /// <summary>Metadata key: the dataset the model was trained on.</summary>
    public const string DatasetKey = "dataset";

    /// <summary>Metadata key: how to prepare the input, in words.</summary>
    public const string InputKey = "input";

    // IR version 7 is the one that goes with opset 13 (onnx/helper.py's VERSION_TABLE).
    private const long IrVersion = (long)Onnx.Version.IrVersion202058;

    /// <summary>
    /// The model of <paramref name="checkpoint"/> (built on the host) with the run's normalisation and dataset; an
    /// <see cref="ArgumentException"/> when the checkpoint records no normalisation.
    /// </summary>
    public static ModelProto Build(Checkpoint checkpoint, int? batch)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var config = checkpoint.Config;
        var normalization = config.Normalization
            ?? throw new ArgumentException($"{checkpoint.Path} records no input normalisation (a run made before normalisations were stored); resume or retrain it to record one");
        return Build(checkpoint.CreateModel(new CpuBackend()), normalization, config.Dataset, batch);
    }

    /// <summary>
    /// The model in eval mode as ONNX; <paramref name="batch"/> fixes the batch size, null makes it the symbolic
    /// <see cref="BatchDimension"/>. Throws <see cref="ArgumentException"/> for a normalisation that does not fit the model.
    /// </summary>
    public static ModelProto Build(WideResNet model, NormalizationConfig normalization, string dataset, int? batch)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(normalization);
        var config = model.Config;
        if (normalization.Mean.Count != config.InChannels || normalization.Std.Count != config.InChannels)
        {
            throw new ArgumentException($"the normalisation has {normalization.Mean.Count} means and {normalization.Std.Count} stds; {config.Name} takes {config.InChannels} channels");
        }

        if (batch is < 1)
        {
            throw new ArgumentException($"the batch size must be at least 1, got {batch}");
        }

        var graph = new OnnxGraph();
        graph.Proto.Name = config.Name;
        graph.Input(InputName, [batch, config.InChannels, config.ImageSize, config.ImageSize], BatchDimension);
        var x = InputName;
        if (model.Pad is { } pad)
        {
            // Pad-13 takes the pads as an input: begins of every axis, then ends (N, C, H, W).
            var pads = graph.Int64Initializer("pad.pads", [0, 0, pad.Top, pad.Left, 0, 0, pad.Bottom, pad.Right]);
            x = graph.Node("Pad", "pad", [x, pads], OnnxGraph.String("mode", "constant"));
        }

        x = Convolution(graph, model.Conv1, "conv1", x);
        x = Emit(graph, model.Block1, "block1", x);
        x = Emit(graph, model.Block2, "block2", x);
        x = Emit(graph, model.Block3, "block3", x);
        x = BatchNormRelu(graph, model.Bn1, "bn1", x);
        x = graph.Node("GlobalAveragePool", "pool", [x]);
        x = graph.Node("Flatten", "flatten", [x], OnnxGraph.Int("axis", 1));
        var fc = model.Fc;
        var weight = graph.Initializer("fc.weight", fc.Weight.Shape, fc.Weight.ToArray());
        var bias = graph.Initializer("fc.bias", fc.Bias.Shape, fc.Bias.ToArray());
        graph.Node("Gemm", OutputName, [x, weight, bias], OnnxGraph.Int("transB", 1));
        graph.Output(OutputName, [batch, config.Classes], BatchDimension);

        var proto = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "cheapconv",
            ProducerVersion = typeof(OnnxExport).Assembly.GetName().Version?.ToString(3) ?? "",
            DocString = $"{config.Name} ({dataset}), eval mode. {InputDescription(config, normalization)}",
            Graph = graph.Proto,
        };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        AddMetadata(proto, MeanKey, JsonSerializer.Serialize(normalization.Mean));
        AddMetadata(proto, StdKey, JsonSerializer.Serialize(normalization.Std));
        AddMetadata(proto, ModelKey, JsonSerializer.Serialize(ModelConfig.From(config), RunFiles.Json));
        AddMetadata(proto, DatasetKey, dataset);
        AddMetadata(proto, InputKey, InputDescription(config, normalization));
        return proto;
    }

    /// <summary>Writes <paramref name="model"/> to <paramref name="path"/> atomically (a temporary file renamed over it).</summary>
    public static void Write(string path, ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        RunFiles.WriteAtomically(path, model.WriteTo);
    }

    /// <summary>"images: N×1×28×28 float32, x = (pixel/255 − mean[c]) / std[c] with mean [...] and std [...]".</summary>
    private static string InputDescription(WrnConfig config, NormalizationConfig normalization) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{InputName}: N×{config.InChannels}×{config.ImageSize}×{config.ImageSize} float32, x = (pixel/255 − mean[c]) / std[c] with mean " +
            $"{JsonSerializer.Serialize(normalization.Mean)} and std {JsonSerializer.Serialize(normalization.Std)}; {OutputName}: N×{config.Classes} float32, before softmax");

    private static void AddMetadata(ModelProto proto, string key, string value) =>
        proto.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });

    /// <summary>
    /// The nodes of <paramref name="module"/> (named <paramref name="path"/> in the state dict) applied to the value
    /// <paramref name="x"/>; returns the output's name. Each case is the module's eval-mode ForwardCore, node for node.
    /// </summary>
    private static string Emit(OnnxGraph graph, Module module, string path, string x)
    {
        switch (module)
        {
            case WrnGroup group:
                return Emit(graph, group.Layer, path + ".layer", x);
            case Sequential sequence:
                foreach (var (name, child) in sequence.Children)
                {
                    x = Emit(graph, child, $"{path}.{name}", x);
                }

                return x;
            case BasicBlock block:
            {
                var o = BatchNormRelu(graph, block.Bn1, path + ".bn1", x);
                var y = Emit(graph, block.Conv1, path + ".conv1", o);
                y = Emit(graph, block.Conv2, path + ".conv2", BatchNormRelu(graph, block.Bn2, path + ".bn2", y));
                var shortcut = block.Shortcut is null ? x : Convolution(graph, block.Shortcut, path + ".shortcut", o);
                return graph.Node("Add", path + ".add", [y, shortcut]);
            }

            case BottleBlock block:
            {
                var o = BatchNormRelu(graph, block.Bn1, path + ".bn1", x);
                var y = Emit(graph, block.Conv1, path + ".conv1", o);
                var shortcut = block.Shortcut is null ? x : Convolution(graph, block.Shortcut, path + ".shortcut", o);
                return graph.Node("Add", path + ".add", [y, shortcut]);
            }

            case GroupedUnit unit:
            {
                var y = Convolution(graph, unit.Grouped, path + ".grouped", x);
                y = BatchNormRelu(graph, unit.Bn, path + ".bn", y);
                return Convolution(graph, unit.Pointwise, path + ".pointwise", y);
            }

            case BottleneckUnit unit:
            {
                var y = BatchNormRelu(graph, unit.Bn1, path + ".bn1", Convolution(graph, unit.Reduce, path + ".reduce", x));
                y = BatchNormRelu(graph, unit.Bn2, path + ".bn2", Convolution(graph, unit.Conv, path + ".conv", y));
                return Convolution(graph, unit.Expand, path + ".expand", y);
            }

            case Conv2d conv:
                return Convolution(graph, conv, path, x);
            default:
                throw new NotSupportedException($"ONNX export: no export for {module.GetType().Name} at {path}");
        }
    }

    private static string Convolution(OnnxGraph graph, Conv2d conv, string path, string x)
    {
        var weight = graph.Initializer(path + ".weight", conv.Weight.Shape, conv.Weight.ToArray());
        return graph.Node("Conv", path, [x, weight],
            OnnxGraph.Ints("kernel_shape", conv.KernelSize, conv.KernelSize),
            OnnxGraph.Ints("strides", conv.Stride, conv.Stride),
            OnnxGraph.Ints("pads", conv.Padding, conv.Padding, conv.Padding, conv.Padding),
            OnnxGraph.Ints("dilations", 1, 1),
            OnnxGraph.Int("group", conv.Groups));
    }

    /// <summary>relu(bn(x)) in eval mode: BatchNormalization with the running statistics, then Relu.</summary>
    private static string BatchNormRelu(OnnxGraph graph, BatchNorm2d bn, string path, string x)
    {
        var scale = graph.Initializer(path + ".weight", bn.Weight.Shape, bn.Weight.ToArray());
        var bias = graph.Initializer(path + ".bias", bn.Bias.Shape, bn.Bias.ToArray());
        var mean = graph.Initializer(path + ".running_mean", bn.RunningMean.Shape, bn.RunningMean.ToArray());
        var variance = graph.Initializer(path + ".running_var", bn.RunningVar.Shape, bn.RunningVar.ToArray());
        var y = graph.Node("BatchNormalization", path, [x, scale, bias, mean, variance], OnnxGraph.Float("epsilon", bn.Eps));
        return graph.Node("Relu", path + ".relu", [y]);
    }
}
