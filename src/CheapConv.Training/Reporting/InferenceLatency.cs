using System.Diagnostics;
using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Models;

namespace CheapConv.Reporting;

/// <summary>
/// The inference latency of one model on one device: the median milliseconds of a few timed forward passes at
/// each of the two batch sizes, or why it was not measured.
/// </summary>
/// <param name="Device">What it was (or would have been) timed on, e.g. "cpu (2 cores)" or the GPU's name.</param>
/// <param name="SmallBatchMilliseconds">Median ms per forward at the small batch; null when not measured.</param>
/// <param name="LargeBatchMilliseconds">Median ms per forward at the large batch; null when not measured.</param>
/// <param name="SmallBatchRuns">Timed forwards behind the small-batch median.</param>
/// <param name="LargeBatchRuns">Timed forwards behind the large-batch median.</param>
/// <param name="Note">Why it was not measured, or where it was measured instead of the run's device.</param>
internal sealed record LatencyResult(
    string Device, double? SmallBatchMilliseconds, int SmallBatchRuns, double? LargeBatchMilliseconds, int LargeBatchRuns, string? Note)
{
    /// <summary>A result without numbers, carrying the reason.</summary>
    public static LatencyResult NotMeasured(string device, string reason) => new(device, null, 0, null, 0, reason);
}

/// <summary>
/// Times inference of WRN teachers and students: random weights (the time does not depend on them), eval mode,
/// no gradient recording, random images; a few untimed forwards, then the median of timed ones, each inside a
/// <see cref="TensorScope"/> so that after the first forward every temporary comes from the allocator's cache.
/// GPU work is asynchronous, so the device is synchronised before the clock starts and before it is read: the
/// time is what a caller waits for a batch, launch overhead included. Opens each device once and reuses it for
/// every model; dispose it to close them.
/// </summary>
internal sealed class InferenceLatency : IDisposable
{
    private readonly ReportOptions _options;
    private readonly CpuBackend _cpu = new();
    private ComputeDevice? _cuda;
    private CudaProbe? _probe;

    /// <summary>Times with the runs, budget and batch sizes of <paramref name="options"/>.</summary>
    public InferenceLatency(ReportOptions options)
    {
        options.Validate();
        _options = options;
    }

    /// <summary>How the CPU is named in the table.</summary>
    public static string CpuLabel => $"cpu ({Environment.ProcessorCount} cores)";

    /// <summary>
    /// Measures <paramref name="config"/> on the device <see cref="ReportOptions.Device"/> picks for a run that
    /// trained on <paramref name="trainingDevice"/> (summary.json's "device").
    /// </summary>
    public LatencyResult Measure(WrnConfig config, string trainingDevice)
    {
        var trainedOn = TrainingDeviceKind(trainingDevice);
        switch (_options.Device.Kind)
        {
            case "emu":
                return LatencyResult.NotMeasured("emulator", "not timed on the emulator: emulated times mean nothing");
            case "cpu":
                return Time(config, _cpu, null, CpuLabel, null);
            case "cuda":
                return TimeOnCuda(config, _options.Device);
        }

        // Auto: the run's own device where this machine has it.
        if (trainedOn == DeviceKind.Cuda)
        {
            _probe ??= CudaDevice.Probe();
            return _probe.IsAvailable
                ? TimeOnCuda(config, DeviceRequest.Cuda())
                : Time(config, _cpu, null, CpuLabel, $"trained on {trainingDevice}, but no GPU here ({_probe.Reason}): timed on the cpu");
        }

        return trainedOn == DeviceKind.Emulated
            ? Time(config, _cpu, null, CpuLabel, "trained on the emulator: timed on the cpu instead (emulated times mean nothing)")
            : Time(config, _cpu, null, CpuLabel, null);
    }

    /// <summary>cuda, emu or cpu from summary.json's device ("cuda NVIDIA H100 …", "emu", "cpu (2 cores)").</summary>
    internal static DeviceKind? TrainingDeviceKind(string device)
    {
        var first = device.TrimStart().Split([' ', '(', ':', ','], 2)[0].ToLowerInvariant();
        return first switch
        {
            "cuda" => DeviceKind.Cuda,
            "emu" or "emulator" => DeviceKind.Emulated,
            _ => null,
        };
    }

    private LatencyResult TimeOnCuda(WrnConfig config, DeviceRequest gpu)
    {
        _cuda ??= ComputeDevice.Open(gpu);
        return Time(config, _cuda.Backend, _cuda.Device, _cuda.Name, null);
    }

    private LatencyResult Time(WrnConfig config, IBackend backend, Device? device, string label, string? note)
    {
        var model = new WideResNet(config, backend, _options.Seed);
        model.Eval();
        try
        {
            var (small, smallRuns) = TimeBatch(model, backend, device, _options.SmallBatch);
            var (large, largeRuns) = TimeBatch(model, backend, device, _options.LargeBatch);
            return new LatencyResult(label, small, smallRuns, large, largeRuns, note);
        }
        finally
        {
            // Parameters and buffers own their memory (device memory on a GPU); the cached temporaries of this
            // model's shapes are of no use to the next model.
            foreach (var (_, tensor) in model.StateDict())
            {
                tensor.Dispose();
            }

            StorageCache.For(backend).Trim();
        }
    }

    private (double Milliseconds, int Runs) TimeBatch(WideResNet model, IBackend backend, Device? device, int batch)
    {
        var config = model.Config;
        var shape = new[] { batch, config.InChannels, config.ImageSize, config.ImageSize };
        var random = new Random(_options.Seed);
        var images = new float[batch * config.InChannels * config.ImageSize * config.ImageSize];
        for (var i = 0; i < images.Length; i++)
        {
            images[i] = (float)(2 * random.NextDouble() - 1);
        }

        using var input = Tensor.FromHost(backend, shape, images);
        using var noGrad = GradientMode.NoGrad();
        var budget = _options.TimeBudget.TotalMilliseconds;
        for (var i = 0; i < _options.WarmupRuns; i++)
        {
            var warmup = TimeForward(model, input, device);
            if (warmup > 3 * budget && _options.SlowPassIsItsOwnWarmup)
            {
                // A pass of seconds (the C# CPU backend at batch 128): what a warm-up removes — JIT compilation,
                // which the small batch already did, and filling the allocator's cache — is a fraction of a percent
                // of it, and a second pass would double the report's time.
                return (warmup, 1);
            }

            if (warmup > budget)
            {
                // One warm-up already compiles the code paths and fills the cache; a model this slow needs no second.
                break;
            }
        }

        var times = new List<double>();
        var total = 0.0;
        while (times.Count < _options.MaxTimedRuns
            && (times.Count < _options.MinTimedRuns || total < budget)
            && !(times.Count > 0 && total > 3 * budget))
        {
            var milliseconds = TimeForward(model, input, device);
            times.Add(milliseconds);
            total += milliseconds;
        }

        return (Median(times), times.Count);
    }

    private static double TimeForward(WideResNet model, Tensor input, Device? device)
    {
        device?.Synchronize();
        var start = Stopwatch.GetTimestamp();
        using (TensorScope.Begin())
        {
            _ = model.Forward(input);
        }

        device?.Synchronize();
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    /// <summary>The median (the mean of the two middle values for an even count).</summary>
    internal static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0)
        {
            throw new ArgumentException("the median of no values");
        }

        var sorted = values.Order().ToArray();
        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    /// <summary>Frees the GPU backend's buffers and closes the GPU, if one was opened.</summary>
    public void Dispose()
    {
        _cuda?.Dispose();
        _cuda = null;
    }
}
