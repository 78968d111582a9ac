using CheapConv.Models;
using Xunit;

namespace CheapConv.Tests.Models;

/// <summary>Block names as the paper and the authors' code write them.</summary>
public class UnitSpecTests
{
    [Theory]
    [InlineData("S", "S")]
    [InlineData("s", "S")]
    [InlineData("Conv", "S")]
    [InlineData("G4", "G(4)")]
    [InlineData("G(4)", "G(4)")]
    [InlineData("g(4)", "G(4)")]
    [InlineData("DConvA4", "G(4)")]
    [InlineData("G(N/8)", "G(N/8)")]
    [InlineData("GN8", "G(N/8)")]
    [InlineData("gn8", "G(N/8)")]
    [InlineData("DConvG8", "G(N/8)")]
    [InlineData("G(N)", "G(N)")]
    [InlineData("GN", "G(N)")]
    [InlineData("DW", "G(N)")]
    [InlineData("dw", "G(N)")]
    [InlineData("DConv", "G(N)")]
    [InlineData("B2", "B(2)")]
    [InlineData("B(2)", "B(2)")]
    [InlineData("ConvB2", "B(2)")]
    [InlineData("BG(2,4)", "BG(2,4)")]
    [InlineData("BG( 2, 4 )", "BG(2,4)")]
    [InlineData("BG2-4", "BG(2,4)")]
    [InlineData("A4B2", "BG(2,4)")]
    [InlineData("BG(2,N/8)", "BG(2,N/8)")]
    [InlineData("BGN2-8", "BG(2,N/8)")]
    [InlineData("bgn2-8", "BG(2,N/8)")]
    [InlineData("G8B2", "BG(2,N/8)")]
    [InlineData("BG(2,N)", "BG(2,N)")]
    [InlineData("BGDW2", "BG(2,N)")]
    [InlineData("DConvB2", "BG(2,N)")]
    public void Parse_EverySpelling_GivesThePaperName(string spelling, string paperName)
    {
        var unit = UnitSpec.Parse(spelling);
        Assert.Equal(paperName, unit.ToString());
        Assert.Equal(unit, UnitSpec.Parse(unit.ToString()));
        Assert.Equal(unit, UnitSpec.Parse(unit.CodeName));
    }

    [Theory]
    [InlineData("G4", UnitKind.Grouped, Grouping.Groups, 4, 0, "DConvA4")]
    [InlineData("GN8", UnitKind.Grouped, Grouping.ChannelsPerGroup, 8, 0, "DConvG8")]
    [InlineData("DW", UnitKind.Grouped, Grouping.Depthwise, 0, 0, "DConv")]
    [InlineData("B4", UnitKind.Bottleneck, Grouping.None, 0, 4, "ConvB4")]
    [InlineData("BG2-16", UnitKind.Bottleneck, Grouping.Groups, 16, 2, "A16B2")]
    [InlineData("BGN4-2", UnitKind.Bottleneck, Grouping.ChannelsPerGroup, 2, 4, "G2B4")]
    [InlineData("BGDW8", UnitKind.Bottleneck, Grouping.Depthwise, 0, 8, "DConvB8")]
    public void Parse_Fields_AreTheTableRow(string spelling, UnitKind kind, Grouping grouping, int groupValue, int bottleneck, string codeName)
    {
        var unit = UnitSpec.Parse(spelling);
        Assert.Equal(new UnitSpec(kind, grouping, groupValue, bottleneck), unit);
        Assert.Equal(codeName, unit.CodeName);
    }

    [Theory]
    [InlineData("X")]
    [InlineData("")]
    [InlineData("G")]
    [InlineData("G(4")]
    [InlineData("G(N/)")]
    [InlineData("BG(2)")]
    [InlineData("BG2")]
    [InlineData("wrn-40-2")]
    public void Parse_UnknownName_ListsTheValidForms(string spelling)
    {
        var error = Assert.Throws<FormatException>(() => UnitSpec.Parse(spelling));
        Assert.Contains("unknown block", error.Message);
        Assert.Contains("G(N/x)", error.Message);
        Assert.Contains("BG(b,g)", error.Message);
        Assert.Contains("BGDWb", error.Message);
    }

