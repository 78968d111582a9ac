namespace CheapConv.Reporting;

/// <summary>One run in the report: what it is, what it costs, how fast it infers and how well it did.</summary>
/// <param name="RunDirectory">The directory as it was given.</param>
/// <param name="Name">The directory's own name, which identifies the run in the table and the plot.</param>
/// <param name="Arch">"wrn-16-2".</param>
/// <param name="Block">The unit in the paper's spelling: S, G(4), G(N/8), B(2), BG(2,N/8), ….</param>
/// <param name="BlockType">"basic" or "bottle".</param>
/// <param name="Mode">"none", "KD", "AT" or "KD+AT".</param>
/// <param name="Params">Trainable parameters.</param>
/// <param name="State">State-dict values (parameters + BN running statistics), the paper's "sd".</param>
/// <param name="Macs">Multiply-accumulates of conv and linear layers per image.</param>
/// <param name="BestError">100 − best test accuracy, in %; null before the first epoch.</param>
/// <param name="BestEpoch">The epoch of <paramref name="BestError"/>.</param>
/// <param name="LastError">100 − the last epoch's test accuracy, in %; null before the first epoch.</param>
/// <param name="Epochs">Epochs completed (also the epoch of <paramref name="LastError"/>).</param>
/// <param name="PlannedEpochs">Epochs the run was configured for.</param>
/// <param name="Dataset">fashion-mnist, cifar10, ….</param>
/// <param name="Seed">The run's seed.</param>
/// <param name="TrainingDevice">The device the run trained on, as summary.json says.</param>
/// <param name="Teacher">The teacher the run distilled from, if any.</param>
/// <param name="Latency">Inference latency at the two batch sizes.</param>
/// <param name="OnParamsFront">On the Pareto front of error (<see cref="ReportOptions.ParetoError"/>) against parameters.</param>
/// <param name="OnMacsFront">On the Pareto front of error against MACs.</param>
internal sealed record ReportRow(
    string RunDirectory, string Name, string Arch, string Block, string BlockType, string Mode,
    long Params, long State, long Macs,
    double? BestError, int BestEpoch, double? LastError, int Epochs, int PlannedEpochs,
    string Dataset, int Seed, string TrainingDevice, string? Teacher,
    LatencyResult Latency, bool OnParamsFront, bool OnMacsFront)
{
    /// <summary>"G(4) AT": how the Pareto plot labels the point (with the architecture when runs mix them).</summary>
    public string Label(bool withArch) => (withArch ? Arch.ToUpperInvariant() + " " : "") + Block + " " + (Mode == "none" ? "alone" : Mode);
}
