using CheapConv.Devices;

namespace CheapConv.Reporting;

/// <summary>Which test error the Pareto plot and fronts use.</summary>
internal enum ParetoError
{
    /// <summary>The error after the last epoch run: no selection on the test set.</summary>
    Last,

    /// <summary>The best error over the epochs (chosen on the test set, so optimistic).</summary>
    Best,
}

/// <summary>How <see cref="RunReport.Build"/> measures and what it plots.</summary>
internal sealed record ReportOptions
{
    /// <summary>
    /// Where latency is measured. Auto: each run's own training device as far as this machine has it — GPU 0 for a
    /// run trained on CUDA when a GPU is usable here, the CPU otherwise (a run trained on the emulator is timed on the
    /// CPU: emulated times mean nothing). Cpu: the C# CPU backend for every run. Emulator, asked for explicitly: not
    /// timed, the latency cells say why. Cuda: that GPU for every run; no GPU is a <see cref="DeviceUnavailableException"/>.
    /// </summary>
    public DeviceRequest Device { get; init; } = DeviceRequest.Auto;

    /// <summary>False skips the latency measurement (the cells say "not measured").</summary>
    public bool MeasureLatency { get; init; } = true;

    /// <summary>The two batch sizes of the latency columns.</summary>
    public int SmallBatch { get; init; } = 1;

    /// <summary>The large batch: the training batch size of the paper's recipe.</summary>
    public int LargeBatch { get; init; } = 128;

    /// <summary>Untimed forwards first (the first one also fills the allocator's cache).</summary>
    public int WarmupRuns { get; init; } = 2;

    /// <summary>Timed forwards at least, unless those done already took three times <see cref="TimeBudget"/> (a model
    /// so slow that one forward is the whole budget gets one or two).</summary>
    public int MinTimedRuns { get; init; } = 5;

    /// <summary>
    /// A warm-up pass longer than three times <see cref="TimeBudget"/> is taken as the measurement (one pass):
    /// what warming up removes is negligible beside it. On by default; off times every cell after a warm-up.
    /// </summary>
    public bool SlowPassIsItsOwnWarmup { get; init; } = true;

    /// <summary>Timed forwards at most.</summary>
    public int MaxTimedRuns { get; init; } = 50;

    /// <summary>Timed forwards continue past <see cref="MinTimedRuns"/> while their total is below this.</summary>
    public TimeSpan TimeBudget { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Which error the Pareto fronts and plot use.</summary>
    public ParetoError ParetoError { get; init; } = ParetoError.Last;

    /// <summary>Seed of the random weights and images the latency is measured with (time does not depend on them).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Progress lines ("timing … on …") while latency is measured; null for none.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming an impossible setting.</summary>
    public void Validate()
    {
        if (SmallBatch < 1 || LargeBatch < 1)
        {
            throw new ArgumentException($"latency batch sizes must be positive, got {SmallBatch} and {LargeBatch}");
        }

        if (WarmupRuns < 0 || MinTimedRuns < 1 || MaxTimedRuns < MinTimedRuns)
        {
            throw new ArgumentException($"latency runs need warm-up ≥ 0 and 1 ≤ min ≤ max timed runs, got {WarmupRuns}, {MinTimedRuns}, {MaxTimedRuns}");
        }

        if (TimeBudget <= TimeSpan.Zero)
        {
            throw new ArgumentException($"the latency time budget must be positive, got {TimeBudget}");
        }
    }
}