    [Theory]
    [InlineData("G0")]
    [InlineData("B(0)")]
    [InlineData("BG(2,0)")]
    public void Parse_ZeroInAName_IsRejected(string spelling)
    {
        var error = Assert.Throws<FormatException>(() => UnitSpec.Parse(spelling));
        Assert.Contains("positive", error.Message);
    }

    [Theory]
    [InlineData(16, 8, 2)]
    [InlineData(64, 16, 4)]
    public void GroupsFor_ChannelsPerGroup_IsChannelsOverX(int channels, int x, int groups) =>
        Assert.Equal(groups, new UnitSpec(UnitKind.Grouped, Grouping.ChannelsPerGroup, x, 0).GroupsFor(channels));

    [Fact]
    public void GroupsFor_GroupsNotDividingTheChannels_SaysSo()
    {
        var error = Assert.Throws<ArgumentException>(() => UnitSpec.Parse("G(3)").GroupsFor(16));
        Assert.Contains("3 groups do not divide 16 channels", error.Message);
    }

    [Theory]
    [InlineData("wrn-40-2", 40, 2)]
    [InlineData("WRN-16-1", 16, 1)]
    public void ParseArch_ReadsDepthAndWidth(string arch, int depth, int width) =>
        Assert.Equal((depth, width), WrnConfig.ParseArch(arch));

    [Theory]
    [InlineData("resnet-18")]
    [InlineData("wrn-40")]
    public void ParseArch_Unknown_SaysTheExpectedForm(string arch) =>
        Assert.Contains("wrn-<depth>-<width>", Assert.Throws<FormatException>(() => WrnConfig.ParseArch(arch)).Message);

    [Theory]
    [InlineData("wrn-99999999999-1")]
    [InlineData("wrn-16-2147483648")]
    public void ParseArch_DigitsBeyondAnInt_IsARefusalNotAnOverflow(string arch) =>
        Assert.Contains("too large", Assert.Throws<FormatException>(() => WrnConfig.ParseArch(arch)).Message);

    [Fact]
    public void Validate_WidthWhoseChannelsOverflow_SaysTheLimit()
    {
        var error = Assert.Throws<ArgumentException>(() => WrnConfig.Teacher(16, WrnConfig.MaxWidth + 1).Validate());
        Assert.Contains($"between 1 and {WrnConfig.MaxWidth}", error.Message);
    }

    [Theory]
    [InlineData(12)]
    [InlineData(4)]
    [InlineData(41)]
    public void Validate_DepthNot6nPlus4_SaysWhatIsValid(int depth) =>
        Assert.Contains("6n+4", Assert.Throws<ArgumentException>(() => WrnConfig.Teacher(depth, 1).Validate()).Message);

    [Theory]
    [InlineData("wrn-16-2\nfake line", "S", "basic", "unknown architecture 'wrn-16-2\\nfake line'")]
    [InlineData("wrn-16-2", "G\u00074", "basic", "unknown block 'G\\x074'")]
    [InlineData("wrn-16-2", "S", "basic\n", "unknown block type 'basic\\n'")]
    public void ToWrnConfig_OfAStoredConfigWithControlCharacters_RefusesInOneLine(string arch, string block, string blockType, string message)
    {
        // A config.json or checkpoint holds any string: the refusal quotes it escaped, so it stays one line (found by fuzzing).
        var model = new CheapConv.Training.ModelConfig(arch, block, blockType, 1, 10, 28);
        var e = Assert.Throws<FormatException>(() => model.ToWrnConfig());
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.DoesNotContain(e.Message, char.IsControl);
    }
}
