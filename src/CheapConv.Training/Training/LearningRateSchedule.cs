namespace CheapConv.Training;

/// <summary>
/// The learning rate of each epoch, set once at the start of the epoch (as PyTorch's MultiStepLR and
/// CosineAnnealingLR stepped per epoch). Step: × decay at 30%, 60% and 80% of the planned epochs — the paper's
/// 60/120/160 of 200, scaled. Cosine: lr·(1 + cos(π·e/E))/2, down to 0 after the last epoch.
/// </summary>
internal static class LearningRateSchedule
{
    /// <summary>Where the step schedule decays, as fractions of the planned epochs.</summary>
    public static IReadOnlyList<double> MilestoneFractions { get; } = [0.3, 0.6, 0.8];

    /// <summary>The step schedule's milestone epochs (0-based epoch index at which the decay takes effect) for <paramref name="epochs"/>.</summary>
    public static int[] Milestones(int epochs) =>
        [.. MilestoneFractions.Select(f => (int)Math.Round(f * epochs, MidpointRounding.AwayFromZero))];

    /// <summary>The learning rate of epoch <paramref name="epoch"/> (0-based) of <paramref name="config"/>'s plan.</summary>
    public static double At(TrainingConfig config, int epoch)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        return config.Schedule switch
        {
            "step" => config.LearningRate * Math.Pow(config.LrDecay, Milestones(config.Epochs).Count(m => epoch >= m)),
            "cosine" => config.LearningRate * (1 + Math.Cos(Math.PI * epoch / config.Epochs)) / 2,
            _ => throw new ArgumentException($"unknown schedule '{config.Schedule}': use step or cosine"),
        };
    }
}
