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
    public static (int Code, string Output) Run(string program, params string[] arguments)
    {
        Assert.True(File.Exists(program), $"{program} is missing: the native build (make -C native, run by dotnet build) makes it");
        var start = new ProcessStartInfo(program);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return Run(start, TimeSpan.FromMinutes(3));
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
