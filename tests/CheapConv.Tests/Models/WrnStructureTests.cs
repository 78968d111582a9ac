using CheapConv.Autograd;
using CheapConv.Models;
using Xunit;

namespace CheapConv.Tests.Models;

/// <summary>The module tree and state-dict names of models.md, shared with the PyTorch fixture script.</summary>
public class WrnStructureTests
{
    private static WideResNet Build(string block, int imageSize = 16) =>
        new(WrnConfig.Student(10, 1, UnitSpec.Parse(block), inChannels: 1, imageSize: imageSize), new ShapeOnlyBackend());

    [Fact]
    public void Teacher_StateDictNames_AreModelsMdInPyTorchOrder()
    {
        var names = Build("S").StateDict().Select(e => e.Name).ToList();
        string[] bn(string p) => [$"{p}.weight", $"{p}.bias", $"{p}.running_mean", $"{p}.running_var"];
        string[] expected =
        [
            "conv1.weight",
            .. bn("block1.layer.0.bn1"), "block1.layer.0.conv1.weight", .. bn("block1.layer.0.bn2"), "block1.layer.0.conv2.weight",
            .. bn("block2.layer.0.bn1"), "block2.layer.0.conv1.weight", .. bn("block2.layer.0.bn2"), "block2.layer.0.conv2.weight", "block2.layer.0.shortcut.weight",
            .. bn("block3.layer.0.bn1"), "block3.layer.0.conv1.weight", .. bn("block3.layer.0.bn2"), "block3.layer.0.conv2.weight", "block3.layer.0.shortcut.weight",
            .. bn("bn1"), "fc.weight", "fc.bias",
        ];
        Assert.Equal(expected, names);
    }

    [Fact]
    public void GroupedStudent_UnitChildren_AreGroupedBnPointwise()
    {
        var model = Build("G(2)");
        var shapes = model.StateDict().ToDictionary(e => e.Name, e => e.Tensor.Shape.ToArray());
        Assert.Equal([16, 8, 3, 3], shapes["block2.layer.0.conv1.grouped.weight"]); // 16→16 at stride 2, 2 groups
        Assert.Equal([16], shapes["block2.layer.0.conv1.bn.running_var"]);
        Assert.Equal([32, 16, 1, 1], shapes["block2.layer.0.conv1.pointwise.weight"]);
        Assert.Equal([32, 16, 3, 3], shapes["block2.layer.0.conv2.grouped.weight"]);
        Assert.Equal([32, 16, 1, 1], shapes["block2.layer.0.shortcut.weight"]);
        Assert.Equal([16, 1, 3, 3], shapes["conv1.weight"]);
        Assert.DoesNotContain("block1.layer.0.shortcut.weight", shapes.Keys);
    }

    [Fact]
    public void BottleStudent_UnitChildren_AreReduceBnConvBnExpand()
    {
        var model = Build("B(2)");
        Assert.Equal(BlockType.Bottle, model.Config.BlockType);
        var shapes = model.StateDict().ToDictionary(e => e.Name, e => e.Tensor.Shape.ToArray());
        Assert.Equal([32, 32, 1, 1], shapes["block3.layer.0.conv1.reduce.weight"]); // mid = 64/2
        Assert.Equal([32], shapes["block3.layer.0.conv1.bn1.weight"]);
        Assert.Equal([32, 32, 3, 3], shapes["block3.layer.0.conv1.conv.weight"]);
        Assert.Equal([32], shapes["block3.layer.0.conv1.bn2.running_mean"]);
        Assert.Equal([64, 32, 1, 1], shapes["block3.layer.0.conv1.expand.weight"]);
        Assert.DoesNotContain(shapes.Keys, name => name.Contains(".bn2.", StringComparison.Ordinal) && !name.Contains("conv1", StringComparison.Ordinal));
        Assert.DoesNotContain(shapes.Keys, name => name.Contains("conv2", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("BG(2,4)", 4)]
    [InlineData("BG(2,N/4)", 2)]
    [InlineData("BG(2,N/8)", 1)]
    [InlineData("BG(2,N)", 8)]
    public void BottleneckGrouping_AppliesToMidChannels(string block, int groupsInBlock1)
    {
        var model = Build(block);
        var weight = model.StateDict().Single(e => e.Name == "block1.layer.0.conv1.conv.weight").Tensor; // mid = 16/2 = 8
        Assert.Equal([8, 8 / groupsInBlock1, 3, 3], weight.Shape);
    }

    [Theory]
    [InlineData("S")]
    [InlineData("G(2)")]
    [InlineData("B(2)")]
    public void Forward_GroupOutputs_AreTheFixtureShapes(string block)
    {
        var model = Build(block);
        using var scope = TensorScope.Begin();
        var output = model.ForwardWithGroups(Tensor.Empty(model.Conv1.Weight.Backend, 2, 1, 16, 16));
        Assert.Equal([2, 16, 16, 16], output.Groups[0].Shape);
        Assert.Equal([2, 32, 8, 8], output.Groups[1].Shape);
        Assert.Equal([2, 64, 4, 4], output.Groups[2].Shape);
        Assert.Equal([2, 10], output.Logits.Shape);
    }

    [Fact]
    public void Forward_WrongImageSize_SaysWhatTheModelTakes()
    {
        var model = Build("S");
        using var scope = TensorScope.Begin();
        var error = Assert.Throws<ArgumentException>(() => model.Forward(Tensor.Empty(model.Conv1.Weight.Backend, 2, 3, 16, 16)));
        Assert.Contains("takes N×1×16×16 images", error.Message);
    }

    [Fact]
    public void Constructor_UnitGroupsNotDividingChannels_Throws() =>
        Assert.Contains("do not divide", Assert.Throws<ArgumentException>(() => Build("G(3)")).Message);

    [Fact]
    public void Constructor_SameSeed_GivesSameWeights()
    {
        var backend = new CheapConv.Backends.CpuBackend();
        var config = WrnConfig.Teacher(10, 1, inChannels: 1, imageSize: 16);
        var a = new WideResNet(config, backend, seed: 5).ExportStateDict();
        var b = new WideResNet(config, backend, seed: 5).ExportStateDict();
        var c = new WideResNet(config, backend, seed: 6).ExportStateDict();
        Assert.All(a, entry => Assert.Equal(entry.Value, b[entry.Key]));
        Assert.NotEqual(a["conv1.weight"], c["conv1.weight"]);
    }

    [Fact]
    public void Init_FollowsReference_ConvNormalBnOnesZerosLinearBiasZero()
    {
        var model = new WideResNet(WrnConfig.Teacher(10, 4, inChannels: 3, imageSize: 32), new CheapConv.Backends.CpuBackend(), seed: 1);
        var state = model.ExportStateDict();
        var weight = state["block3.layer.0.conv2.weight"]; // 256×256×3×3: std √(2/(9·256))
        var std = Math.Sqrt(weight.Select(v => (double)v * v).Average());
        Assert.InRange(std, 0.95 * Math.Sqrt(2.0 / (9 * 256)), 1.05 * Math.Sqrt(2.0 / (9 * 256)));
        Assert.All(state["bn1.weight"], v => Assert.Equal(1f, v));
        Assert.All(state["bn1.bias"], v => Assert.Equal(0f, v));
        Assert.All(state["bn1.running_mean"], v => Assert.Equal(0f, v));
        Assert.All(state["bn1.running_var"], v => Assert.Equal(1f, v));
        Assert.All(state["fc.bias"], v => Assert.Equal(0f, v));
        Assert.All(state["fc.weight"], v => Assert.InRange(v, -1 / 16f, 1 / 16f)); // in = 256
    }
}
