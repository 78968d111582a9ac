using CheapConv.Data;
using CheapConv.Training;

namespace CheapConv.Tests.Training;

/// <summary>
/// The synthetic dataset and one small teacher run trained on it (WRN-10-1, 3 epochs on the CPU backend), shared by
/// the training tests so the teacher is trained once.
/// </summary>
public sealed class TrainingFixture : IDisposable
{
    public const int Epochs = 3;

    public TrainingFixture()
    {
        Data = new SyntheticDataset();
        (Train, Test) = DatasetLoader.Load(DatasetKind.FashionMnist, Data.Directory);
        TeacherDirectory = Path.Combine(Data.Directory, "teacher-run");
        Teacher = TrainingTests.Run(TrainingTests.Config("S", Epochs), TeacherDirectory, this, new RecordingObserver());
    }

    public SyntheticDataset Data { get; }

    public ImageDataset Train { get; }

    public ImageDataset Test { get; }

    public string TeacherDirectory { get; }

    public TrainingOutcome Teacher { get; }

    public void Dispose() => Data.Dispose();
}

/// <summary>Keeps every callback; can cancel the run after a given epoch.</summary>
public sealed class RecordingObserver(CancellationTokenSource? cancelAfter = null, int stopAfterEpoch = 0) : ITrainingObserver
{
    public List<TrainingStart> Starts { get; } = [];

    public List<BatchProgress> Batches { get; } = [];

    public List<EpochMetrics> Epochs { get; } = [];

    public List<string> Warnings { get; } = [];

    public void RunStarting(TrainingStart start) => Starts.Add(start);

    public void EpochStarting(int epoch, int batches, double learningRate)
    {
    }

    public void BatchCompleted(BatchProgress progress) => Batches.Add(progress);

    public void EpochCompleted(EpochMetrics metrics, bool isBest, TimeSpan runRemaining)
    {
        Epochs.Add(metrics);
        if (cancelAfter is not null && metrics.Epoch == stopAfterEpoch)
        {
            cancelAfter.Cancel();
        }
    }

    public void Warning(string message) => Warnings.Add(message);
}
