using System.Diagnostics;
using System.Globalization;
using CheapConv.Problems;
using CheapConv.Profiling;

namespace CheapConv.Cli.Commands;

/// <summary>
/// The table of <c>bench step --ops</c>: the recorded ops of the timed steps grouped by kind (the backend member, and for a
/// convolution its filter size, grouping and stride), with calls and wall time per step and the share of the steps' time,
/// slowest first. On the CPU backend an op computes during its call, so this is where the step goes; on a GPU it is only the
/// time to enqueue (use <c>profile --step</c> there).
/// </summary>
internal static class StepOpTimes
{
    public static void Write(TextWriter output, IReadOnlyList<RecordedOp> ops, int steps, double totalSeconds)
    {
        var rows = ops
            .GroupBy(Kind)
            .Select(group => (Kind: group.Key, Calls: group.Count(), Seconds: group.Sum(op => op.ElapsedTicks) / (double)Stopwatch.Frequency))
            .OrderByDescending(row => row.Seconds)
            .ToList();
        var recorded = rows.Sum(row => row.Seconds);
        output.WriteLine();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"per op, over the {steps} timed steps ({recorded / totalSeconds:P1} of their time is inside the backend's ops):"));
        output.WriteLine("| op | calls per step | ms per step | share of the step |");
        output.WriteLine("|---|---:|---:|---:|");
        foreach (var (kind, calls, seconds) in rows)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {kind} | {calls / (double)steps:0.#} | {seconds * 1e3 / steps:F1} | {seconds / totalSeconds:P1} |"));
        }

        output.WriteLine();
    }

    // "Conv2dBackwardWeight 3x3 g=4 s1", "BatchNormTrainForward".
    private static string Kind(RecordedOp op) => op.Problem is { } problem ? $"{op.Name} {Shape(problem)}" : op.Name;

    private static string Shape(ConvProblem problem)
    {
        var grouping = problem.Groups == 1 ? "dense"
            : problem.Groups == problem.C && problem.K == problem.C ? "depthwise"
            : $"g={problem.Groups}";
        return string.Create(CultureInfo.InvariantCulture, $"{problem.R}x{problem.S} {grouping} s{problem.StrideH}");
    }
}
