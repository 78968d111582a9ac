using System.Diagnostics;
using System.Globalization;
using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Models;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>bench step</c>: images per second of one whole training step on random data — a plain training step
/// (forward, cross-entropy, backward, SGD) or a distillation step (teacher eval no-grad forward, student
/// forward and backward, CE + AT with α = 0, β = 1e3, SGD) — after one warm-up step, median over the steps — and the
/// peak resident memory of the process. With <c>--ops</c>, also the wall time of each kind of op per timed step
/// (<see cref="StepOpTimes"/>): on the CPU backend, where each op computes during its call, where the step goes.
/// </summary>
internal static class BenchStepCommand
{
    public const string Usage =
        "bench step --arch wrn-40-2 [--block G4] [--teacher-arch wrn-40-2] [--mode train|distill] [--batch 128]\n" +
        "           [--in-channels 1] [--image 32] [--classes 10] [--device cpu|emu|cuda[:N]] [--steps 5] [--ops]";

    public static int Run(Options options, TextWriter output)
    {
        var arch = options.String("arch") ?? throw new UsageException("option --arch is required, e.g. --arch wrn-40-2");
        var block = options.String("block", "S");
        var teacherArch = options.String("teacher-arch", arch);
        var mode = options.Choice("mode", "train", "train", "distill");
        var batch = options.Int("batch", 128);
        var inChannels = options.Int("in-channels", 1);
        var image = options.Int("image", 32);
        var classes = options.Int("classes", 10);
        var request = options.Device(DeviceRequest.Cpu, "cpu", "emu", "cuda");
        var steps = options.Int("steps", 5);
        var perOp = options.Flag("ops");
        options.EnsureAllUsed();

        if (batch < 2)
        {
            throw new UsageException($"--batch must be at least 2 (training batch norm needs two values per channel), got {batch}");
        }

        if (steps < 1)
        {
            throw new UsageException($"--steps must be positive, got {steps}");
        }

        WrnConfig student, teacher;
        try
        {
            var (depth, width) = WrnConfig.ParseArch(arch);
            var (teacherDepth, teacherWidth) = WrnConfig.ParseArch(teacherArch);
            student = WrnConfig.Student(depth, width, UnitSpec.Parse(block), inChannels: inChannels, classes: classes, imageSize: image);
            teacher = WrnConfig.Teacher(teacherDepth, teacherWidth, inChannels, classes, image);
            student.Validate();
            teacher.Validate();
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new UsageException(e.Message);
        }

        using var device = ComputeDevice.Open(request);
        var recording = perOp ? new Profiling.RecordingBackend(device.Backend, () => 0, Stopwatch.GetTimestamp) : null;
        var backend = (IBackend?)recording ?? device.Backend;
        var label = device.Device is null ? $"cpu ({device.Name})" : backend.Name;

        Func<double> step;
        try
        {
            step = mode == "train" ? TrainStep(backend, student, batch) : DistillStep(backend, teacher, student, batch);
        }
        catch (Exception e) when (e is ArgumentException or Problems.InvalidProblemException)
        {
            throw new UsageException($"{student.Name}: {e.Message}");
        }

        output.WriteLine(mode == "train"
            ? $"train step: {student.Name}, {inChannels}×{image}×{image}, {classes} classes, batch {batch}, on {label}"
            : $"distill step: {teacher.Name} → {student.Name} (CE + AT, α = 0, β = 1e3), {inChannels}×{image}×{image}, batch {batch}, on {label}");
        var warmUp = step();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"warm-up: {warmUp * 1e3:F0} ms"));
        recording?.Clear(); // only the timed steps' ops
        var times = new List<double>();
        for (var i = 0; i < steps; i++)
        {
            times.Add(step());
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"step {i + 1}: {times[^1] * 1e3:F0} ms"));
        }

        if (recording is not null)
        {
            StepOpTimes.Write(output, recording.Ops, steps, times.Sum());
        }

        times.Sort();
        var median = times.Count % 2 == 1 ? times[times.Count / 2] : (times[times.Count / 2 - 1] + times[times.Count / 2]) / 2;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"median {median * 1e3:F1} ms per step (min {times[0] * 1e3:F1}, max {times[^1] * 1e3:F1}) = {batch / median:F1} images/s"));
        // The process's high-water mark of resident memory (VmHWM on Linux), models and runtime included, as
        // bench/cpu/torch_step.py prints PyTorch's: the two compare directly.
        using var process = Process.GetCurrentProcess();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"peak resident memory {process.PeakWorkingSet64 / (1024.0 * 1024.0):F0} MiB"));
        return 0;
    }

    private static (float[] Images, int[] Labels) RandomBatch(WrnConfig config, int batch)
    {
        var random = new Random(1);
        var images = new float[batch * config.InChannels * config.ImageSize * config.ImageSize];
        for (var i = 0; i < images.Length; i++)
        {
            images[i] = (float)(random.NextDouble() * 2 - 1);
        }

        var labels = new int[batch];
        for (var i = 0; i < batch; i++)
        {
            labels[i] = random.Next(config.Classes);
        }

        return (images, labels);
    }

    /// <summary>Seconds of one step (forward, CE, backward, SGD), waiting for the device at the end (reading the loss).</summary>
    private static Func<double> TrainStep(IBackend backend, WrnConfig config, int batch)
    {
        var model = new WideResNet(config, backend, seed: 1);
        model.Train();
        var sgd = new Sgd(model.Parameters(), learningRate: 0.1f, momentum: 0.9f, weightDecay: 5e-4f);
        var (images, labels) = RandomBatch(config, batch);
        int[] shape = [batch, config.InChannels, config.ImageSize, config.ImageSize];
        return () =>
        {
            var watch = Stopwatch.StartNew();
            using (TensorScope.Begin())
            {
                var output = model.ForwardWithGroups(Tensor.FromHost(backend, shape, images));
                var loss = Ops.CrossEntropy(output.Logits, labels);
                sgd.ZeroGrad();
                loss.Backward();
                sgd.Step();
                _ = loss.Item();
            }

            return watch.Elapsed.TotalSeconds;
        };
    }

    /// <summary>Seconds of one distillation step with attention transfer only (α = 0, β = 1e3, the AT rows of the paper).</summary>
    private static Func<double> DistillStep(IBackend backend, WrnConfig teacherConfig, WrnConfig studentConfig, int batch)
    {
        var teacher = new WideResNet(teacherConfig, backend, seed: 1);
        var student = new WideResNet(studentConfig, backend, seed: 2);
        teacher.Eval();
        student.Train();
        var sgd = new Sgd(student.Parameters(), learningRate: 0.1f, momentum: 0.9f, weightDecay: 5e-4f);
        var (images, labels) = RandomBatch(studentConfig, batch);
        int[] shape = [batch, studentConfig.InChannels, studentConfig.ImageSize, studentConfig.ImageSize];
        var lossOptions = new DistillationOptions(Alpha: 0f, Beta: 1e3f);
        return () =>
        {
            var watch = Stopwatch.StartNew();
            using (TensorScope.Begin())
            {
                var input = Tensor.FromHost(backend, shape, images);
                WrnOutput taught;
                using (GradientMode.NoGrad())
                {
                    taught = teacher.ForwardWithGroups(input);
                }

                var output = student.ForwardWithGroups(input);
                var loss = DistillationLoss.Compute(output.Logits, taught.Logits, labels, output.Groups, taught.Groups, lossOptions);
                sgd.ZeroGrad();
                loss.Total.Backward();
                sgd.Step();
                _ = loss.Total.Item();
            }

            return watch.Elapsed.TotalSeconds;
        };
    }
}
