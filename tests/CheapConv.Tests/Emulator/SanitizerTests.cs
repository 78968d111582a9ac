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
public class SanitizerTests
{
    [Theory]
    [InlineData("asan", "conv")]
    [InlineData("tsan", "conv")]
    [InlineData("asan", "selftest")]
    [InlineData("tsan", "selftest")]
    public void CorrectKernels_RunClean(string build, string testCase)
    {
        var (code, output) = RunDriver(build, testCase);
        Assert.True(code == 0, $"{build} {testCase} exited {code}:\n{output}");
        Assert.DoesNotContain("Sanitizer", output);
        Assert.DoesNotContain("runtime error", output);
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

/// <summary>Runs a native test program of the native build and collects everything it printed.</summary>
public static class NativeProcess
{
    public static (int Code, string Output) Run(string program, params string[] arguments) =>
        Run(program, new Dictionary<string, string>(), arguments);

    /// <summary>Runs <paramref name="program"/> with <paramref name="environment"/> added to this process's.</summary>
    public static (int Code, string Output) Run(string program, IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        Assert.True(File.Exists(program), $"{program} is missing: the native build (make -C native, run by dotnet build) makes it");
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{program} {string.Join(' ', arguments)} did not finish within 3 minutes");
        }

        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
