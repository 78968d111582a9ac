using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;
using CheapConv.Profiling;
using CheapConv.Training;

namespace CheapConv.Tests.Autograd;

/// <summary>
/// Three distillation steps of a small G2 student (or another unit's) from an S teacher (WRN-10-1, 12×12 single-channel images), for tests that
/// run them by two routes (a scope that switches a fusion off) and compare the results bit for bit.
/// </summary>
internal static class DistillationRun
{
    public const int Batch = 8;

    /// <summary>The student's weights and momentum after the steps, the step log, and the ops they made. <paramref name="route"/>
    /// opens the scope the steps run in (null: none). <paramref name="nudgeImages"/> moves every pixel one float32 step up:
    /// how far a run's results move for a rounding-sized change of its input.</summary>
    public static (List<float[]> Weights, List<StepRecord> Log, RecordingBackend Backend) Run(IBackend device, Func<IDisposable?> route, int steps = 3,
        bool nudgeImages = false, string block = "G2")
    {
        var backend = new RecordingBackend(device, () => 0);
        var student = Student(backend, block);
        var teacher = Teacher(backend);
        var loss = new DistillationOptions(0.9f, 4f, 1e3f);
        using var optimizer = new Sgd(student.Parameters(), 0.1f, 0.9f, 5e-4f);
        using var log = new StepLog(backend, student, TrainingStep.AttentionGroups(loss), capacity: 4);
        using (route())
        {
            for (var step = 0; step < steps; step++)
            {
                var (images, labels) = Data(step);
                if (nudgeImages)
                {
                    for (var i = 0; i < images.Length; i++)
                    {
                        images[i] = MathF.BitIncrement(images[i]);
                    }
                }
                TrainingStep.Run(student, teacher, optimizer, loss, backend, [Batch, 1, 12, 12], images, labels, log);
            }
        }

        var weights = student.ExportStateDict().OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => e.Value)
            .Concat(student.Parameters().Select(p => optimizer.ExportMomentum(p)!)).ToList();
        return (weights, [.. log.ReadNew()], backend);
    }

    /// <summary>The student (its units <paramref name="block"/>: G2 unless told), in training mode.</summary>
    public static WideResNet Student(IBackend backend, string block = "G2")
    {
        var student = new WideResNet(new ModelConfig("wrn-10-1", block, "basic", 1, 10, 12).ToWrnConfig(), backend, seed: 3);
        student.Train();
        return student;
    }

    /// <summary>The teacher, in eval mode.</summary>
    public static WideResNet Teacher(IBackend backend)
    {
        var teacher = new WideResNet(new ModelConfig("wrn-10-1", "S", "basic", 1, 10, 12).ToWrnConfig(), backend, seed: 4);
        teacher.Eval();
        return teacher;
    }

    /// <summary>The images and labels of step <paramref name="step"/>.</summary>
    public static (float[] Images, int[] Labels) Data(int step)
    {
        var random = new Random(40 + step);
        var images = new float[Batch * 144];
        for (var i = 0; i < images.Length; i++)
        {
            images[i] = (float)(random.NextDouble() * 2 - 1);
        }

        return (images, [.. Enumerable.Range(0, Batch).Select(i => (7 * i + step) % 10)]);
    }

    /// <summary>Asserts that two runs ended with the same bits in every weight, momentum and logged value.</summary>
    public static void AssertIdentical((List<float[]> Weights, List<StepRecord> Log) expected, (List<float[]> Weights, List<StepRecord> Log) actual)
    {
        Xunit.Assert.Equal(expected.Log.Count, actual.Log.Count);
        for (var i = 0; i < expected.Log.Count; i++)
        {
            Xunit.Assert.Equal(expected.Log[i], actual.Log[i]); // every loss term, count and check
        }

        Xunit.Assert.Equal(expected.Weights.Count, actual.Weights.Count);
        for (var i = 0; i < expected.Weights.Count; i++)
        {
            TensorAssert.Identical(expected.Weights[i], actual.Weights[i], $"tensor {i}");
        }
    }
}
