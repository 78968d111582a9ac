using System.Diagnostics;
using Xunit;

namespace CheapConv.Tests.Emulator;

/// <summary>
/// The sanitizer subset: the emulator and the production kernels built with ASan + UBSan (bounds) and with
/// TSan (fibers annotated, barriers as release/acquire) into native/build/{asan,tsan}/cc_emu_sancheck, which
/// runs one case per invocation (see native/tests/sancheck.cpp). Good cases must run clean; each faulty
/// kernel must be caught by the tool meant to catch it. They run as child processes because a sanitizer
/// runtime cannot be loaded into the .NET test host.
/// </summary>
public class SanitizerTests(SanitizerRuns runs) : IClassFixture<SanitizerRuns>
{
    [Theory]
    [InlineData("asan", "conv")]
    [InlineData("tsan", "conv")]
    [InlineData("asan", "selftest")]
    [InlineData("tsan", "selftest")]
    public void CorrectKernels_RunClean(string build, string testCase)
    {
        var (code, output) = runs.Get(build, testCase);
        Assert.True(code == 0, $"{build} {testCase} exited {code}:\n{output}");
        Assert.DoesNotContain("Sanitizer", output);
        Assert.DoesNotContain("runtime error", output);
    }

    /// <summary>
    /// Every production kernel — every entry of the embedded PTX, so a kernel added to native/kernels is in the list at
    /// once — is launched by the good cases (conv, and selftest's C ABI tests on small shapes) under ASan+UBSan and
    /// under TSan; the drivers list what they launched. A kernel without a sanitizer case fails here, by name.
    /// </summary>
    [Theory]
    [InlineData("asan")]
    [InlineData("tsan")]
    public void EveryProductionKernel_RunsUnderTheSanitizer(string build)
    {
        var production = CheapConv.Kernels.PtxModules.All.SelectMany(m => m.Entries).ToHashSet(StringComparer.Ordinal);
        Assert.True(production.Count >= 30, $"only {production.Count} kernels in the embedded PTX");
        var launched = new[] { "conv", "selftest" }
            .SelectMany(c => runs.Get(build, c).Output.Split('\n'))
            .Where(line => line.StartsWith("launched: ", StringComparison.Ordinal))
            .Select(line => line["launched: ".Length..].Trim())
            .ToHashSet(StringComparer.Ordinal);
        var missing = production.Where(k => !launched.Contains(k)).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} production kernels never run under {build}: {string.Join(", ", missing)}; " +
            "give each a small-shape case (native/tests/abi, run by cc_emu_sancheck selftest)");
    }

    [Theory]
    [InlineData("asan", "oob-global", "heap-buffer-overflow")]
    [InlineData("asan", "oob-dynamic-shared", "AddressSanitizer")]
    [InlineData("asan", "oob-static-shared", "out of bounds")]
    [InlineData("tsan", "missing-barrier", "data race")]
    [InlineData("asan", "divergent-barrier", "CC_EMU_DIVERGENT_BARRIER")]
    [InlineData("asan", "shuffle-mismatch", "CC_EMU_WARP_MISMATCH")]
    public void FaultyKernels_AreCaught(string build, string testCase, string report)
    {
        var (code, output) = RunDriver(build, testCase);
        Assert.True(code != 0, $"{build} {testCase} should have failed:\n{output}");
        Assert.Contains(report, output);
    }

    private static (int Code, string Output) RunDriver(string build, string testCase) =>
        NativeProcess.Run(TestPaths.Native("build", build, "cc_emu_sancheck"), testCase);
}

/// <summary>The good sanitizer cases, each run once and shared by the tests that read them.</summary>
public sealed class SanitizerRuns
{
    // A hang guard, not a speed bound. TSan's selftest case takes 2 min 16 s of wall time (3 min 46 s of CPU) alone on the
    // 2-core development VM at 4549de0, and went past the 3 minutes of the other native programs in a CI run beside the
    // other tests.
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(8);

    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string), Lazy<(int Code, string Output)>> _runs = new();

    public (int Code, string Output) Get(string build, string testCase) =>
        _runs.GetOrAdd((build, testCase), key => new(() => NativeProcess.Run(TestPaths.Native("build", key.Item1, "cc_emu_sancheck"), Limit, key.Item2))).Value;
}

/// <summary>Runs a native test program of the native build and collects everything it printed.</summary>
public static class NativeProcess
{
    public static (int Code, string Output) Run(string program, params string[] arguments) => Run(program, TimeSpan.FromMinutes(3), arguments);

    public static (int Code, string Output) Run(string program, TimeSpan timeout, params string[] arguments)
    {
        Assert.True(File.Exists(program), $"{program} is missing: the native build (make -C native, run by dotnet build) makes it");
        var start = new ProcessStartInfo(program);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return Run(start, timeout);
    }

    /// <summary>Runs <paramref name="start"/> (its environment and working folder as set by the caller) to the end, or fails the test after <paramref name="timeout"/>.</summary>
    public static (int Code, string Output) Run(ProcessStartInfo start, TimeSpan timeout)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{start.FileName} {string.Join(' ', start.ArgumentList)} did not finish within {timeout.TotalMinutes:0.#} minutes");
        }

        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
