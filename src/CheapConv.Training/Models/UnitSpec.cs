using System.Globalization;
using System.Text.RegularExpressions;
using CheapConv.Backends;
using CheapConv.IO;
using CheapConv.Nn;

namespace CheapConv.Models;

/// <summary>The structure of a unit: the teacher's plain conv, a grouped conv + pointwise, or a bottleneck.</summary>
public enum UnitKind
{
    /// <summary>S: a plain 3×3 conv.</summary>
    Standard,

    /// <summary>G(·): grouped 3×3 in→in → BN → ReLU → 1×1 in→out.</summary>
    Grouped,

    /// <summary>B(b), BG(b,·): 1×1 in→out/b → BN → ReLU → 3×3 → BN → ReLU → 1×1 out/b→out.</summary>
    Bottleneck,
}

/// <summary>How the 3×3 of a unit is grouped.</summary>
public enum Grouping
{
    /// <summary>One group (S and B(b)).</summary>
    None,

    /// <summary>A fixed number of groups g.</summary>
    Groups,

    /// <summary>x channels per group (groups = channels/x): the paper's N/x.</summary>
    ChannelsPerGroup,

    /// <summary>One channel per group (depthwise): the paper's N.</summary>
    Depthwise,
}

/// <summary>
/// One row of REFERENCE.md's unit table — S, G(g), G(N/x), G(N), B(b), BG(b,g), BG(b,N/x), BG(b,N) — and the
/// factory of its module. <see cref="Parse"/> accepts the paper's and the code's spellings.
/// </summary>
/// <param name="Kind">Standard, grouped or bottleneck.</param>
/// <param name="Grouping">How the 3×3 is grouped.</param>
/// <param name="GroupValue">g for <see cref="Grouping.Groups"/>, x for <see cref="Grouping.ChannelsPerGroup"/>, else 0.</param>
/// <param name="Bottleneck">b (mid = out/b) for bottleneck units, else 0.</param>
public sealed record UnitSpec(UnitKind Kind, Grouping Grouping, int GroupValue, int Bottleneck)
{
    /// <summary>The valid spellings, for error messages and help.</summary>
    internal const string ValidForms =
        "S (or Conv); G(g), Gg (or DConvAg); G(N/x), GNx (or DConvGx); G(N), GN, DW (or DConv); B(b), Bb (or ConvBb); " +
        "BG(b,g), BGb-g (or AgBb); BG(b,N/x), BGNb-x (or GxBb); BG(b,N), BGDWb (or DConvBb) — case-insensitive, e.g. G4, G(N/8), B2, BG(2,4)";

    private static readonly (Regex Pattern, Func<int[], UnitSpec> Make)[] Spellings =
    [
        (Pattern(@"S|CONV"), _ => new(UnitKind.Standard, Grouping.None, 0, 0)),
        (Pattern(@"G(\d+)|G\((\d+)\)|DCONVA(\d+)"), v => new(UnitKind.Grouped, Grouping.Groups, v[0], 0)),
        (Pattern(@"G\(N/(\d+)\)|GN(\d+)|DCONVG(\d+)"), v => new(UnitKind.Grouped, Grouping.ChannelsPerGroup, v[0], 0)),
        (Pattern(@"G\(N\)|GN|DW|DCONV"), _ => new(UnitKind.Grouped, Grouping.Depthwise, 0, 0)),
        (Pattern(@"B(\d+)|B\((\d+)\)|CONVB(\d+)"), v => new(UnitKind.Bottleneck, Grouping.None, 0, v[0])),
        (Pattern(@"BG\((\d+),(\d+)\)|BG(\d+)-(\d+)"), v => new(UnitKind.Bottleneck, Grouping.Groups, v[1], v[0])),
        (Pattern(@"A(\d+)B(\d+)"), v => new(UnitKind.Bottleneck, Grouping.Groups, v[0], v[1])),
        (Pattern(@"BG\((\d+),N/(\d+)\)|BGN(\d+)-(\d+)"), v => new(UnitKind.Bottleneck, Grouping.ChannelsPerGroup, v[1], v[0])),
        (Pattern(@"G(\d+)B(\d+)"), v => new(UnitKind.Bottleneck, Grouping.ChannelsPerGroup, v[0], v[1])),
        (Pattern(@"BG\((\d+),N\)|BGDW(\d+)|DCONVB(\d+)"), v => new(UnitKind.Bottleneck, Grouping.Depthwise, 0, v[0])),
    ];

    /// <summary>The teacher's unit.</summary>
    public static UnitSpec Standard { get; } = new(UnitKind.Standard, Grouping.None, 0, 0);

