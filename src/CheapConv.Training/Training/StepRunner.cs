using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;

namespace CheapConv.Training;

/// <summary>
/// The trainer's steps, run eagerly (<see cref="TrainingStep.Run"/>) or, with --graph on, by replaying a captured graph
/// (<see cref="StepGraph"/>): the first full batch of the run is eager (it creates what later steps reuse: the momentum, the
/// scratch buffers, the step log's gradient list), the next one is captured and launched, and every later full batch
/// replays that graph. A batch of another shape — the last, partial batch of an epoch — runs eagerly and leaves the graph
/// alone. The graph is captured again when it no longer fits (<see cref="StepGraph.Fits"/>): a new learning rate (the
/// schedule sets one per epoch, so at most once an epoch) or a backend buffer an evaluation grew. Either way a step gives
/// the same bits, so <see cref="Captures"/> and <see cref="Replays"/> are all that tell the two apart.
/// </summary>
internal sealed class StepRunner(WideResNet student, WideResNet? teacher, Sgd optimizer, DistillationOptions? loss, IBackend backend,
    StepLog log, GpuBackend? graphBackend, int fullBatch, Func<IDisposable?>? aroundReplay) : IDisposable
{
    private StepGraph? _graph;
    private bool _eagerFullBatch;

    /// <summary>Graphs captured so far.</summary>
    public int Captures { get; private set; }

    /// <summary>Steps run by replaying a graph so far.</summary>
    public int Replays { get; private set; }

    /// <summary>One step on the batch <paramref name="images"/> (<paramref name="shape"/>: batch × channels × height × width)
    /// and <paramref name="labels"/>, its row recorded in the step log.</summary>
    public void Run(int[] shape, ReadOnlySpan<float> images, ReadOnlySpan<int> labels)
    {
        if (graphBackend is null || shape[0] != fullBatch || !_eagerFullBatch)
        {
            TrainingStep.Run(student, teacher, optimizer, loss, backend, shape, images, labels, log);
            _eagerFullBatch |= shape[0] == fullBatch;
            return;
        }

        if (_graph is null || !_graph.Fits(shape, optimizer.LearningRate))
        {
            _graph?.Dispose();
            _graph = null;
            _graph = StepGraph.Capture(student, teacher, optimizer, loss, graphBackend, shape, labels, log);
            Captures++;
        }

        using (aroundReplay?.Invoke())
        {
            _graph.Run(images, labels);
        }

        Replays++;
    }

    /// <summary>Frees the graph (its input and temporaries).</summary>
    public void Dispose()
    {
        _graph?.Dispose();
        _graph = null;
    }
}
