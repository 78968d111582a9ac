namespace CheapConv.Profiling;

/// <summary>
/// The compiled kernels the static report reads, per native/kernels module: clang's PTX (always) and nvcc's fatbin
/// (sm_80 and sm_90 SASS; only where the native build had nvcc).
/// </summary>
/// <param name="Ptx">Module name → PTX text.</param>
/// <param name="Fatbins">Module name → fatbin bytes; empty when nvcc did not build any.</param>
internal sealed record KernelImages(IReadOnlyDictionary<string, string> Ptx, IReadOnlyDictionary<string, byte[]> Fatbins)
{
    private const string ResourcePrefix = "CheapConv.Kernels.";

    /// <summary>
    /// The images this build carries: the PTX embedded in this assembly (native/Native.targets) and the fatbins copied
    /// beside it, in fatbin/ (none where the native build ran without nvcc).
    /// </summary>
    public static KernelImages Installed()
    {
        var assembly = typeof(KernelImages).Assembly;
        var ptx = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames()
                     .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal) && n.EndsWith(".ptx", StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            ptx[Path.GetFileNameWithoutExtension(resource[ResourcePrefix.Length..])] = reader.ReadToEnd();
        }

        return new KernelImages(ptx, FromBuildDirectory(AppContext.BaseDirectory).Fatbins);
    }

    /// <summary>The images of a native build directory (native/build): ptx/*.ptx and fatbin/*.fatbin.</summary>
    public static KernelImages FromBuildDirectory(string directory)
    {
        static SortedDictionary<string, T> Read<T>(string folder, string pattern, Func<string, T> read) =>
            new(Directory.Exists(folder)
                ? Directory.GetFiles(folder, pattern).ToDictionary(f => Path.GetFileNameWithoutExtension(f), read)
                : [], StringComparer.Ordinal);

        return new KernelImages(
            Read(Path.Combine(directory, "ptx"), "*.ptx", File.ReadAllText),
            Read(Path.Combine(directory, "fatbin"), "*.fatbin", File.ReadAllBytes));
    }
}
