namespace CheapConv.Training;

/// <summary>
/// A run stopped because a loss term or a gradient went non-finite (NaN or ±∞): training on stops at that step, before
/// the optimiser applies it, so no non-finite value reaches the weights, the momentum, a checkpoint or <c>best</c>.
/// The run directory keeps the last completed epoch (or no checkpoint at all when it happened in the first epoch).
/// </summary>
public sealed class TrainingDivergedException : Exception
{
    public TrainingDivergedException(int epoch, int step, int steps, string term, double value, int checkpointedEpoch)
        : base($"training diverged at epoch {epoch}, step {step} of {steps}: {term} is {Describe(value)}; nothing of this epoch was saved " +
            (checkpointedEpoch > 0 ? $"(the checkpoint holds epoch {checkpointedEpoch})" : "(no checkpoint was written yet)") +
            "; start a new run (another --out) with a lower --lr")
    {
        Epoch = epoch;
        Step = step;
        Term = term;
    }

    /// <summary>The epoch (1-based) of the step that went non-finite.</summary>
    public int Epoch { get; }

    /// <summary>The step within the epoch (1-based batch number).</summary>
    public int Step { get; }

    /// <summary>What went non-finite: "the CE loss", "the KD loss", "the AT loss of group 2", "the total loss", "the gradient of conv1.weight", "the test loss".</summary>
    public string Term { get; }

    private static string Describe(double value) => double.IsNaN(value) ? "NaN" : value > 0 ? "+Infinity" : "-Infinity";
}
