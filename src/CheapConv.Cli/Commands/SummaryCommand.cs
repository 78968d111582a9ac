using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using CheapConv.Models;
using CheapConv.Nn;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>summary</c>: trainable parameters, state-dict values (parameters + BN running statistics, the paper's
/// "sd" column), MACs of conv and linear layers for one image, and a per-layer table of a WRN teacher or
/// Moonshine student; <c>--json</c> prints one JSON object instead.
/// </summary>
internal static class SummaryCommand
{
    public const string Usage =
        "summary --arch wrn-40-2 [--block G4] [--block-type basic|bottle] [--in-channels 3] [--classes 10] [--image 32] [--json]";

    public static int Run(Options options, TextWriter output)
    {
        var arch = options.String("arch") ?? throw new UsageException("option --arch is required, e.g. --arch wrn-40-2");
        var blockName = options.String("block", "S");
        var blockTypeName = options.String("block-type");
        var inChannels = options.Int("in-channels", 3);
        var classes = options.Int("classes", 10);
        var image = options.Int("image", 32);
        var json = options.Flag("json");
        options.EnsureAllUsed();

        WrnConfig config;
        bool blockTypeDefaulted = blockTypeName is null;
        try
        {
            var (depth, width) = WrnConfig.ParseArch(arch);
            var unit = UnitSpec.Parse(blockName);
            var blockType = blockTypeName?.ToLowerInvariant() switch
            {
                null => unit.DefaultBlockType,
                "basic" => BlockType.Basic,
                "bottle" => BlockType.Bottle,
                _ => throw new UsageException($"option --block-type must be one of basic, bottle, got '{blockTypeName}'"),
            };
            config = new WrnConfig(depth, width, unit, blockType, inChannels, classes, image);
            config.Validate();
        }
        catch (FormatException e)
        {
            throw new UsageException(e.Message);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }

        ModelSummary summary;
        try
        {
            summary = ModelSummary.Of(config);
        }
        catch (Exception e) when (e is ArgumentException or Problems.InvalidProblemException)
        {
            // Channels a unit's groups do not divide, images too small for the strides, ...
            throw new UsageException($"{config.Name}: {e.Message}");
        }

        if (json)
        {
            output.WriteLine(ToJson(summary, blockTypeDefaulted).ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
        }
        else
        {
            WriteText(summary, blockTypeDefaulted, output);
        }

        return 0;
    }

    private static JsonObject ToJson(ModelSummary summary, bool blockTypeDefaulted)
    {
        var c = summary.Config;
        var layers = new JsonArray();
        foreach (var layer in summary.Layers)
        {
            layers.Add(new JsonObject
            {
                ["name"] = layer.Name,
                ["type"] = layer.Type,
                ["input"] = new JsonArray([.. layer.InputShape.Select(d => (JsonNode)d)]),
                ["output"] = new JsonArray([.. layer.OutputShape.Select(d => (JsonNode)d)]),
                ["params"] = layer.Parameters,
                ["state"] = layer.StateEntries,
                ["macs"] = layer.Macs,
            });
        }

        return new JsonObject
        {
            ["arch"] = $"wrn-{c.Depth}-{c.Width}",
            ["block"] = c.Unit.ToString(),
            ["codeName"] = c.Unit.CodeName,
            ["blockType"] = c.BlockType.ToString().ToLowerInvariant(),
            ["blockTypeDefaulted"] = blockTypeDefaulted,
            ["inChannels"] = c.InChannels,
            ["classes"] = c.Classes,
            ["image"] = c.ImageSize,
            ["params"] = summary.Parameters,
            ["state"] = summary.StateEntries,
            ["macs"] = summary.Macs,
            ["layers"] = layers,
        };
    }

    private static void WriteText(ModelSummary summary, bool blockTypeDefaulted, TextWriter output)
    {
        var c = summary.Config;
        var size = c.NetworkImageSize;
        output.WriteLine($"model       WRN-{c.Depth}-{c.Width}, unit {c.Unit} (code name {c.Unit.CodeName}), {c.BlockType.ToString().ToLowerInvariant()} block" +
            (blockTypeDefaulted ? $" (the default for {c.Unit}: bottle for B/BG units, basic otherwise)" : ""));
        output.WriteLine($"input       {c.InChannels}x{c.ImageSize}x{c.ImageSize}" + (size != c.ImageSize ? $", zero-padded to {size}x{size}" : "") + $", {c.Classes} classes");
        output.WriteLine(Invariant($"params      {summary.Parameters:N0} trainable"));
        output.WriteLine(Invariant($"state       {summary.StateEntries:N0} state-dict values (parameters + BN running mean/var)"));
        output.WriteLine(Invariant($"MACs        {summary.Macs:N0} ({summary.Macs / 1e6:0.0}M) per {size}x{size} image, conv + linear layers"));
        output.WriteLine();

        string[] header = ["layer", "type", "output", "params", "MACs"];
        var rows = summary.Layers.Select(l => new[]
        {
            l.Name, l.Type, string.Join("x", l.OutputShape.Skip(1)), Invariant($"{l.Parameters:N0}"), Invariant($"{l.Macs:N0}"),
        }).ToList();
        var widths = Enumerable.Range(0, header.Length).Select(i => rows.Select(r => r[i].Length).Append(header[i].Length).Max()).ToArray();
        output.WriteLine(FormatRow(header, widths));
        output.WriteLine(string.Join("  ", widths.Select(w => new string('-', w))));
        foreach (var row in rows)
        {
            output.WriteLine(FormatRow(row, widths));
        }
    }

    // Text columns left-aligned, number columns (params, MACs) right-aligned.
    private static string FormatRow(string[] cells, int[] widths) =>
        string.Join("  ", cells.Select((cell, i) => i >= 3 ? cell.PadLeft(widths[i]) : cell.PadRight(widths[i]))).TrimEnd();

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
