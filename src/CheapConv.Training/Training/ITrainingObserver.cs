namespace CheapConv.Training;

/// <summary>What a run is about to do, for the progress display.</summary>
/// <param name="Config">The run's configuration.</param>
/// <param name="RunDirectory">Where its files go.</param>
/// <param name="Device">"cpu: C# backend, 2 threads".</param>
/// <param name="Parameters">Trainable parameters of the student.</param>
/// <param name="Macs">Its MACs per image.</param>
/// <param name="FirstEpoch">The first epoch to run (1-based; above 1 when resumed).</param>
/// <param name="BatchesPerEpoch">Training batches per epoch.</param>
/// <param name="TrainImages">Training images per epoch.</param>
/// <param name="TestImages">Test images evaluated after each epoch.</param>
public sealed record TrainingStart(
    TrainingConfig Config, string RunDirectory, string Device, long Parameters, long Macs, int FirstEpoch,
    int BatchesPerEpoch, int TrainImages, int TestImages);

/// <summary>After each training batch. Losses are running means over the epoch so far (unweighted parts, as in <see cref="EpochMetrics"/>).</summary>
/// <param name="Epoch">1-based.</param>
/// <param name="Batch">Batches done in this epoch (1-based).</param>
/// <param name="Batches">Batches in the epoch.</param>
/// <param name="Loss">The minimised total.</param>
/// <param name="Ce">Cross-entropy.</param>
/// <param name="Kd">KD, null when off.</param>
/// <param name="At">Sum of the AT terms, null when off.</param>
/// <param name="LearningRate">This epoch's learning rate.</param>
/// <param name="ImagesPerSecond">Training throughput of this epoch so far.</param>
/// <param name="EpochRemaining">Estimated time to the end of the epoch's training batches.</param>
/// <param name="RunRemaining">Estimated time to the end of the run (training and evaluation).</param>
public sealed record BatchProgress(
    int Epoch, int Batch, int Batches, double Loss, double Ce, double? Kd, double? At, double LearningRate,
    double ImagesPerSecond, TimeSpan EpochRemaining, TimeSpan RunRemaining);

/// <summary>
/// Receives the progress of a run (the CLI renders it; tests record it). Called on the training thread; a slow
/// observer slows training.
/// </summary>
public interface ITrainingObserver
{
    /// <summary>Once, before the first epoch.</summary>
    void RunStarting(TrainingStart start);

    /// <summary>Before each epoch's first batch.</summary>
    void EpochStarting(int epoch, int batches, double learningRate);

    /// <summary>After each training batch.</summary>
    void BatchCompleted(BatchProgress progress);

    /// <summary>After the epoch's evaluation, once its files are written; <paramref name="isBest"/> when it set a new best accuracy.</summary>
    void EpochCompleted(EpochMetrics metrics, bool isBest, TimeSpan runRemaining);

    /// <summary>Something the user should know that does not stop the run.</summary>
    void Warning(string message);
}
