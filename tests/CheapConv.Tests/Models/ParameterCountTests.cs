using CheapConv.Models;
using Xunit;

namespace CheapConv.Tests.Models;

/// <summary>REFERENCE.md's parameter table (WRN-40-2, 10 classes, 3×32×32), reproduced exactly.</summary>
public class ParameterCountTests
{
    /// <summary>block, block type, params (−1 where the table has none), sd, MACs in millions as printed (−1 where none), its rounding step.</summary>
    public static TheoryData<string, string, long, long, double, double> Wrn40x2 => new()
    {
        { "S", "basic", 2_243_546, 2_248_954, 327.6, 0.1 },
        { "G(2)", "basic", 1_358_970, 1_369_530, 197, 1 },
        { "G(4)", "basic", 814_650, 825_210, 118, 1 },
        { "G(8)", "basic", 542_490, 553_050, 78, 1 },
        { "G(16)", "basic", 406_410, 416_970, 58, 1 },
        { "G(N/16)", "basic", 641_274, 651_834, 133, 1 },
        { "G(N/8)", "basic", 455_802, 466_362, 86, 1 },
        { "G(N/4)", "basic", 363_066, 373_626, 62, 1 },
        { "G(N/2)", "basic", 316_698, 327_258, 50, 1 },
        { "G(N)", "basic", 293_514, 304_074, 44, 1 },
        { "B(2)", "bottle", -1, 437_242, 64, 1 },
        { "B(4)", "bottle", -1, 155_002, 22.5, 0.1 },
        { "B(8)", "bottle", -1, 68_314, -1, 0 },
        { "B(16)", "bottle", -1, 38_578, -1, 0 },
        { "BG(2,N/2)", "bottle", -1, 159_034, -1, 0 },
        { "BG(2,N/4)", "bottle", -1, 171_130, -1, 0 },
        { "BG(2,N/8)", "bottle", -1, 195_322, -1, 0 },
        { "BG(2,N/16)", "bottle", -1, 243_706, -1, 0 },
        { "BG(2,2)", "bottle", -1, 292_090, -1, 0 },
        { "BG(2,4)", "bottle", -1, 219_514, -1, 0 },
        { "BG(2,8)", "bottle", -1, 183_226, -1, 0 },
        { "BG(2,16)", "bottle", -1, 165_082, -1, 0 },
        { "BG(2,N)", "bottle", -1, 152_986, -1, 0 },
        { "BG(4,N)", "bottle", -1, 85_450, -1, 0 },
        { "BG(8,N)", "bottle", -1, 51_682, -1, 0 },
        { "BG(16,N)", "bottle", -1, 34_798, -1, 0 },
    };

    [Theory]
    [MemberData(nameof(Wrn40x2))]
    public void Wrn40x2_Student_MatchesReferenceTable(string block, string blockType, long parameters, long state, double macsMillions, double rounding)
    {
        var unit = UnitSpec.Parse(block);
        var config = WrnConfig.Student(40, 2, unit, blockType == "bottle" ? BlockType.Bottle : BlockType.Basic);
        Assert.Equal(blockType == "bottle" ? BlockType.Bottle : BlockType.Basic, unit.DefaultBlockType);
        var summary = ModelSummary.Of(config);
        if (parameters >= 0)
        {
            Assert.Equal(parameters, summary.Parameters);
        }

        Assert.Equal(state, summary.StateEntries);
        if (macsMillions >= 0)
        {
            // The table prints MACs rounded to its last digit: ours must round to the same number.
            Assert.InRange(summary.Macs / 1e6, macsMillions - rounding / 2, macsMillions + rounding / 2);
        }
    }

    [Theory]
    [InlineData(40, 1, 566_650, 83)]
    [InlineData(16, 2, 693_498, 101)]
    [InlineData(16, 1, 175_994, 27)]
    public void PlainStudent_MatchesReferenceTable(int depth, int width, long state, double macsMillions)
    {
        var summary = ModelSummary.Of(WrnConfig.Teacher(depth, width));
        Assert.Equal(state, summary.StateEntries);
        Assert.InRange(summary.Macs / 1e6, macsMillions - 0.5, macsMillions + 0.5);
    }

    [Fact]
    public void Summary_ParametersAndStateDifferByTheRunningStatisticsOfEveryBatchNorm()
    {
        var summary = ModelSummary.Of(WrnConfig.Teacher(40, 2));
        var batchNormChannels = summary.Layers.Where(l => l.Type.StartsWith("BatchNorm2d", StringComparison.Ordinal)).Sum(l => l.Parameters / 2);
        Assert.Equal(summary.Parameters + 2 * batchNormChannels, summary.StateEntries);
        Assert.Equal(summary.Parameters, summary.Layers.Sum(l => l.Parameters));
        Assert.Equal(summary.Macs, summary.Layers.Sum(l => l.Macs));
    }

    [Fact]
    public void FashionMnist_28x28_IsPaddedTo32AndCountsMacsAt32()
    {
        var padded = ModelSummary.Of(WrnConfig.Teacher(16, 1, inChannels: 1, imageSize: 28));
        var native = ModelSummary.Of(WrnConfig.Teacher(16, 1, inChannels: 1, imageSize: 32));
        Assert.Equal(native.Macs, padded.Macs);
        Assert.Equal(native.Parameters, padded.Parameters);
        Assert.Equal("pad", padded.Layers[0].Name);
        Assert.Equal([1, 1, 32, 32], padded.Layers[0].OutputShape);
    }
}
