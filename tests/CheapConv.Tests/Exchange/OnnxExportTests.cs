using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Export;
using CheapConv.Models;
using CheapConv.Training;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;
using Xunit;
using Xunit.Abstractions;

namespace CheapConv.Tests.Exchange;

/// <summary>
/// The ONNX export run by ONNX Runtime (CPU) against our own eval on the C# CPU backend: the teacher and every unit
/// kind in basic and bottle blocks, fixed and dynamic batch, within <see cref="InteropModels.Tolerance"/>; and graphs
/// with one deliberate mistake (padding, a conv's group or pads, BN's epsilon, a lost ReLU) that the comparison must refuse.
/// </summary>
public class OnnxExportTests(ITestOutputHelper output)
{
    private static readonly NormalizationConfig FashionNormalization = new([0.2860f], [0.3530f]);

    public static TheoryData<string, string, string> Models => new()
    {
        // The Fashion-MNIST teacher of the demo (28×28, padded inside the graph).
        { "wrn-16-2", "S", "basic" },
        { "wrn-10-1", "S", "bottle" },
        { "wrn-10-1", "G(4)", "basic" },
        { "wrn-10-1", "G(N/4)", "bottle" },
        { "wrn-10-1", "DW", "basic" },
        { "wrn-10-1", "B(2)", "bottle" },
        { "wrn-10-1", "B(2)", "basic" },
        { "wrn-10-1", "BG(2,4)", "bottle" },
        { "wrn-10-1", "BG(2,N)", "basic" },
    };

    private static WrnConfig Config(string arch, string block, string blockType, int inChannels = 1, int image = 28)
    {
        var (depth, width) = WrnConfig.ParseArch(arch);
        return new WrnConfig(depth, width, UnitSpec.Parse(block), blockType == "bottle" ? BlockType.Bottle : BlockType.Basic, inChannels, 10, image);
    }

