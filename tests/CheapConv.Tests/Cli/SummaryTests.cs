using System.Text.Json;
using CheapConv.Cli;
using Xunit;

namespace CheapConv.Tests.Cli;

/// <summary>The summary command as a user meets it.</summary>
public class SummaryTests
{
    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = CommandLine.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void Summary_G4_PrintsTheReferenceCountsAndATable()
    {
        var (code, output, error) = Run("summary", "--arch", "wrn-40-2", "--block", "G4");
        Assert.True(code == 0, error);
        Assert.Contains("814,650 trainable", output);
        Assert.Contains("825,210 state-dict values", output);
        Assert.Contains("(117.8M) per 32x32 image", output);
        Assert.Contains("unit G(4) (code name DConvA4), basic block (the default for G(4)", output);
        Assert.Contains("block3.layer.5.conv2.pointwise", output);
        Assert.Contains("Conv2d 3x3/2 g4", output);
        Assert.Contains("fc", output);
    }

    [Theory]
    [InlineData("B2", null, "bottle", 437_242)]
    [InlineData("BG(2,N/8)", null, "bottle", 195_322)]
    [InlineData("S", null, "basic", 2_248_954)]
    [InlineData("B2", "basic", "basic", -1)]
    public void Summary_Json_IsOneObjectWithParamsStateMacs(string block, string? blockType, string expectedType, long state)
    {
        string[] args = ["summary", "--arch", "wrn-40-2", "--block", block, "--json", .. blockType is null ? Array.Empty<string>() : ["--block-type", blockType]];
        var (code, output, error) = Run(args);
        Assert.True(code == 0, error);
        Assert.Single(output.TrimEnd().Split('\n'));
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.Equal(expectedType, root.GetProperty("blockType").GetString());
        Assert.Equal(blockType is null, root.GetProperty("blockTypeDefaulted").GetBoolean());
        Assert.True(root.GetProperty("params").GetInt64() > 0);
        Assert.True(root.GetProperty("macs").GetInt64() > 0);
        if (state > 0)
        {
            Assert.Equal(state, root.GetProperty("state").GetInt64());
        }

        Assert.Equal(root.GetProperty("macs").GetInt64(), root.GetProperty("layers").EnumerateArray().Sum(l => l.GetProperty("macs").GetInt64()));
    }

    [Fact]
    public void Summary_FashionMnist_SaysItPads()
    {
        var (code, output, error) = Run("summary", "--arch", "wrn-16-1", "--in-channels", "1", "--image", "28");
        Assert.True(code == 0, error);
        Assert.Contains("1x28x28, zero-padded to 32x32", output);
    }

    [Theory]
    [InlineData("unknown block 'X'; valid: S", "--arch", "wrn-40-2", "--block", "X")]
    [InlineData("wrn-<depth>-<width>", "--arch", "resnet-18")]
    [InlineData("6n+4", "--arch", "wrn-12-2")]
    [InlineData("must be one of basic, bottle", "--arch", "wrn-40-2", "--block-type", "wide")]
    [InlineData("unknown option --bogus", "--arch", "wrn-40-2", "--bogus", "1")]
    [InlineData("option --arch is required", "--block", "G4")]
    [InlineData("do not divide", "--arch", "wrn-40-2", "--block", "G(3)")]
    [InlineData("needs an integer", "--arch", "wrn-40-2", "--classes", "ten")]
    public void Summary_BadInput_OneLineAndExitCode2(string message, params string[] options)
    {
        var (code, output, error) = Run(["summary", .. options]);
        Assert.Equal(2, code);
        Assert.Contains(message, error);
        Assert.StartsWith("error: ", error);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.Equal("", output);
    }

    [Fact]
    public void Help_ListsSummary() => Assert.Contains("summary --arch", Run("help").Output);
}
