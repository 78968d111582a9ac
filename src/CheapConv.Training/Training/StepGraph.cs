using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Models;

namespace CheapConv.Training;

/// <summary>
/// One training step captured as a graph on a GPU backend (a CUDA graph on a GPU, a recorded list on the emulator) and
/// replayed for every later step of the same shape and learning rate: <see cref="TrainingStep.Compute"/> — forward, loss,
/// backward, the step log's row, the SGD update — recorded once, then each <see cref="Run"/> uploads the batch into the
/// captured input, stages the labels where the captured kernels read them, launches the graph and commits the log's row.
/// Replays launch the same kernels in the same order as an eager step, so their results are the same bits.
/// </summary>
/// <remarks>
/// What the graph uses must stay where it was: the parameters, gradients and momentum (persistent), the input (owned
/// here), the labels (the backend's buffer) and the step's temporaries, which are kept out of the storage cache while the
/// graph lives. A capture must come after one eager step of the model (which creates what the first step creates: the
/// scratch buffers, the gradient list of the step log), and is made again when the learning rate, the batch shape or the
/// backend's workspace or label buffer changes (<see cref="Fits"/>).
/// </remarks>
internal sealed class StepGraph : IDisposable
{
    private readonly GpuBackend _backend;
    private readonly Storage _input;
    private readonly DeviceGraph _graph;
    private readonly IReadOnlyList<(StorageCache Cache, Storage Storage)> _temporaries;
    private readonly StepLog _log;
    private readonly long _bufferGeneration;

    private StepGraph(GpuBackend backend, int[] shape, float learningRate, Storage input, DeviceGraph graph,
        IReadOnlyList<(StorageCache, Storage)> temporaries, StepLog log)
    {
        _backend = backend;
        Shape = shape;
        LearningRate = learningRate;
        _input = input;
        _graph = graph;
        _temporaries = temporaries;
        _log = log;
        _bufferGeneration = backend.BufferGeneration;
    }

    /// <summary>The batch shape it was captured for.</summary>
    public IReadOnlyList<int> Shape { get; }

    /// <summary>The learning rate its SGD launch was captured with.</summary>
    public float LearningRate { get; }

    /// <summary>
    /// Whether a step of <paramref name="shape"/> at <paramref name="learningRate"/> can replay this graph: the shape and
    /// the learning rate (a value in the captured SGD launch) are those of the capture, and the backend's workspace and
    /// label buffer, whose addresses the captured kernels hold, are still the ones they were (an evaluation with a
    /// larger batch grows them).
    /// </summary>
    public bool Fits(int[] shape, float learningRate) =>
        shape.SequenceEqual(Shape) && learningRate == LearningRate && _backend.BufferGeneration == _bufferGeneration;

    /// <summary>
    /// Captures one step of <paramref name="shape"/> (nothing runs; the labels given are staged so that the captured
    /// kernels read the backend's label buffer).
    /// </summary>
    public static StepGraph Capture(WideResNet student, WideResNet? teacher, Sgd optimizer, DistillationOptions? loss, GpuBackend backend,
        int[] shape, ReadOnlySpan<int> labels, StepLog log)
    {
        var input = backend.Allocate(shape.Aggregate(1L, (product, size) => product * size));
        var device = backend.Device;
        backend.StageLabels(labels); // before the capture: an upload cannot be captured
        device.BeginCapture();
        var scope = TensorScope.BeginKeepingStorages();
        Exception? failure = null;
        try
        {
            TrainingStep.Compute(student, teacher, optimizer, loss, Tensor.Over(backend, shape, input), labels, log);
        }
        catch (Exception e)
        {
            failure = e;
        }

        // The capture and the scope end whatever happened: a step that threw leaves nothing behind.
        var temporaries = scope.EndKeepingStorages();
        var graph = device.EndCapture();
        var made = new StepGraph(backend, [.. shape], optimizer.LearningRate, input, graph, temporaries, log);
        if (failure is null)
        {
            return made;
        }

        made.Dispose();
        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        throw failure; // not reached
    }

    /// <summary>One step on <paramref name="images"/> and <paramref name="labels"/> by replaying the graph; never waits.</summary>
    public void Run(ReadOnlySpan<float> images, ReadOnlySpan<int> labels)
    {
        _backend.CopyFromHost(images, _input);
        _backend.StageLabels(labels);
        _graph.Launch();
        _log.Commit(Shape[0]);
    }

    /// <summary>Frees the graph and the input, and gives the step's temporaries back to the storage cache.</summary>
    public void Dispose()
    {
        _graph.Dispose();
        _input.Dispose();
        foreach (var (cache, storage) in _temporaries)
        {
            cache.Return(storage);
        }
    }
}
