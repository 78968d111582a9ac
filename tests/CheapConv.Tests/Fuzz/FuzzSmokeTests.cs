using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit;

namespace CheapConv.Tests.Fuzz;

/// <summary>
/// The fuzz smoke: each reader of untrusted files under afl++ (SharpFuzz) for a few seconds through tests/fuzz/run.sh, which
/// must find no crash and no hang. Skips, with the reason, where afl++ is not installed — unless CHEAPCONV_REQUIRE_FUZZ=1
/// (.ci/run sets it), where that is a failure. Under 2 minutes in all: 9 targets × 4 s of fuzzing, plus instrumenting
/// a copy and starting afl (about 7 s each on a loaded 2-core machine).
/// </summary>
public sealed partial class FuzzSmokeTests
{
    private const int SecondsPerTarget = 4;

    public static TheoryData<string> Targets() =>
        [.. Directory.GetDirectories(Path.Combine(TestPaths.RepositoryRoot, "tests", "fuzz", "corpus")).Select(d => Path.GetFileName(d)).Order()];

    [SkippableTheory]
    [MemberData(nameof(Targets))]
    public void Reader_UnderAflForAFewSeconds_NeverCrashes(string target)
    {
        var afl = Environment.GetEnvironmentVariable("PATH")!.Split(':').Any(d => File.Exists(Path.Combine(d, "afl-fuzz")));
        if (!afl)
        {
            Assert.False(Environment.GetEnvironmentVariable("CHEAPCONV_REQUIRE_FUZZ") == "1",
                "CHEAPCONV_REQUIRE_FUZZ=1 but afl-fuzz is not installed (apt-get install afl++)");
            Skip.If(true, "afl-fuzz is not installed (apt-get install afl++); the fuzz smoke needs it");
        }

        var work = Path.Combine(Path.GetTempPath(), $"cheapconv-fuzz-smoke-{target}-{Guid.NewGuid():N}");
        try
        {
            var info = new ProcessStartInfo(Path.Combine(TestPaths.RepositoryRoot, "tests", "fuzz", "run.sh"))
            {
                ArgumentList = { target, SecondsPerTarget.ToString(System.Globalization.CultureInfo.InvariantCulture), work },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(info)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), $"the fuzz script for {target} ran past 2 minutes");
            Assert.True(process.ExitCode == 0, $"tests/fuzz/run.sh {target}: exit {process.ExitCode}\n{output.Result}\n{error.Result}");
            var summary = Summary().Match(output.Result);
            Assert.True(summary.Success, output.Result + error.Result);
            Assert.True(long.Parse(summary.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 100, $"afl ran too few inputs: {output.Result}");
        }
        finally
        {
            if (Directory.Exists(work))
            {
                Directory.Delete(work, recursive: true);
            }
        }
    }

    [GeneratedRegex(@": (\d+) executions in \d+ s, 0 crashes, 0 hangs")]
    private static partial Regex Summary();
}
