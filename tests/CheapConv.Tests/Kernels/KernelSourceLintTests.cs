using System.Text.RegularExpressions;
using Xunit;

namespace CheapConv.Tests.Kernels;

/// <summary>
/// What kernels may spell only through the shim (native/include/cheapconv/cuda_shim.h), where the emulator has a model
/// of it: inline PTX (the wrappers of mma.sync, ldmatrix, cp.async, ...) — an <c>asm</c> statement in a kernel would run
/// on the GPU but not in the emulator, so no test would check it — and static shared memory (CC_STATIC_SHARED, which the
/// emulator poisons per block and counts against 48 KiB; a raw <c>__shared__</c> would escape both).
/// </summary>
public partial class KernelSourceLintTests
{
    [Fact]
    public void KernelSources_HoldNoInlineAssembly()
    {
        var found = KernelSourceLines(AsmToken());
        Assert.True(found.Count == 0,
            "inline assembly outside the shim (add a wrapper with an emulator model to cuda_shim.h instead): " + string.Join(", ", found));
    }

    [Fact]
    public void KernelSources_DeclareSharedMemoryOnlyThroughTheShim()
    {
        var found = KernelSourceLines(SharedToken());
        Assert.True(found.Count == 0,
            "__shared__ outside the shim (declare static shared arrays with CC_STATIC_SHARED, dynamic ones with CC_DYNAMIC_SHARED): " +
            string.Join(", ", found));
    }

    [Fact]
    public void CodeLines_FindSharedInCodeButNotInComments()
    {
        const string source = """
            // __shared__ float a[4];
            CC_STATIC_SHARED(float, b, [4]);
            __shared__ float c[4];
            """;
        Assert.Equal([3], CodeLines(source, SharedToken()));
    }

    // "file:line" of every code line of the kernel sources and the headers they include (not the shim) matching token.
    private static List<string> KernelSourceLines(Regex token)
    {
        var kernels = Directory.EnumerateFiles(TestPaths.Native("kernels"), "*", SearchOption.AllDirectories);
        var headers = Directory.EnumerateFiles(TestPaths.Native("include"), "*.h", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) != "cuda_shim.h");
        var files = kernels.Concat(headers).Order(StringComparer.Ordinal).ToList();
        Assert.Contains(files, f => f.EndsWith(".cu", StringComparison.Ordinal));
        return [.. files.SelectMany(f => CodeLines(File.ReadAllText(f), token)
            .Select(line => $"{Path.GetRelativePath(TestPaths.Native(), f)}:{line}"))];
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
    internal static IReadOnlyList<int> InlineAssemblyLines(string source) => CodeLines(source, AsmToken());

    // The 1-based lines of source where token appears in code (comments, string and character literals blanked first).
    private static IReadOnlyList<int> CodeLines(string source, Regex token)
    {
        var code = CommentsAndLiterals().Replace(source, m => new string(m.Value.Select(c => c == '\n' ? '\n' : ' ').ToArray()));
        var lines = code.Split('\n');
        return [.. Enumerable.Range(0, lines.Length).Where(i => token.IsMatch(lines[i])).Select(i => i + 1)];
    }

    [GeneratedRegex(@"/\*.*?\*/|//[^\n]*|""(?:\\.|[^""\\\n])*""|'(?:\\.|[^'\\\n])*'", RegexOptions.Singleline)]
    private static partial Regex CommentsAndLiterals();

    [GeneratedRegex(@"\b(asm|__asm|__asm__)\b")]
    private static partial Regex AsmToken();

    [GeneratedRegex(@"\b__shared__\b")]
    private static partial Regex SharedToken();
}
