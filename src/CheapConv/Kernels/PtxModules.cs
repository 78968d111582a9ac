using System.Reflection;
using System.Text.RegularExpressions;

namespace CheapConv.Kernels;

/// <summary>One PTX module compiled from a native/kernels/*.cu file and embedded in this assembly.</summary>
/// <param name="Name">The source file's name without extension, e.g. "conv2d".</param>
/// <param name="Target">The PTX target architecture, e.g. "sm_80".</param>
/// <param name="Version">The PTX ISA version, e.g. "7.0".</param>
/// <param name="Entries">The kernel entry points it defines.</param>
/// <param name="Text">The PTX source, as the CUDA driver's JIT takes it.</param>
internal sealed record PtxModule(string Name, string Target, string Version, IReadOnlyList<string> Entries, string Text);

/// <summary>The PTX modules embedded by the native build (see native/Native.targets).</summary>
internal static partial class PtxModules
{
    private const string ResourcePrefix = "CheapConv.Kernels.";

    private static readonly Lazy<IReadOnlyList<PtxModule>> Modules = new(Load);

    public static IReadOnlyList<PtxModule> All => Modules.Value;

    private static IReadOnlyList<PtxModule> Load()
    {
        var assembly = typeof(PtxModules).Assembly;
        var modules = new List<PtxModule>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix) && n.EndsWith(".ptx")).Order())
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            modules.Add(Parse(resource[ResourcePrefix.Length..^".ptx".Length], reader.ReadToEnd()));
        }

        return modules;
    }

    /// <summary>Reads the header and the entry names out of PTX text.</summary>
    public static PtxModule Parse(string name, string text)
    {
        var target = TargetPattern().Match(text) is { Success: true } t ? t.Groups[1].Value : "unknown";
        var version = VersionPattern().Match(text) is { Success: true } v ? v.Groups[1].Value : "unknown";
        var entries = EntryPattern().Matches(text).Select(m => m.Groups[1].Value).ToList();
        return new PtxModule(name, target, version, entries, text);
    }

    [GeneratedRegex(@"^\s*\.target\s+(\w+)", RegexOptions.Multiline)]
    private static partial Regex TargetPattern();

    [GeneratedRegex(@"^\s*\.version\s+([\d.]+)", RegexOptions.Multiline)]
    private static partial Regex VersionPattern();

    [GeneratedRegex(@"\.entry\s+(\w+)\s*\(", RegexOptions.Multiline)]
    private static partial Regex EntryPattern();
}
