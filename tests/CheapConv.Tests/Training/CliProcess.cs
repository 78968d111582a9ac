using System.Diagnostics;
using System.Text;

namespace CheapConv.Tests.Training;

/// <summary>
/// The built <c>cheapconv</c> (the CLI's apphost beside the tests) as a real child process: its exit code and output, or —
/// with the test-only pause hook (<c>CHEAPCONV_TEST_PAUSE_AT</c>) — stopped at a named point and then SIGKILLed there.
/// </summary>
internal static class CliProcess
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(3);

    /// <summary>The apphost (or, where there is none, the dll run by dotnet).</summary>
    private static ProcessStartInfo StartInfo(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment)
    {
        var apphost = Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "CheapConv.Cli.exe" : "CheapConv.Cli");
        var info = File.Exists(apphost) ? new ProcessStartInfo(apphost) : new ProcessStartInfo("dotnet") { ArgumentList = { Path.Combine(AppContext.BaseDirectory, "CheapConv.Cli.dll") } };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        info.Environment.Remove("CHEAPCONV_TEST_PAUSE_AT");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        return info;
    }

    /// <summary>Runs to the end: exit code, stdout, stderr.</summary>
    public static (int Code, string Output, string Error) Run(params string[] args)
    {
        using var process = Process.Start(StartInfo(args, null))!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Limit))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"cheapconv {string.Join(' ', args)} ran past {Limit}");
        }

        return (process.ExitCode, output.Result, error.Result);
    }

    /// <summary>
    /// Starts the CLI with the pause hook at <paramref name="point"/>, waits until it reports being paused there, and
    /// SIGKILLs it (Process.Kill is SIGKILL on Unix): no handler, no finally block, no flush runs after that moment.
    /// </summary>
    public static void RunAndKillAt(string point, params string[] args)
    {
        using var process = Process.Start(StartInfo(args, new Dictionary<string, string> { ["CHEAPCONV_TEST_PAUSE_AT"] = point }))!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = new StringBuilder();
        var paused = new TaskCompletionSource();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (error)
            {
                error.AppendLine(e.Data);
            }

            if (e.Data.StartsWith("cheapconv-paused-at: ", StringComparison.Ordinal))
            {
                paused.TrySetResult();
            }
        };
        process.BeginErrorReadLine();
        var exited = process.WaitForExitAsync();
        var first = Task.WhenAny(paused.Task, exited, Task.Delay(Limit)).Result;
        if (first != paused.Task)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            throw new InvalidOperationException(
                $"cheapconv never reached the pause point {point} (exit {(process.HasExited ? process.ExitCode : -1)}): {output.Result}{error}");
        }

        process.Kill();
        process.WaitForExit();
    }
}