    /// <summary>Runs the serialized model in ONNX Runtime on <paramref name="images"/> (count × C × H × W).</summary>
    private static float[] RunOnnx(byte[] onnx, WrnConfig config, float[] images, int count)
    {
        using var session = new InferenceSession(onnx);
        var input = new DenseTensor<float>(images, [count, config.InChannels, config.ImageSize, config.ImageSize]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxExport.InputName, input)]);
        var logits = Assert.Single(results);
        Assert.Equal(OnnxExport.OutputName, logits.Name);
        return [.. logits.AsEnumerable<float>()];
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Export_DynamicBatch_MatchesOurEval(string arch, string block, string blockType)
    {
        var config = Config(arch, block, blockType);
        var model = InteropModels.Create(config, seed: 3, InteropModels.Images(config, 4, seed: 4), 4);
        var onnx = OnnxExport.Build(model, FashionNormalization, "fashion-mnist", batch: null).ToByteArray();
        var tolerance = InteropModels.Tolerance(model);
        // The same file at two batch sizes: the batch dimension is symbolic.
        foreach (var count in new[] { 1, 3 })
        {
            var images = InteropModels.Images(config, count, seed: 5 + count);
            var error = InteropModels.RelativeError(InteropModels.Logits(model, images, count), RunOnnx(onnx, config, images, count));
            output.WriteLine($"{config.Name}, batch {count}: relative error {error:0.00e+00}, tolerance {tolerance:0.00e+00}");
            Assert.True(error <= tolerance, $"{config.Name}, batch {count}: ONNX Runtime's logits differ by {error:0.00e+00} of the largest, beyond {tolerance:0.00e+00}");
        }
    }

    [Fact]
    public void Export_FixedBatch_CifarSize_MatchesOurEval()
    {
        var config = Config("wrn-10-1", "G(2)", "basic", inChannels: 3, image: 32);
        var images = InteropModels.Images(config, 2, seed: 9);
        var model = InteropModels.Create(config, seed: 8, images, 2);
        var proto = OnnxExport.Build(model, new NormalizationConfig([0.49f, 0.48f, 0.45f], [0.25f, 0.24f, 0.26f]), "cifar10", batch: 2);
        Assert.DoesNotContain(proto.Graph.Node, n => n.OpType == "Pad");
        Assert.Equal(2, proto.Graph.Input[0].Type.TensorType.Shape.Dim[0].DimValue);
        var error = InteropModels.RelativeError(InteropModels.Logits(model, images, 2), RunOnnx(proto.ToByteArray(), config, images, 2));
        Assert.True(error <= InteropModels.Tolerance(model), $"fixed batch 2: ONNX Runtime's logits differ by {error:0.00e+00} of the largest");
    }

    [Fact]
    public void Export_DescribesItsInterface()
    {
        var config = Config("wrn-10-1", "G(4)", "basic");
        var proto = OnnxExport.Build(new WideResNet(config, new CpuBackend(), 1), FashionNormalization, "fashion-mnist", batch: null);
        Assert.Equal(OnnxExport.Opset, Assert.Single(proto.OpsetImport).Version);
        var input = Assert.Single(proto.Graph.Input);
        Assert.Equal(OnnxExport.InputName, input.Name);
        Assert.Equal([OnnxExport.BatchDimension, "1", "28", "28"], input.Type.TensorType.Shape.Dim.Select(d => d.HasDimParam ? d.DimParam : d.DimValue.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(OnnxExport.OutputName, Assert.Single(proto.Graph.Output).Name);
        var metadata = proto.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal("[0.286]", metadata[OnnxExport.MeanKey]);
        Assert.Equal("[0.353]", metadata[OnnxExport.StdKey]);
        Assert.Equal("fashion-mnist", metadata[OnnxExport.DatasetKey]);
        Assert.Contains("\"block\":\"G(4)\"", metadata[OnnxExport.ModelKey], StringComparison.Ordinal);
        // Every state-dict tensor is an initializer under its own name, and the grouped 3×3s carry their groups.
        var model = new WideResNet(config, new ShapeOnlyBackend());
        Assert.Equal(model.StateDict().Select(e => e.Name).Order(), proto.Graph.Initializer.Select(i => i.Name).Where(n => n != "pad.pads").Order());
        Assert.Contains(proto.Graph.Node, n => n.Name == "block2.layer.0.conv1.grouped" && n.Attribute.Single(a => a.Name == "group").I == 4);
    }

    /// <summary>One mistake an exporter could make, applied to a correct graph.</summary>
    public static TheoryData<string> Mutations => ["pad offset", "conv pads", "group", "bn epsilon", "lost relu"];

    [Theory]
    [MemberData(nameof(Mutations))]
    public void MutatedGraph_FailsTheComparison(string mutation)
    {
        var config = Config("wrn-10-1", "G(4)", "basic");
        var images = InteropModels.Images(config, 2, seed: 11);
        var model = InteropModels.Create(config, seed: 10, images, 2);
        var proto = OnnxExport.Build(model, FashionNormalization, "fashion-mnist", batch: null);
        Mutate(proto.Graph, mutation);
        var expected = InteropModels.Logits(model, images, 2);
        var error = InteropModels.RelativeError(expected, RunOnnx(proto.ToByteArray(), config, images, 2));
        output.WriteLine($"{mutation}: relative error {error:0.00e+00}, tolerance {InteropModels.Tolerance(model):0.00e+00}");
        Assert.True(error > InteropModels.Tolerance(model), $"{mutation}: the mutated graph still matches (error {error:0.00e+00})");
    }

    private static void Mutate(GraphProto graph, string mutation)
    {
        NodeProto Node(string name) => graph.Node.Single(n => n.Name == name);
        AttributeProto Attribute(string node, string name) => Node(node).Attribute.Single(a => a.Name == name);
        switch (mutation)
        {
            case "pad offset":
                // 28→32 with all four rows and columns added below and right: same shape, image moved by two pixels.
                var pads = graph.Initializer.Single(i => i.Name == "pad.pads");
                pads.Int64Data.Clear();
                pads.Int64Data.AddRange([0, 0, 0, 0, 0, 0, 4, 4]);
                break;
            case "conv pads":
                // The stem's 3×3 padded 2 before and 0 after: same output size, shifted by one pixel.
                var convPads = Attribute("conv1", "pads");
                convPads.Ints.Clear();
                convPads.Ints.AddRange([2, 2, 0, 0]);
                break;
            case "group":
                // 4 groups exported as 2, the weight widened with zeros so that the graph still runs: each output channel
                // of the second half of a group now reads the first half's inputs.
                Attribute("block2.layer.0.conv1.grouped", "group").I = 2;
                var weight = graph.Initializer.Single(i => i.Name == "block2.layer.0.conv1.grouped.weight");
                int outputs = (int)weight.Dims[0], perGroup = (int)weight.Dims[1], taps = (int)(weight.Dims[2] * weight.Dims[3]);
                var old = weight.RawData.ToByteArray();
                var widened = new byte[old.Length * 2];
                for (var k = 0; k < outputs; k++)
                {
                    old.AsSpan(k * perGroup * taps * sizeof(float), perGroup * taps * sizeof(float)).CopyTo(widened.AsSpan(k * 2 * perGroup * taps * sizeof(float)));
                }

                weight.RawData = ByteString.CopyFrom(widened);
                weight.Dims[1] = 2 * perGroup;
                break;
            case "bn epsilon":
                Attribute("block3.layer.0.bn2", "epsilon").F = 0.1f;
                break;
            case "lost relu":
                // The final BN's ReLU bypassed: the pool reads the BN's output directly.
                var pool = Node("pool");
                pool.Input[0] = "bn1";
                break;
            default:
                throw new ArgumentException(mutation);
        }
    }
}
