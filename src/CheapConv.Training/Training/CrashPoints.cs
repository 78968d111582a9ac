namespace CheapConv.Training;

/// <summary>
/// A test-only hook that makes crash-safety testable without timing: when the environment variable
/// <see cref="Variable"/> names a point (<c>batch:2:1</c> — after batch 1 of epoch 2; <c>writing:checkpoint.safetensors</c> —
/// a checkpoint's temporary file fully written but not yet flushed or renamed; <c>saved:checkpoint.safetensors</c> — just
/// after the rename), optionally followed by <c>#N</c> for its N-th arrival (default 1), the process writes
/// <c>cheapconv-paused-at: POINT</c> on stderr when it arrives there and waits forever, so that a test can SIGKILL it at
/// exactly that moment. Unset (always, outside tests) it costs one comparison.
/// </summary>
internal static class CrashPoints
{
    public const string Variable = "CHEAPCONV_TEST_PAUSE_AT";

    private static readonly (string Point, int Arrival)? Target = Parse(Environment.GetEnvironmentVariable(Variable));
    private static int _arrivals;

    /// <summary>Marks <paramref name="point"/>; pauses forever when it is the configured one.</summary>
    public static void Reach(string point)
    {
        if (Target is not { } target || target.Point != point || Interlocked.Increment(ref _arrivals) != target.Arrival)
        {
            return;
        }

        Console.Error.WriteLine($"cheapconv-paused-at: {point}");
        Console.Error.Flush();
        Thread.Sleep(Timeout.Infinite);
    }

    private static (string, int)? Parse(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        var hash = value.LastIndexOf('#');
        return hash < 0 ? (value, 1) : (value[..hash], int.Parse(value.AsSpan(hash + 1), System.Globalization.CultureInfo.InvariantCulture));
    }
}
