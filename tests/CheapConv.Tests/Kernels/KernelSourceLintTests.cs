using System.Text.RegularExpressions;
using Xunit;

namespace CheapConv.Tests.Kernels;

/// <summary>
/// Inline PTX lives only in the shim's wrappers (native/include/cheapconv/cuda_shim.h: mma.sync, ldmatrix, cp.async,
/// ...), where the emulator has a model of each instruction; an <c>asm</c> statement in a kernel would run on the GPU
/// but not in the emulator, so no test would check it.
/// </summary>
public partial class KernelSourceLintTests
{
    [Fact]
    public void KernelSources_HoldNoInlineAssembly()
    {
        var kernels = Directory.EnumerateFiles(TestPaths.Native("kernels"), "*", SearchOption.AllDirectories);
        // The headers the kernels include, except the shim itself.
        var headers = Directory.EnumerateFiles(TestPaths.Native("include"), "*.h", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) != "cuda_shim.h");
        var files = kernels.Concat(headers).Order(StringComparer.Ordinal).ToList();
        Assert.Contains(files, f => f.EndsWith(".cu", StringComparison.Ordinal));
        var found = files.SelectMany(f => InlineAssemblyLines(File.ReadAllText(f))
            .Select(line => $"{Path.GetRelativePath(TestPaths.Native(), f)}:{line}")).ToList();
        Assert.True(found.Count == 0,
            "inline assembly outside the shim (add a wrapper with an emulator model to cuda_shim.h instead): " + string.Join(", ", found));
    }

    [Fact]
    public void InlineAssemblyLines_FindsAsmInCodeButNotInCommentsOrStrings()
    {
        const string source = """
            /* asm("comment"); */
            // __asm__ in a line comment
            const char* s = "asm volatile";
            __device__ void f() { asm volatile("membar.gl;"); }
            int plasma = 1; // a word that contains asm
            __asm__("nop");
            """;
        Assert.Equal([4, 6], InlineAssemblyLines(source));
    }

    /// <summary>The 1-based lines of <paramref name="source"/> where an <c>asm</c>, <c>__asm</c> or <c>__asm__</c> token
    /// appears in code (comments, string and character literals are blanked first).</summary>
    internal static IReadOnlyList<int> InlineAssemblyLines(string source)
    {
        var code = CommentsAndLiterals().Replace(source, m => new string(m.Value.Select(c => c == '\n' ? '\n' : ' ').ToArray()));
        var lines = code.Split('\n');
        return [.. Enumerable.Range(0, lines.Length).Where(i => AsmToken().IsMatch(lines[i])).Select(i => i + 1)];
    }

    [GeneratedRegex(@"/\*.*?\*/|//[^\n]*|""(?:\\.|[^""\\\n])*""|'(?:\\.|[^'\\\n])*'", RegexOptions.Singleline)]
    private static partial Regex CommentsAndLiterals();

    [GeneratedRegex(@"\b(asm|__asm|__asm__)\b")]
    private static partial Regex AsmToken();
}