    /// <summary>The block type the paper pairs with this unit: bottle for B/BG units, basic otherwise.</summary>
    public BlockType DefaultBlockType => Kind == UnitKind.Bottleneck ? BlockType.Bottle : BlockType.Basic;

    /// <summary>Parses a unit name; throws <see cref="FormatException"/> listing <see cref="ValidForms"/> when it is none.</summary>
    public static UnitSpec Parse(string name)
    {
        var compact = string.Concat((name ?? "").Where(c => !char.IsWhiteSpace(c))).ToUpperInvariant();
        foreach (var (pattern, make) in Spellings)
        {
            var match = pattern.Match(compact);
            if (!match.Success)
            {
                continue;
            }

            var values = match.Groups.Cast<Group>().Skip(1).Where(g => g.Success)
                .Select(g => int.TryParse(g.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1).ToArray();
            if (values.Any(v => v <= 0))
            {
                throw new FormatException($"block '{UntrustedText.OneLine(name ?? "")}': its numbers must be positive integers");
            }

            return make(values);
        }

        throw new FormatException($"unknown block '{UntrustedText.OneLine(name ?? "")}'; valid: {ValidForms}");
    }

    /// <summary>The paper's name: S, G(4), G(N/8), G(N), B(2), BG(2,4), BG(2,N/8), BG(2,N).</summary>
    public override string ToString()
    {
        var grouping = Grouping switch
        {
            Grouping.Groups => GroupValue.ToString(CultureInfo.InvariantCulture),
            Grouping.ChannelsPerGroup => $"N/{GroupValue}",
            Grouping.Depthwise => "N",
            _ => "",
        };
        return Kind switch
        {
            UnitKind.Standard => "S",
            UnitKind.Grouped => $"G({grouping})",
            _ when Grouping == Grouping.None => $"B({Bottleneck})",
            _ => $"BG({Bottleneck},{grouping})",
        };
    }

    /// <summary>The name in the authors' code: Conv, DConvA4, DConvG8, DConv, ConvB2, A4B2, G8B2, DConvB2.</summary>
    public string CodeName => (Kind, Grouping) switch
    {
        (UnitKind.Standard, _) => "Conv",
        (UnitKind.Grouped, Grouping.Groups) => $"DConvA{GroupValue}",
        (UnitKind.Grouped, Grouping.ChannelsPerGroup) => $"DConvG{GroupValue}",
        (UnitKind.Grouped, _) => "DConv",
        (UnitKind.Bottleneck, Grouping.None) => $"ConvB{Bottleneck}",
        (UnitKind.Bottleneck, Grouping.Groups) => $"A{GroupValue}B{Bottleneck}",
        (UnitKind.Bottleneck, Grouping.ChannelsPerGroup) => $"G{GroupValue}B{Bottleneck}",
        _ => $"DConvB{Bottleneck}",
    };

    /// <summary>
    /// The unit in→out with <paramref name="stride"/> (on its 3×3). S is the conv itself; the others are modules
    /// with the child names of models.md. Throws <see cref="ArgumentException"/> when the channels do not divide.
    /// </summary>
    public Module Create(IBackend backend, int inChannels, int outChannels, int stride, Random random)
    {
        switch (Kind)
        {
            case UnitKind.Standard:
                return new Conv2d(backend, inChannels, outChannels, 3, random, stride, padding: 1);
            case UnitKind.Grouped:
                return new GroupedUnit(backend, inChannels, outChannels, stride, GroupsFor(inChannels), random);
            default:
                if (outChannels % Bottleneck != 0)
                {
                    throw new ArgumentException($"{this}: the bottleneck factor {Bottleneck} must divide the output channels ({outChannels})");
                }

                var mid = outChannels / Bottleneck;
                return new BottleneckUnit(backend, inChannels, mid, outChannels, stride, GroupsFor(mid), random);
        }
    }

    /// <summary>The groups of the 3×3 over <paramref name="channels"/> channels.</summary>
    public int GroupsFor(int channels)
    {
        var groups = Grouping switch
        {
            Grouping.Groups => GroupValue,
            Grouping.ChannelsPerGroup when channels % GroupValue == 0 => channels / GroupValue,
            Grouping.ChannelsPerGroup => throw new ArgumentException($"{this}: {GroupValue} channels per group do not divide {channels} channels"),
            Grouping.Depthwise => channels,
            _ => 1,
        };
        return channels % groups == 0
            ? groups
            : throw new ArgumentException($"{this}: {groups} groups do not divide {channels} channels");
    }

    private static Regex Pattern(string alternatives) =>
        new($"^(?:{alternatives})$", RegexOptions.CultureInvariant | RegexOptions.Compiled);
}
