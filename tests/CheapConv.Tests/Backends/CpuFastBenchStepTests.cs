using System.Globalization;
using CheapConv.Cli;
using CheapConv.Cli.Commands;
using Xunit;

namespace CheapConv.Tests.Backends;

/// <summary>
/// <c>bench step</c> (the CPU backend's step benchmark), called through <see cref="BenchStepCommand.Run"/>: a tiny
/// train and distill step on the CPU backend print one line per step, a median in images/s and the peak resident memory; impossible options are
/// one-line usage errors. Times are not asserted on, only that they are reported with their unit.
/// </summary>
public class CpuFastBenchStepTests
{
    private static string Run(params string[] args)
    {
        using var output = new StringWriter(CultureInfo.InvariantCulture);
        Assert.Equal(0, BenchStepCommand.Run(new Options(args), output));
        return output.ToString();
    }

    [Theory]
    [InlineData("train")]
    [InlineData("distill")]
    public void BenchStep_TinyModelOnCpu_ReportsEveryStepAndImagesPerSecond(string mode)
    {
        var text = Run("--arch", "wrn-10-1", "--block", "G(2)", "--teacher-arch", "wrn-10-1", "--mode", mode, "--batch", "4",
            "--image", "8", "--steps", "2");
        Assert.StartsWith(mode + " step:", text, StringComparison.Ordinal);
        Assert.Contains("warm-up:", text, StringComparison.Ordinal);
        Assert.Contains("step 2:", text, StringComparison.Ordinal);
        Assert.Matches(@"median [0-9.]+ ms per step .* = [0-9.]+ images/s", text);
        var peak = System.Text.RegularExpressions.Regex.Match(text, @"peak resident memory ([0-9]+) MiB");
        Assert.True(peak.Success, text);
        Assert.InRange(int.Parse(peak.Groups[1].Value, CultureInfo.InvariantCulture), 1, 1 << 20); // a process holds some memory, not a petabyte
    }

    [Fact]
    public void BenchStep_WithOps_ListsEveryKindOfOpOfTheTimedStepsOnce()
    {
        var text = Run("--arch", "wrn-10-1", "--block", "G(2)", "--teacher-arch", "wrn-10-1", "--mode", "distill", "--batch", "4",
            "--image", "8", "--steps", "2", "--ops");
        var rows = text.Split('\n').Where(line => line.StartsWith("| ", StringComparison.Ordinal) && !line.StartsWith("| op ", StringComparison.Ordinal)).ToList();
        var kinds = rows.Select(row => row.Split('|')[1].Trim()).ToList();
        Assert.Equal(kinds.Count, kinds.Distinct().Count());
        // The student's grouped 3x3 passes, the teacher's fused dense ones and the losses, per step.
        Assert.Contains("Conv2dBackward 3x3 g=2 s1", kinds); // both gradients of a convolution: one op (cc_conv_backward)
        Assert.Contains("Conv2dForwardFused 3x3 dense s1", kinds);
        Assert.Contains("AtForward", kinds);
        var at = rows.Single(row => row.StartsWith("| AtForward |", StringComparison.Ordinal)).Split('|');
        Assert.Equal("3", at[2].Trim()); // one attention map per group, per step: the warm-up is not counted
        Assert.Matches(@"[0-9.]+ % of their time is inside the backend's ops", text);
    }

    [Theory]
    [InlineData("--arch", "resnet-50")]
    [InlineData("--arch", "wrn-40-2", "--batch", "1")]
    [InlineData("--arch", "wrn-40-2", "--steps", "0")]
    [InlineData("--arch", "wrn-40-2", "--mode", "fast")]
    [InlineData("--arch", "wrn-40-2", "--block", "G(3)")]
    [InlineData("--arch", "wrn-40-2", "--unknown", "1")]
    [InlineData("--block", "G4")]
    public void BenchStep_ImpossibleOptions_AreUsageErrors(params string[] args)
    {
        using var output = new StringWriter(CultureInfo.InvariantCulture);
        var error = Assert.Throws<UsageException>(() => BenchStepCommand.Run(new Options(args), output));
        Assert.DoesNotContain("\n", error.Message, StringComparison.Ordinal);
    }
}
